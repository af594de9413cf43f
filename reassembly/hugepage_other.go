//go:build !linux

package reassembly

// adviseHugePages does nothing where transparent huge pages are not a
// madvise(2) away.
func adviseHugePages(lo, hi uintptr) {}
