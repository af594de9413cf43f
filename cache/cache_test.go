package cache

import (
	"strings"
	"testing"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/record"
)

// traced records n segments (timestamps 1 ms, 2 ms, ...) in a flight
// recorder of max records, as a connection table does, and adds the
// finished connection to c as an AN record.
func traced(t *testing.T, c *Cache, q *flightrec.Quota, max, n int) *Entry {
	t.Helper()
	ring := flightrec.NewRing(q, max, &flightrec.Pool{})
	if ring == nil {
		t.Fatalf("the quota refused a ring of %d records", max)
	}
	for i := range n {
		r, _ := ring.Slot()
		*r = flightrec.PacketRecord{Timestamp: int64(i+1) * 1e6, Flags: capture.FlagACK}
	}
	rec := record.Record{Reason: classifier.AppNormalClose}
	e := c.Add(&rec, ring)
	if e == nil {
		ring.Release()
	}
	return e
}

// TestAddAccountsRecordRoom checks the cache's quota accounting when it
// takes a connection's records: the ring's storage is handed over as it is
// (less than a chunk spare, charged) or compacted when one chunk is mostly
// empty; either way the entry holds the last records in order and the
// quota holds exactly what the entries hold, nothing once the cache is
// reset.
func TestAddAccountsRecordRoom(t *testing.T) {
	q := flightrec.NewQuota(1 << 30)
	c := New(All, q)
	const max = 20
	var held int64
	for _, n := range []int{1, 3, 5, 6, 7, 8, 9, 17, 20, 21, 45} {
		e := traced(t, c, q, max, n)
		if e == nil {
			t.Fatalf("%d segments: not cached", n)
		}
		keep := min(n, max)
		pk := e.Packets()
		if len(pk) != keep || pk[0].Timestamp != int64(n-keep+1)*1e6 || pk[keep-1].Timestamp != int64(n)*1e6 {
			t.Errorf("%d segments: cached %d records, want the last %d in order", n, len(pk), keep)
		}
		for i := 1; i < len(pk); i++ {
			if pk[i].Timestamp <= pk[i-1].Timestamp {
				t.Errorf("%d segments: records out of order at %d", n, i)
			}
		}
		if room := e.Recorded.Room(); room-len(pk) >= 8 || (room < 8 && room != len(pk)) {
			t.Errorf("%d segments: %d records in room for %d", n, len(pk), room)
		}
		if want := e.size(e.Recorded.Room()); e.Bytes() != want {
			t.Errorf("%d segments: entry holds %d bytes, its room needs %d", n, e.Bytes(), want)
		}
		held += e.Bytes()
		if q.Used() != held {
			t.Errorf("after %d segments: quota used %d, entries hold %d", n, q.Used(), held)
		}
	}
	c.Reset()
	if q.Used() != 0 {
		t.Errorf("after reset: quota used %d", q.Used())
	}
}

// An untagged connection's cached record says "vlan":[] as every other
// record does, never null (the record given to Add may have a nil slice).
func TestCachedRecordVLANIsEmptyList(t *testing.T) {
	q := flightrec.NewQuota(1 << 20)
	c := New(All, q)
	e := traced(t, c, q, 10, 3)
	if e == nil {
		t.Fatal("not cached")
	}
	if e.Record.VLAN == nil {
		t.Fatal("cached record's VLAN is nil")
	}
	if js := string(e.Record.AppendJSON(nil)); !strings.Contains(js, `"vlan":[]`) {
		t.Errorf("cached record JSON: %s", js)
	}
}
