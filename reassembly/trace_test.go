package reassembly

import (
	"testing"
)

// fillRing writes n records numbered 1..n (in Timestamp) into a ring of at
// most max records.
func fillRing(t *testing.T, q *Quota, pool *ringPool, max, n int) *Ring {
	t.Helper()
	r := newRing(q, max, pool)
	if r == nil {
		t.Fatalf("newRing(max %d) refused", max)
	}
	for i := 1; i <= n; i++ {
		rec, _ := r.slot()
		*rec = PacketRecord{Timestamp: int64(i)}
	}
	return r
}

func timestamps(recs []PacketRecord) []int64 {
	out := make([]int64, len(recs))
	for i := range recs {
		out[i] = recs[i].Timestamp
	}
	return out
}

// TestRingTakeMatchesRecords checks that handing the storage over (Take,
// rotating in place) yields the same records in the same order as copying
// them out (Records), wrapped or not, and that the ring's reservation is
// exactly its capacity, which Take hands over.
func TestRingTakeMatchesRecords(t *testing.T) {
	pool := &ringPool{}
	for _, max := range []int{1, 3, 8, 13, 64} {
		for n := 1; n <= 3*max+2; n++ {
			q := NewQuota(1 << 30)
			a := fillRing(t, q, pool, max, n)
			want := timestamps(a.Records())
			b := fillRing(t, q, pool, max, n)
			if b.Bytes() != int64(b.Cap())*PacketRecordSize {
				t.Fatalf("max %d n %d: ring holds %d bytes for %d records of room", max, n, b.Bytes(), b.Cap())
			}
			room := b.Cap()
			got := b.Take()
			if cap(got) != room {
				t.Errorf("max %d n %d: took %d records of room, the ring had %d", max, n, cap(got), room)
			}
			if g := timestamps(got); len(g) != len(want) {
				t.Errorf("max %d n %d: took %v, Records %v", max, n, g, want)
			} else {
				for i := range g {
					if g[i] != want[i] {
						t.Errorf("max %d n %d: took %v, Records %v", max, n, g, want)
						break
					}
				}
			}
			if w := min(n, max); len(want) != w || want[0] != int64(n-w+1) || want[w-1] != int64(n) {
				t.Errorf("max %d n %d: records %v, want the last %d", max, n, want, w)
			}
			if b.Len() != 0 || b.Cap() != 0 {
				t.Errorf("max %d n %d: ring still has storage after Take", max, n)
			}
			b.Disown()
			a.Release()
		}
	}
}
