package reassembly

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestHugeAdviceRuns(t *testing.T) {
	var got [][2]uintptr
	defer func(f func(lo, hi uintptr)) { adviseRange = f }(adviseRange)
	adviseRange = func(lo, hi uintptr) { got = append(got, [2]uintptr{lo, hi}) }

	const M = hugePageSize
	var h hugeAdvice
	h.add(10*M+100, 10*M+2000) // within one huge page
	h.add(10*M+5000, 11*M+10)  // overlaps it, reaches into the next
	h.add(12*M, 12*M+1)        // adjacent to the run
	h.add(9*M+M-1, 9*M+M)      // adjacent below
	h.add(40*M+3, 40*M+4)      // far away: a run of its own
	h.add(3*M, 3*M+1)          // far below: another
	h.flush()
	h.flush() // nothing left: no call
	want := [][2]uintptr{{9 * M, 13 * M}, {40 * M, 41 * M}, {3 * M, 4 * M}}
	if len(got) != len(want) {
		t.Fatalf("advised %#x, want %#x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("advised %#x, want %#x", got, want)
		}
	}
}

// vmFlags returns the VmFlags of the mapping holding address a, from
// /proc/self/smaps.
func vmFlags(t *testing.T, a uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if r, _, ok := strings.Cut(line, " "); ok && strings.Contains(r, "-") && !strings.HasSuffix(r, ":") {
			lo, hi, _ := strings.Cut(r, "-")
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && uintptr(l) <= a && a < uintptr(h)
			continue
		}
		if in {
			if v, ok := strings.CutPrefix(line, "VmFlags:"); ok {
				return strings.Fields(v)
			}
		}
	}
	t.Fatalf("address %#x in no mapping of /proc/self/smaps", a)
	return nil
}

// TestHugePageAdviceApplied checks with the kernel that the memory the
// table spends most on is advised for transparent huge pages ("hg" in the
// mapping's VmFlags): flight-recorder chunks from the supply, connection
// slabs and the index.
func TestHugePageAdviceApplied(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("kernel without transparent huge pages")
	}
	s := NewChunkSupply()
	defer s.Stop()
	var g [][]PacketRecord
	for range 1000 {
		if g = s.group(); g != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if g == nil {
		t.Fatal("the supply gave no group")
	}
	var sl slab[tracked]
	_, c := sl.alloc()
	var x connIndex
	x.grow()
	for _, m := range []struct {
		what string
		p    unsafe.Pointer
	}{
		{"first supplied chunk", unsafe.Pointer(&g[0][0])},
		{"last supplied chunk", unsafe.Pointer(&g[len(g)-1][0])},
		{"slab chunk", unsafe.Pointer(c)},
		{"index", unsafe.Pointer(&x.slots[0])},
	} {
		flags := vmFlags(t, uintptr(m.p))
		hg := false
		for _, f := range flags {
			hg = hg || f == "hg"
		}
		if !hg {
			t.Errorf("%s at %p: mapping's VmFlags %v lack hg (MADV_HUGEPAGE)", m.what, m.p, flags)
		}
	}
}
