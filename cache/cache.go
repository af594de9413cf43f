// Package cache is the trace cache of closed connections (the switch
// vendor's "tcp trace cache"): it sits between the connection tables and
// the outputs, keeping each finished connection the cache mode selects with
// its flight recorder, within the trace memory quota, until it is reset.
package cache

import (
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/record"
)

// Mode selects which closed connections are cached.
type Mode uint8

// Cache modes.
const (
	AbnormalClose Mode = iota // every reason but AN, PN and OP (the vendor's default)
	All                       // every finished connection
)

func (m Mode) String() string {
	if m == All {
		return "all"
	}
	return "abnormal-close"
}

// ParseMode parses "abnormal-close" or "all".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "abnormal-close":
		return AbnormalClose, nil
	case "all":
		return All, nil
	}
	return 0, fmt.Errorf("cache mode %q: want abnormal-close or all", s)
}

// Keeps reports whether the mode caches a connection that ended with code.
func (m Mode) Keeps(code classifier.Code) bool { return m == All || code.Abnormal() }

// Entry is one cached connection: its record and its recorded packets.
type Entry struct {
	Record      record.Record
	Recorded    flightrec.Recording // the flight recorder's records; none when not traced
	Traced      bool
	Overwritten uint64 // records overwritten before the first recorded
	bytes       int64  // what the entry holds of the quota
}

// Packets returns a copy of the entry's packet records, oldest first.
func (e *Entry) Packets() []flightrec.PacketRecord { return e.Recorded.Records() }

// Bytes returns the quota bytes the entry holds.
func (e *Entry) Bytes() int64 { return e.bytes }

// Stats count the cache's work.
type Stats struct {
	Cached         uint64 // entries added since the last reset
	Skipped        uint64 // finished connections the mode does not keep
	NotCachedQuota uint64 // connections the mode keeps that the quota could not hold
	ByReason       map[classifier.Code]uint64
	RecordsCached  uint64 // packet records held
	Resets         uint64
	Mode           Mode // the mode, as of the copy
}

// Cache holds closed connections. It is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	mode    Mode
	quota   *flightrec.Quota
	entries []*Entry
	stats   Stats
}

// New returns an empty cache charging its memory to quota.
func New(mode Mode, quota *flightrec.Quota) *Cache {
	return &Cache{mode: mode, quota: quota, stats: Stats{ByReason: map[classifier.Code]uint64{}}}
}

// entryOverhead is the fixed cost of an entry in the quota.
const entryOverhead = int64(unsafe.Sizeof(Entry{})) + int64(unsafe.Sizeof((*Entry)(nil)))

// size is what the entry holds of the quota with room for records
// packets.
func (e *Entry) size(records int) int64 {
	r := &e.Record
	return entryOverhead + int64(records)*flightrec.PacketRecordSize +
		int64(2*len(r.VLAN)+len(r.History)+len(r.Interface)+len(r.ConnState))
}

// Add offers a finished connection's record and its flight recorder (nil
// when it was not traced). When the mode keeps it and the quota allows,
// the cache takes the recorder's storage as it is (the ring's reservation
// pays for it), leaves the ring empty and returns the entry: the caller
// drops the ring. Otherwise it returns nil and the caller's table releases
// the recorder.
func (c *Cache) Add(rec *record.Record, r *flightrec.Ring) *Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mode.Keeps(rec.Reason) {
		c.stats.Skipped++
		return nil
	}
	e := &Entry{Record: *rec}
	e.Record.VLAN = append([]uint16{}, rec.VLAN...) // [] in JSON, as every record, never null
	var ringBytes int64
	room := 0
	if r != nil {
		e.Traced = true
		e.Overwritten = r.Overwritten()
		ringBytes = r.Bytes()
		room = r.TakeRoom()
	}
	e.bytes = e.size(room)
	// The ring's reservation pays for the records; reserve only what the
	// entry needs beyond it, or give back what it no longer needs (Take
	// compacts a mostly empty ring).
	switch extra := e.bytes - ringBytes; {
	case extra > 0 && !c.quota.Reserve(extra):
		c.stats.NotCachedQuota++
		return nil
	case extra < 0:
		c.quota.Release(-extra)
	}
	if r != nil {
		e.Recorded = r.Take()
		r.Disown() // the entry now holds its bytes
	}
	c.entries = append(c.entries, e)
	c.stats.Cached++
	c.stats.ByReason[rec.Reason]++
	c.stats.RecordsCached += uint64(e.Recorded.Len())
	return e
}

// Reset clears the cache, connections and packets, returning their memory.
func (c *Cache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		c.quota.Release(e.bytes)
	}
	c.entries = nil
	resets := c.stats.Resets + 1
	c.stats = Stats{ByReason: map[classifier.Code]uint64{}, Resets: resets}
}

// Mode returns the cache mode.
func (c *Cache) Mode() Mode { return c.mode }

// SetMode changes the mode for connections added from now on.
func (c *Cache) SetMode(m Mode) {
	c.mu.Lock()
	c.mode = m
	c.mu.Unlock()
}

// Stats returns a copy of the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Mode = c.mode
	s.ByReason = make(map[classifier.Code]uint64, len(c.stats.ByReason))
	for k, v := range c.stats.ByReason {
		s.ByReason[k] = v
	}
	return s
}

// Len returns the number of cached connections.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Entries returns the cached entries, in the order they were added, that
// pass keep (nil keeps all).
func (c *Cache) Entries(keep func(*Entry) bool) []*Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Entry
	for _, e := range c.entries {
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// Find returns the entries of the connection between a and b, in either
// direction (several when the 4-tuple was reused).
func (c *Cache) Find(a, b netip.AddrPort) []*Entry {
	a, b = unmap(a), unmap(b)
	return c.Entries(func(e *Entry) bool {
		cl, sv := e.Record.Client, e.Record.Server
		return (cl == a && sv == b) || (cl == b && sv == a)
	})
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
