package reassembly

import (
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
)

// A tracked connection keeps inline only what every connection uses on every
// packet. What only some connections ever need lives in two extensions,
// taken from the table's pools the first time a connection needs them and
// returned when the table lets go of it:
//
//   - closeExt, once the connection sends a FIN or RST: the FIN and RST
//     bookkeeping of both ends and of Zeek's analysis, and when it ended;
//   - rareExt, once something unusual happens: retransmissions, probes,
//     repeated SYNs, the rarely non-zero Wireshark analysis counts, sequence
//     number wraps, holes, long Zeek histories, counts past 16 bits;
//   - and, for a connection that came through a tunnel, its capture.Tunnel
//     (setTunnel), kept from its first segment for the record.
//
// Both are plain values (no pointers) kept in slabs, so they cost the
// garbage collector nothing, and reusing them allocates nothing: memory
// grows with the connections held at once, never with packets.

// closeExt is a connection's FIN and RST bookkeeping.
type closeExt struct {
	endedAt    int64    // packet time the connection ended (Conn.EndedAt)
	finTime    [2]int64 // first FIN sent, by Role
	rstTime    [2]int64 // first RST sent, by Role
	lastNonRST [2]int64 // last segment that was not a RST, while the last one was (see trackedEnd.lastNonRST)
	zeek       zeekClose
}

// rareExt is a connection's state that stays zero unless something unusual
// happens.
type rareExt struct {
	ends [2]rareEnd // by Role
	zeek zeekRare
	// watchAt is the connection's place on the table's watch list, plus
	// one (0: not on it).
	watchAt uint32
}

// rareEnd is one endpoint's rarely used state.
type rareEnd struct {
	counts      AnalysisCounts
	retransmits Run
	persist     Run
	keepalive   Run
	synRun      Run                    // when not the single SYN at its first segment (trackedEnd.synRunInline)
	wideHi      [numWide]uint32        // high halves of trackedEnd.wide
	countsHi    [numSmallCounts]uint16 // high halves of trackedEnd.small
}

// slabChunk is how many values a slab allocates at once: 1024 values of a
// size that is a multiple of 8 fill whole 8 KiB pages, so no memory is lost
// to rounding.
const slabChunk = 1024

// slab holds values of T addressed by a uint32 handle (index+1; 0 means
// none). Values never move, so pointers to them stay valid until Free, and
// freed values are reused (zeroed) before new chunks are allocated.
type slab[T any] struct {
	chunks []*[slabChunk]T
	used   uint32   // handles handed out so far, free ones included
	free   []uint32 // freed handles, reused last freed first
	live   int      // handles in use
}

// at returns the value of handle h (h != 0).
func (s *slab[T]) at(h uint32) *T {
	i := h - 1
	return &s.chunks[i/slabChunk][i%slabChunk]
}

// alloc returns a zero value and its handle.
func (s *slab[T]) alloc() (uint32, *T) {
	s.live++
	if n := len(s.free); n > 0 {
		h := s.free[n-1]
		s.free = s.free[:n-1]
		return h, s.at(h)
	}
	if s.used == uint32(len(s.chunks))*slabChunk {
		// Plain heap memory. Advising it (and the index and recorder
		// chunks) as transparent huge pages saved page faults in short
		// offline runs but cost the live daemon 40-50 % more CPU a
		// packet (README, Performance).
		s.chunks = append(s.chunks, new([slabChunk]T))
	}
	s.used++
	return s.used, s.at(s.used)
}

// release zeroes the value of handle h and makes it available again.
func (s *slab[T]) release(h uint32) {
	var zero T
	*s.at(h) = zero
	s.free = append(s.free, h)
	s.live--
}

// bytes returns the memory the slab holds: its chunks and bookkeeping.
func (s *slab[T]) bytes(size uintptr) int64 {
	return int64(len(s.chunks))*slabChunk*int64(size) + int64(cap(s.chunks))*8 + int64(cap(s.free))*4
}

// closeExt returns c's close extension, taking one from the pool first if
// it has none.
func (t *Table) closeExt(c *tracked) *closeExt {
	if c.closeX == 0 {
		c.closeX, _ = t.closes.alloc()
	}
	return t.closes.at(c.closeX)
}

// closeExtIf returns c's close extension, or nil when it has none.
func (t *Table) closeExtIf(c *tracked) *closeExt {
	if c.closeX == 0 {
		return nil
	}
	return t.closes.at(c.closeX)
}

// rareExt returns c's rare extension, taking one from the pool first if it
// has none.
func (t *Table) rareExt(c *tracked) *rareExt {
	if c.rareX == 0 {
		c.rareX, _ = t.rares.alloc()
	}
	return t.rares.at(c.rareX)
}

// rareExtIf returns c's rare extension, or nil when it has none.
func (t *Table) rareExtIf(c *tracked) *rareExt {
	if c.rareX == 0 {
		return nil
	}
	return t.rares.at(c.rareX)
}

// traceOf returns c's flight recorder, or nil when it is not traced.
func (t *Table) traceOf(c *tracked) *flightrec.Ring { return t.traces[c.traceX] }

// setTrace gives c the flight recorder r. Traced connections are few (the
// trace quota bounds them), so their recorders are in a plain slice.
func (t *Table) setTrace(c *tracked, r *flightrec.Ring) {
	if n := len(t.freeTraces); n > 0 {
		c.traceX = t.freeTraces[n-1]
		t.freeTraces = t.freeTraces[:n-1]
	} else {
		c.traceX = uint32(len(t.traces))
		t.traces = append(t.traces, nil)
	}
	t.traces[c.traceX] = r
}

// releaseExts returns c's extensions and flight recorder handle to the
// pools.
func (t *Table) releaseExts(c *tracked) {
	if c.closeX != 0 {
		t.closes.release(c.closeX)
		c.closeX = 0
	}
	if c.rareX != 0 {
		t.rares.release(c.rareX)
		c.rareX = 0
	}
	if c.tunnelX != 0 {
		t.tunnels.release(c.tunnelX)
		c.tunnelX = 0
	}
	if c.traceX != 0 {
		t.traces[c.traceX] = nil
		t.freeTraces = append(t.freeTraces, c.traceX)
		c.traceX = 0
	}
}

// setTunnel keeps the tunnel a new connection's first segment came
// through, in the tunnel pool, so plain connections pay only the handle.
func (t *Table) setTunnel(c *tracked, p *capture.Packet) {
	if p.Tunnel.Depth == 0 {
		return
	}
	var x *capture.Tunnel
	c.tunnelX, x = t.tunnels.alloc()
	*x = p.Tunnel
}

// tunnelOf returns c's tunnel, the zero Tunnel when it is not tunnelled.
func (t *Table) tunnelOf(c *tracked) capture.Tunnel {
	if c.tunnelX == 0 {
		return capture.Tunnel{}
	}
	return *t.tunnels.at(c.tunnelX)
}
