package output

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestQueueWrapsAndBounds(t *testing.T) {
	q := newQueue(100)
	var bt batch
	rec := func(i int) []byte { return []byte(fmt.Sprintf("record-%02d\n", i)) } // 10 bytes, 15 with the header
	next, want := 0, 0
	for round := range 50 {
		// Fill: 6 entries of 15 bytes fit in 100, the 7th does not.
		for q.push(rec(next), byte(next&1)) {
			next++
		}
		if recs, used := q.usage(); used+15 <= 100 || recs == 0 {
			t.Fatalf("round %d: a push failed with %d records, %d bytes queued", round, recs, used)
		}
		// Take 1 to 4, in order.
		q.peek(&bt, 1+round%4, 1<<20)
		for i := range bt.len() {
			if got := bt.record(i); !bytes.Equal(got, rec(want)) || bt.flags[i] != byte(want&1) {
				t.Fatalf("round %d: record %q flags %d, want %q", round, got, bt.flags[i], rec(want))
			}
			want++
		}
		q.discard(bt.len(), bt.entryBytes(bt.len()))
	}
	// A record larger than the queue never fits.
	if q.push(make([]byte, 200), 0) {
		t.Error("a 200-byte record fit in a 100-byte queue")
	}
}

func TestQueuePeekLimitsBytes(t *testing.T) {
	q := newQueue(1 << 20)
	for range 100 {
		q.push(make([]byte, 1000), 0)
	}
	var bt batch
	q.peek(&bt, 1000, 10_000)
	if bt.len() != 10 {
		t.Errorf("peek of at most 10000 bytes: %d records of 1000", bt.len())
	}
	q.peek(&bt, 1000, 10) // the first record always comes
	if bt.len() != 1 {
		t.Errorf("peek of at most 10 bytes: %d records, want 1", bt.len())
	}
}

// Set.Write, which the capture workers call for every finished
// connection, allocates nothing: the record is encoded into a pooled
// buffer and copied into each queue.
func TestWriteNoAllocs(t *testing.T) {
	recs := makeRecords(t, 50)
	s, err := New(Config{File: &FileConfig{Path: filepath.Join(t.TempDir(), "r.json")}}, Options{QueueBytes: 64 << 20, FlushTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		s.Write(&recs[i%len(recs)])
		i++
	})
	if n != 0 {
		t.Errorf("%v allocations per Write", n)
	}
}
