package reassembly

import (
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
)

// Key identifies a connection's 4-tuple (plus VLAN tags) regardless of
// direction: the lower endpoint comes first.
type Key struct {
	LoAddr, HiAddr capture.Addr
	LoPort, HiPort uint16
	VLAN           uint32 // outer<<12 | inner VLAN ID; 0 when untagged
	// VNI is the connection's virtual network: the VNI of the innermost
	// VXLAN or Geneve tunnel it came through plus one, 0 for none
	// (capture.Tunnel.VirtualNetwork says why only that part is keyed).
	VNI    uint32
	Family capture.Family
}

// KeyOf returns the direction-free key of p.
func KeyOf(p *capture.Packet) Key {
	k, _ := keyOf(p)
	return k
}

// Config holds the connection table's timers, in packet time.
type Config struct {
	// IdleTimeout ends a connection that has seen no segment for this long.
	IdleTimeout time.Duration
	// CloseLinger keeps a connection that ended (RST or completed close)
	// in the table this long, so retransmitted FINs and trailing RSTs are
	// counted with it instead of starting a new, mid-stream connection.
	// Zero means the default; negative means no linger.
	CloseLinger time.Duration
	// MaxConnections bounds the connections the table holds (0: the
	// default). When full, a new connection first evicts the oldest ended
	// one, else the least recently seen live one (reported with end cause
	// "evicted"), so a flood of new connections cannot grow memory.
	MaxConnections int
	// LocalNets names each connection's local side for the live counts by
	// side (TableStats.Segments): the endpoint inside these prefixes when
	// exactly one endpoint is, else the client (LocalRoleOf, the rule the
	// classifier names the local side by; pass it the same prefixes).
	LocalNets []netip.Prefix
	// VLANPolicy says how VLAN tags separate connections (the zero value
	// is VLANAuto).
	VLANPolicy VLANPolicy
}

// VLANPolicy says how 802.1Q/802.1ad tags separate connections.
type VLANPolicy uint8

const (
	// VLANAuto keys a connection by its tags when both directions carry
	// the same ones (two VLANs may reuse one address space), joins the
	// directions of a 4-tuple whose tags differ or where one is untagged
	// (asymmetric tagging on a mirror port), and counts a direction's
	// segments seen again on other tags (a SPAN of two VLANs sees a routed
	// packet twice) as copies: TableStats.VLANCopies, not the connection's.
	VLANAuto VLANPolicy = iota
	// VLANStrict makes every tag set a connection of its own.
	VLANStrict
)

// String returns the policy's name in the configuration.
func (v VLANPolicy) String() string {
	if v == VLANStrict {
		return "strict"
	}
	return "auto"
}

// ParseVLANPolicy parses a policy name: auto or strict.
func ParseVLANPolicy(s string) (VLANPolicy, error) {
	switch s {
	case "auto":
		return VLANAuto, nil
	case "strict":
		return VLANStrict, nil
	}
	return 0, fmt.Errorf("%q: want auto or strict", s)
}

// Defaults for Config.
const (
	DefaultIdleTimeout = 5 * time.Minute // Zeek's tcp_inactivity_timeout
	DefaultCloseLinger = 5 * time.Second // Zeek's tcp_close_delay / tcp_reset_delay
)

// DefaultMaxConnections is the default bound on connections held at once:
// about 0.4 GiB of connection state (425 bytes per connection at a million,
// index included; TestMemoryPerConnection measures it). Connections that
// closed or saw something unusual also hold an extension (closeExt, 104
// bytes; rareExt, 976 bytes): 1.4 GiB at most should every connection hold
// both.
const DefaultMaxConnections = 1_000_000

// DefaultConfig returns the default timers and bounds.
func DefaultConfig() Config {
	return Config{IdleTimeout: DefaultIdleTimeout, CloseLinger: DefaultCloseLinger, MaxConnections: DefaultMaxConnections}
}

// TableStats are the table's counters.
type TableStats struct {
	Trace       flightrec.Stats
	Packets     uint64
	Opened      uint64 // connections created
	Finalized   uint64 // connections handed to the sink
	ReusedPorts uint64 // connections ended by a new SYN on their 4-tuple
	Evicted     uint64 // connections let go early because the table was full
	VLANCopies  uint64 // segments set aside as copies on other VLAN tags (VLANAuto)
	// Segments counts every segment when it is applied, by its sender's
	// role and side, so that byte, segment and retransmission rates show
	// open connections too.
	Segments SegmentStats
}

// Add adds o's counts to s.
func (s *TableStats) Add(o *TableStats) {
	s.Trace.Add(&o.Trace)
	s.Packets += o.Packets
	s.Opened += o.Opened
	s.Finalized += o.Finalized
	s.ReusedPorts += o.ReusedPorts
	s.Evicted += o.Evicted
	s.VLANCopies += o.VLANCopies
	s.Segments.Add(&o.Segments)
}

// Sink receives each connection the table lets go of. The *Conn is only
// valid during the call.
type Sink func(c *Conn)

// Table is one worker's connection table. It is not safe for concurrent
// use: a worker owns its shard and its table.
//
// Connections are kept compactly (tracked) in a slab and found through an
// open-addressing index of handles; the active and ended lists link
// handles. Memory grows with the connections held at once (up to
// MaxConnections), never with packets: after warm-up, a packet allocates
// nothing.
type Table struct {
	cfg    Config
	conns  slab[tracked]
	index  connIndex
	seed   hashSeed
	active connList // live connections, least recently seen first
	ended  connList // ended connections lingering, oldest end first
	// endedHeadAt is when ended.head ended (its EndedAt, kept here so that
	// expire does not look at its extension on every packet).
	endedHeadAt int64
	closes      slab[closeExt]
	rares       slab[rareExt]
	tunnels     slab[capture.Tunnel] // tunnelled connections' first segment's tunnel
	traces      []*flightrec.Ring    // the traced connections' flight recorders, by handle (0: none)
	freeTraces  []uint32             // handles free for reuse
	view        Conn                 // what the sink, the dead check and EachOpen are given
	now         int64                // latest packet time seen
	sink        Sink
	trace       flightrec.Config
	quota       *flightrec.Quota
	rings       flightrec.Pool

	watch []uint32    // connections with a run in progress (watch.go)
	page  []pageEntry // EachOpenFrom's heap, kept for the next page

	keyedByTags int // connections keyed by their VLAN tags under VLANAuto

	deadCheck    func(c *Conn) bool
	deadEvery    int64
	deadMinQuiet int64
	lastDeadScan int64
	idBase       uint64
	idStep       uint64
	nextID       uint64
	Stats        TableStats
}

// maxHandles bounds MaxConnections: handles are uint32, 0 meaning none.
const maxHandles = 1<<32 - 2

// NewTable returns an empty table that hands finished connections to sink.
// Connection IDs are worker + k*workers, so they are unique across workers.
func NewTable(cfg Config, worker, workers int, sink Sink) *Table {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	switch {
	case cfg.CloseLinger == 0:
		cfg.CloseLinger = DefaultCloseLinger
	case cfg.CloseLinger < 0:
		cfg.CloseLinger = 0 // negative: no linger at all
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	cfg.MaxConnections = min(cfg.MaxConnections, maxHandles)
	if workers < 1 {
		workers = 1
	}
	return &Table{
		cfg:    cfg,
		seed:   newHashSeed(),
		traces: []*flightrec.Ring{nil}, // handle 0: not traced
		sink:   sink,
		idBase: uint64(worker),
		idStep: uint64(workers),
	}
}

// EachOpen calls fn for every connection not yet ended (least recently
// seen first), until fn returns false. The *Conn is only valid during the
// call (its EvalTime is 0: the caller judges as of when it likes); the table
// must not be used concurrently.
func (t *Table) EachOpen(fn func(c *Conn) bool) {
	for h := t.active.head; h != 0; {
		c := t.conns.at(h)
		h = c.next
		t.fill(&t.view, c, 0, 0)
		more := fn(&t.view)
		t.view.Trace = nil // the view holds no recorder between calls
		if !more {
			return
		}
	}
}

// EachOpenFrom calls fn, in increasing ID order, for at most max open
// connections whose IDs are from or above, and reports whether more open
// connections with higher IDs remain. It reads only the compact state of
// every open connection and fills a full view for the ones it hands out,
// so a page of a large table holds its worker for little longer than the
// page takes to build. The *Conn is only valid during the call.
func (t *Table) EachOpenFrom(from uint64, max int, fn func(c *Conn)) (more bool) {
	if max <= 0 {
		return t.active.n > 0
	}
	// A max-heap by ID of the max lowest IDs from from seen so far.
	heap := t.page[:0]
	for h := t.active.head; h != 0; {
		c := t.conns.at(h)
		if c.id >= from {
			switch {
			case len(heap) < max:
				heap = append(heap, pageEntry{c.id, h})
				for i := len(heap) - 1; i > 0; {
					up := (i - 1) / 2
					if heap[up].id >= heap[i].id {
						break
					}
					heap[up], heap[i] = heap[i], heap[up]
					i = up
				}
			case c.id < heap[0].id:
				heap[0] = pageEntry{c.id, h}
				siftDown(heap, 0, len(heap))
				more = true
			default:
				more = true
			}
		}
		h = c.next
	}
	// Heap sort: ascending IDs.
	for end := len(heap) - 1; end > 0; end-- {
		heap[0], heap[end] = heap[end], heap[0]
		siftDown(heap, 0, end)
	}
	t.page = heap
	for _, e := range heap {
		t.fill(&t.view, t.conns.at(e.h), 0, 0)
		fn(&t.view)
		t.view.Trace = nil
	}
	return more
}

// pageEntry is a connection's ID and handle, for EachOpenFrom.
type pageEntry struct {
	id uint64
	h  uint32
}

// siftDown restores the max-heap property of heap[:n] below i.
func siftDown(heap []pageEntry, i, n int) {
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		big := l
		if r := l + 1; r < n && heap[r].id > heap[l].id {
			big = r
		}
		if heap[i].id >= heap[big].id {
			return
		}
		heap[i], heap[big] = heap[big], heap[i]
		i = big
	}
}

// Trace returns the table's trace configuration.
func (t *Table) Trace() flightrec.Config { return t.trace }

// Len returns the number of connections held.
func (t *Table) Len() int { return t.conns.live }

// MemoryStats is what a table's connection state occupies, trace records
// not included.
type MemoryStats struct {
	Connections int   // connections held
	Bytes       int64 // connection state, index and extensions, free slots included
	CloseExts   int   // connections holding a close extension
	RareExts    int   // connections holding a rare extension
}

// Memory returns what the table's connection state occupies.
func (t *Table) Memory() MemoryStats {
	return MemoryStats{
		Connections: t.conns.live,
		Bytes: t.conns.bytes(unsafe.Sizeof(tracked{})) + t.index.bytes() +
			t.closes.bytes(unsafe.Sizeof(closeExt{})) + t.rares.bytes(unsafe.Sizeof(rareExt{})) +
			t.tunnels.bytes(unsafe.Sizeof(capture.Tunnel{})) +
			int64(cap(t.traces))*8 + int64(cap(t.freeTraces))*4,
		CloseExts: t.closes.live,
		RareExts:  t.rares.live,
	}
}

// SetTrace configures the flight recorder; q is the memory budget shared
// with the other workers and the cache. Connections already in the table
// keep their tracing state.
func (t *Table) SetTrace(cfg flightrec.Config, q *flightrec.Quota) {
	if cfg.MaxPacketNumber <= 0 {
		cfg.MaxPacketNumber = flightrec.DefaultMaxPacketNumber
	}
	t.trace, t.quota = cfg, q
}

// SetChunkSupply has the table take flight-recorder chunks from s, which
// its caller stops once done with the table. Without one, the table
// allocates them as it needs them.
func (t *Table) SetChunkSupply(s *flightrec.ChunkSupply) { t.rings.SetSupply(s) }

// Packet applies one segment.
func (t *Table) Packet(p *capture.Packet) { t.PacketWithHeaders(p, nil) }

// lookup returns the handle of the connection with key k and hash h, or 0.
func (t *Table) lookup(k *Key, h uint64) uint32 {
	x := &t.index
	if x.n == 0 {
		return 0
	}
	m := x.mask()
	tag := uint32(h)
	for i := tag & m; ; i = (i + 1) & m {
		s := x.slots[i]
		if s == 0 {
			return 0
		}
		if uint32(s>>32) == tag && t.conns.at(uint32(s)).is(k) {
			return uint32(s)
		}
	}
}

// PacketWithHeaders applies one segment; hdr, its IP and TCP header bytes
// (nil when unknown), goes into the flight recorder of a traced connection.
func (t *Table) PacketWithHeaders(p *capture.Packet, hdr []byte) {
	t.Stats.Packets++
	if p.Timestamp > t.now {
		t.now = p.Timestamp
		t.expire(t.now)
	}
	k, srcLo := keyOf(p)
	var kh uint64
	var h uint32
	if t.cfg.VLANPolicy == VLANAuto {
		var copied bool
		if h, kh, copied = t.findByTags(&k, srcLo, p); copied {
			t.Stats.VLANCopies++
			return
		}
	} else {
		kh = t.seed.hash(&k)
		h = t.lookup(&k, kh)
	}
	var c *tracked
	if h != 0 {
		c = t.conns.at(h)
		// Only a SYN without ACK can start a new connection on the 4-tuple.
		if p.Flags&(capture.FlagSYN|capture.FlagACK) == capture.FlagSYN && t.isNewConnection(c, p, srcLo) {
			t.Stats.ReusedPorts++
			t.finalize(h, EndReused, p.Timestamp)
			h = 0
		}
	}
	if h == 0 {
		if t.conns.live >= t.cfg.MaxConnections {
			t.evictOne(p.Timestamp)
		}
		h, c = t.conns.alloc()
		c.init(&k, p, srcLo, t.idBase+t.nextID*t.idStep)
		if k.VLAN&vlanKeyed != 0 {
			t.keyedByTags++
		}
		t.decideLocal(c)
		t.setTunnel(c, p)
		t.nextID++
		t.index.insert(kh, h)
		t.pushBack(&t.active, h, c)
		t.Stats.Opened++
		t.startTrace(c, p)
	} else if !c.has(cfEnded) {
		t.moveToBack(&t.active, h, c)
	}
	from, a := t.update(c, p, srcLo)
	t.countSegment(c, from, p, a)
	if c.flags&cfRunGrew != 0 {
		t.watchGrown(h, c)
	}
	if c.traceX != 0 && t.trace.Enabled {
		t.record(c, p, from, a, hdr)
	}
	if !c.has(cfEnded) && c.flags&(cfAnyRST|cfCloseDone) != 0 {
		t.remove(&t.active, h, c)
		c.flags |= cfEnded
		t.closeExt(c).endedAt = p.Timestamp
		if t.ended.head == 0 {
			t.endedHeadAt = p.Timestamp
		}
		t.pushBack(&t.ended, h, c)
	}
}

// vlanKeyed marks Key.VLAN of a connection VLANAuto keys by its tags (the
// packed tags take 24 bits); the others of VLANAuto have Key.VLAN 0.
const vlanKeyed = 1 << 31

// findByTags looks up p's connection under VLANAuto. k is p's key with its
// tags; it is changed to the key the connection has or would be created
// with, and kh is that key's hash. copied reports a segment to set aside:
// its sender was seen on other tags before.
//
// A 4-tuple's connection is held under the tag-free key, its first sender's
// tags in vlan and the other endpoint's in peerTags once seen. A segment
// whose sender was not seen yet joins, whatever its tags; one on the tags
// its sender was seen with belongs; one on other tags is a copy, unless it
// is a SYN with another initial sequence number: a connection of its own,
// on the same 4-tuple in another VLAN, keyed by its tags (vlanKeyed), found
// first for segments on those tags.
func (t *Table) findByTags(k *Key, srcLo bool, p *capture.Packet) (h uint32, kh uint64, copied bool) {
	tags := k.VLAN
	if t.keyedByTags > 0 {
		k.VLAN = tags | vlanKeyed
		kh = t.seed.hash(k)
		if h = t.lookup(k, kh); h != 0 {
			return h, kh, false
		}
	}
	keyed, keyedHash := *k, kh
	k.VLAN = 0
	kh = t.seed.hash(k)
	h = t.lookup(k, kh)
	if h == 0 {
		return 0, kh, false
	}
	c := t.conns.at(h)
	from := c.dirOf(srcLo)
	var seen uint32
	switch {
	case from == roleIf(c.has(cfFirstFromServer)):
		seen = packTags(c.vlanCount, c.vlan)
	case c.has(cfPeerTagsSeen):
		seen = c.peerTags
	default:
		c.peerTags = tags
		c.flags |= cfPeerTagsSeen
		return h, kh, false
	}
	if seen == tags {
		return h, kh, false
	}
	if e := &c.ends[from]; p.Flags&(capture.FlagSYN|capture.FlagACK) == capture.FlagSYN && e.has(efSawSYN) && p.Seq != e.isn {
		if keyed.VLAN == tags {
			keyed.VLAN = tags | vlanKeyed
			keyedHash = t.seed.hash(&keyed)
		}
		*k = keyed
		return 0, keyedHash, false
	}
	return 0, 0, true
}

// packTags packs VLAN tags as Key.VLAN does.
func packTags(n uint8, vlan [2]uint16) uint32 {
	switch n {
	case 0:
		return 0
	case 1:
		return uint32(vlan[0])
	}
	return uint32(vlan[0])<<12 | uint32(vlan[1])
}

// isNewConnection reports whether p, a segment of c's 4-tuple, starts a new
// connection: a SYN without ACK whose ISN differs from the one c's client
// used, as Wireshark's "TCP port numbers reused", or any SYN once c ended.
func (t *Table) isNewConnection(c *tracked, p *capture.Packet, srcLo bool) bool {
	if !p.Flags.Has(capture.FlagSYN) || p.Flags.Has(capture.FlagACK) {
		return false
	}
	from := c.dirOf(srcLo)
	e := &c.ends[from]
	if c.has(cfEnded) {
		if from == Client && !e.has(efSawSYN) && c.has(cfSYNACKSeen) && p.Seq+1 == c.synAckAck {
			// The client's SYN, never seen before, retransmitted late: the
			// SYN-ACK acknowledged exactly it.
			return false
		}
		return !e.has(efSawSYN) || p.Seq != e.isn || from != Client
	}
	if from == Server && !c.ends[Server].has(efSawSYN) && !c.has(cfEstablished) {
		// The other side now opens: e.g. a refused attempt's port reused
		// in the other direction.
		return c.has(cfAnyRST)
	}
	return e.has(efSawSYN) && p.Seq != e.isn
}

// expire finalizes lingering and idle connections as of packet time now.
func (t *Table) expire(now int64) {
	linger := int64(t.cfg.CloseLinger)
	for h := t.ended.head; h != 0 && t.endedHeadAt+linger <= now; h = t.ended.head {
		if linger > 0 && t.stillRetransmitting(t.conns.at(h), now) {
			t.lingerAgain(h, now)
			continue
		}
		t.finalize(h, EndClosed, t.conns.at(h).lastSeen())
	}
	idle := int64(t.cfg.IdleTimeout)
	for h := t.active.head; h != 0; h = t.active.head {
		last := t.conns.at(h).lastSeen()
		if last+idle > now {
			break
		}
		t.finalize(h, EndIdle, last+idle)
	}
}

// lingerAgain starts connection h's close linger again as of now: it
// goes to the back of the ended list.
func (t *Table) lingerAgain(h uint32, now int64) {
	c := t.conns.at(h)
	t.remove(&t.ended, h, c)
	t.closeExt(c).endedAt = now
	t.pushBack(&t.ended, h, c)
	t.endedHeadAt = t.closes.at(t.conns.at(t.ended.head).closeX).endedAt
}

// evictOne makes room for one connection: the oldest ended connection, else
// the least recently seen live one.
func (t *Table) evictOne(now int64) {
	h := t.ended.head
	if h == 0 {
		h = t.active.head
	}
	if h == 0 {
		return
	}
	t.Stats.Evicted++
	if c := t.conns.at(h); c.has(cfEnded) {
		t.finalize(h, EndClosed, c.lastSeen())
	} else {
		t.finalize(h, EndEvicted, now)
	}
}

// Flush finalizes every connection at the end of input, end being the time
// of the last packet of the whole capture (not only this worker's), so the
// answer does not depend on how flows were sharded.
func (t *Table) Flush(end int64) {
	if end < t.now {
		end = t.now
	}
	idle := int64(t.cfg.IdleTimeout)
	for h := t.ended.head; h != 0; h = t.ended.head {
		t.finalize(h, EndClosed, t.conns.at(h).lastSeen())
	}
	for h := t.active.head; h != 0; h = t.active.head {
		if last := t.conns.at(h).lastSeen(); last+idle <= end {
			t.finalize(h, EndIdle, last+idle)
		} else {
			t.finalize(h, EndCapture, end)
		}
	}
}

// Tick advances the table's clock without a packet (live capture with no
// traffic), expiring what is due, and, with a dead check set, lets go of
// silent connections the check judges dead.
func (t *Table) Tick(now int64) {
	if now > t.now {
		t.now = now
		t.expire(now)
	}
	if t.deadCheck != nil && now-t.lastDeadScan >= t.deadEvery {
		t.lastDeadScan = now
		t.scanDead(now)
	}
}

// SetDeadCheck makes Tick, at most once per every, offer each connection
// that has been silent for at least quiet and shows a retransmission,
// probe or handshake in progress to dead, judged as of the tick (EvalTime
// set); those it accepts end at once (EndSilent) instead of after the idle
// timeout. Live capture uses it so a connection killed by a timer is
// reported within seconds; offline, the end of the capture decides.
func (t *Table) SetDeadCheck(dead func(c *Conn) bool, every, quiet time.Duration) {
	t.deadCheck, t.deadEvery, t.deadMinQuiet = dead, int64(every), int64(quiet)
}

func (t *Table) scanDead(now int64) {
	for h := t.active.head; h != 0; {
		c := t.conns.at(h)
		if c.lastSeen()+t.deadMinQuiet > now {
			break
		}
		next := c.next
		if t.inProgress(c) {
			t.fill(&t.view, c, 0, now)
			dead := t.deadCheck(&t.view)
			t.view.Trace = nil
			if dead {
				t.finalize(h, EndSilent, now)
			}
		}
		h = next
	}
}

// finalize lets go of connection h, which ended for reason end, judged as
// of eval: it leaves its list and the index, goes to the sink, and its slot,
// extensions and flight recorder are released.
func (t *Table) finalize(h uint32, end EndCause, eval int64) {
	c := t.conns.at(h)
	t.unwatch(c)
	if c.has(cfEnded) {
		t.remove(&t.ended, h, c)
		if n := t.ended.head; n != 0 {
			t.endedHeadAt = t.closes.at(t.conns.at(n).closeX).endedAt
		}
	} else {
		t.remove(&t.active, h, c)
	}
	k := c.key()
	t.index.remove(t.seed.hash(&k), h)
	if k.VLAN&vlanKeyed != 0 {
		t.keyedByTags--
	}
	t.Stats.Finalized++
	tr := t.traceOf(c)
	if t.sink != nil {
		t.fill(&t.view, c, end, eval)
		t.sink(&t.view) // may take the view's Trace (the cache keeps it)
		tr = t.view.Trace
		t.view.Trace = nil
	}
	if tr != nil {
		tr.Release()
	}
	t.releaseExts(c)
	t.conns.release(h)
}

// connList is a doubly linked list of connections by handle, linked
// through their prev and next fields.
type connList struct {
	head, tail uint32
	n          int
}

func (t *Table) pushBack(l *connList, h uint32, c *tracked) {
	c.prev, c.next = l.tail, 0
	if l.tail != 0 {
		t.conns.at(l.tail).next = h
	} else {
		l.head = h
	}
	l.tail = h
	l.n++
}

func (t *Table) remove(l *connList, h uint32, c *tracked) {
	if c.prev != 0 {
		t.conns.at(c.prev).next = c.next
	} else {
		l.head = c.next
	}
	if c.next != 0 {
		t.conns.at(c.next).prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = 0, 0
	l.n--
}

func (t *Table) moveToBack(l *connList, h uint32, c *tracked) {
	if l.tail == h {
		return
	}
	t.remove(l, h, c)
	t.pushBack(l, h, c)
}
