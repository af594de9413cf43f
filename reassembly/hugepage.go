package reassembly

import "unsafe"

// hugePageSize is the x86-64 and arm64 transparent huge page size.
const hugePageSize = 2 << 20

// adviseRange is adviseHugePages; tests replace it to see the runs.
var adviseRange = adviseHugePages

// hugeAdvice gathers address ranges into runs of whole huge pages and
// advises each run once (adviseHugePages), so that memory allocated in
// many pieces costs one madvise per run instead of one per piece, and
// pieces far apart do not advise the memory between them.
type hugeAdvice struct{ lo, hi uintptr }

// add includes [lo, hi).
func (h *hugeAdvice) add(lo, hi uintptr) {
	lo &^= hugePageSize - 1
	hi = (hi + hugePageSize - 1) &^ (hugePageSize - 1)
	switch {
	case h.lo == h.hi:
		h.lo, h.hi = lo, hi
	case lo <= h.hi && hi >= h.lo: // overlapping or adjacent
		h.lo, h.hi = min(h.lo, lo), max(h.hi, hi)
	default:
		h.flush()
		h.lo, h.hi = lo, hi
	}
}

// flush advises the run gathered so far.
func (h *hugeAdvice) flush() {
	if h.lo < h.hi {
		adviseRange(h.lo, h.hi)
	}
	h.lo, h.hi = 0, 0
}

// adviseHugePagesOf advises the whole huge pages the size bytes at p
// touch.
func adviseHugePagesOf(p unsafe.Pointer, size uintptr) {
	var h hugeAdvice
	h.add(uintptr(p), uintptr(p)+size)
	h.flush()
}
