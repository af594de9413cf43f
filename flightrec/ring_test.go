package flightrec

import (
	"runtime"
	"testing"
	"time"
)

// fillRing writes n records numbered 1..n (in Timestamp) into a ring of at
// most max records.
func fillRing(t *testing.T, q *Quota, pool *Pool, max, n int) *Ring {
	t.Helper()
	r := NewRing(q, max, pool)
	if r == nil {
		t.Fatalf("NewRing(max %d) refused", max)
	}
	for i := 1; i <= n; i++ {
		rec, _ := r.Slot()
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

// TestRingTakeMatchesRecords checks that handing the storage over (Take)
// yields the same records in the same order as copying them out (Records),
// wrapped or not; that the ring's reservation is exactly its storage, which
// Take hands over (compacted when one chunk is mostly empty); and that
// storage never wastes a chunk.
func TestRingTakeMatchesRecords(t *testing.T) {
	pool := &Pool{}
	for _, max := range []int{1, 3, 8, 13, 64} {
		for n := 1; n <= 3*max+2; n++ {
			q := NewQuota(1 << 30)
			a := fillRing(t, q, pool, max, n)
			want := timestamps(a.Records())
			b := fillRing(t, q, pool, max, n)
			if b.Bytes() != int64(b.Cap())*PacketRecordSize {
				t.Fatalf("max %d n %d: ring holds %d bytes for %d records of room", max, n, b.Bytes(), b.Cap())
			}
			if b.Cap()-b.Len() >= ChunkRecords {
				t.Errorf("max %d n %d: %d records in room for %d", max, n, b.Len(), b.Cap())
			}
			room := b.TakeRoom()
			got := b.Take()
			if got.Room() != room {
				t.Errorf("max %d n %d: took %d records of room, TakeRoom said %d", max, n, got.Room(), room)
			}
			if g := timestamps(got.Records()); len(g) != len(want) {
				t.Errorf("max %d n %d: took %v, Records %v", max, n, g, want)
			} else {
				for i := range g {
					if g[i] != want[i] || got.At(i).Timestamp != want[i] {
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

// TestRingGrowsWithoutMoving checks that growing a ring leaves its records
// where they are (no copy), and that a quota that refuses a chunk makes the
// ring overwrite its oldest records within the room it has.
func TestRingGrowsWithoutMoving(t *testing.T) {
	q := NewQuota(3 * chunkBytes)
	r := NewRing(q, 500, &Pool{})
	first, _ := r.Slot()
	*first = PacketRecord{Timestamp: 1}
	for i := 2; i <= 5*ChunkRecords; i++ {
		rec, _ := r.Slot()
		*rec = PacketRecord{Timestamp: int64(i)}
	}
	if r.Cap() != 3*ChunkRecords || r.Len() != 3*ChunkRecords {
		t.Fatalf("ring of %d records in room for %d, want %d in a quota of 3 chunks", r.Len(), r.Cap(), 3*ChunkRecords)
	}
	if first != r.at(0) || first.Timestamp != 3*ChunkRecords+1 {
		t.Errorf("the first slot moved or was not overwritten in turn: timestamp %d", first.Timestamp)
	}
	got := timestamps(r.Records())
	for i, ts := range got {
		if ts != int64(2*ChunkRecords+1+i) {
			t.Fatalf("records %v, want %d..%d", got, 2*ChunkRecords+1, 5*ChunkRecords)
		}
	}
	r.Release()
	if q.Used() != 0 {
		t.Errorf("quota used %d after release", q.Used())
	}
}

// TestChunkSupply checks that a supply hands out groups of whole chunks,
// that a ring pool uses them before allocating, and that Stop ends the
// supply's goroutine.
func TestChunkSupply(t *testing.T) {
	before := runtime.NumGoroutine()
	s := NewChunkSupply()
	var g [][]PacketRecord
	for deadline := time.Now().Add(5 * time.Second); g == nil && time.Now().Before(deadline); {
		if g = s.group(); g == nil {
			time.Sleep(time.Millisecond)
		}
	}
	if len(g) != supplyGroup {
		t.Fatalf("group of %d chunks, want %d", len(g), supplyGroup)
	}
	for i, c := range g {
		if len(c) != ChunkRecords || cap(c) != ChunkRecords {
			t.Fatalf("chunk %d: len %d cap %d, want %d", i, len(c), cap(c), ChunkRecords)
		}
	}
	want := &g[1][0]
	pool := &Pool{fresh: g[:2]}
	if c := pool.get(); &c[0] != want {
		t.Errorf("the pool allocated while it had supplied chunks")
	}
	s.Stop()
	s.Stop()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Stop, %d before the supply", n, before)
	}
}
