package reassembly

import (
	"bytes"
	"time"

	"github.com/tcptap/tcptap/capture"
)

// Key identifies a connection's 4-tuple (plus VLAN tags) regardless of
// direction: the lower endpoint comes first.
type Key struct {
	LoAddr, HiAddr capture.Addr
	LoPort, HiPort uint16
	VLAN           uint32 // outer<<12 | inner VLAN ID; 0 when untagged
	Family         capture.Family
}

// KeyOf returns the direction-free key of p.
func KeyOf(p *capture.Packet) Key {
	k := Key{Family: p.Family}
	switch p.VLANCount {
	case 0:
	case 1:
		k.VLAN = uint32(p.VLAN[0])
	default:
		k.VLAN = uint32(p.VLAN[0])<<12 | uint32(p.VLAN[1])
	}
	c := bytes.Compare(p.Src[:], p.Dst[:])
	if c < 0 || (c == 0 && p.SrcPort <= p.DstPort) {
		k.LoAddr, k.LoPort, k.HiAddr, k.HiPort = p.Src, p.SrcPort, p.Dst, p.DstPort
	} else {
		k.LoAddr, k.LoPort, k.HiAddr, k.HiPort = p.Dst, p.DstPort, p.Src, p.SrcPort
	}
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
}

// Defaults for Config.
const (
	DefaultIdleTimeout = 5 * time.Minute // Zeek's tcp_inactivity_timeout
	DefaultCloseLinger = 5 * time.Second // Zeek's tcp_close_delay / tcp_reset_delay
)

// DefaultMaxConnections is the default bound on connections held at once,
// about 2 GiB of connection state at the current ~2 KiB per connection.
const DefaultMaxConnections = 1_000_000

// DefaultConfig returns the default timers and bounds.
func DefaultConfig() Config {
	return Config{IdleTimeout: DefaultIdleTimeout, CloseLinger: DefaultCloseLinger, MaxConnections: DefaultMaxConnections}
}

// TableStats are the table's counters.
type TableStats struct {
	Trace       TraceStats
	Packets     uint64
	Opened      uint64 // connections created
	Finalized   uint64 // connections handed to the sink
	ReusedPorts uint64 // connections ended by a new SYN on their 4-tuple
	Evicted     uint64 // connections let go early because the table was full
}

// Sink receives each connection the table lets go of. The *Conn is only
// valid during the call.
type Sink func(c *Conn)

// Table is one worker's connection table. It is not safe for concurrent
// use: a worker owns its shard and its table.
type Table struct {
	cfg    Config
	conns  map[Key]*Conn
	active connList // live connections, least recently seen first
	ended  connList // ended connections lingering, oldest end first
	free   []*Conn
	now    int64 // latest packet time seen
	sink   Sink
	trace  TraceConfig
	quota  *Quota
	rings  ringPool

	deadCheck    func(c *Conn) bool
	deadEvery    int64
	deadMinQuiet int64
	lastDeadScan int64
	idBase       uint64
	idStep       uint64
	nextID       uint64
	Stats        TableStats
}

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
	if workers < 1 {
		workers = 1
	}
	return &Table{
		cfg:    cfg,
		conns:  make(map[Key]*Conn),
		sink:   sink,
		idBase: uint64(worker),
		idStep: uint64(workers),
	}
}

// EachOpen calls fn for every connection not yet ended (least recently
// seen first), until fn returns false. The *Conn is only valid during the
// call; the table must not be used concurrently.
func (t *Table) EachOpen(fn func(c *Conn) bool) {
	for c := t.active.head; c != nil; c = c.next {
		if !fn(c) {
			return
		}
	}
}

// Trace returns the table's trace configuration.
func (t *Table) Trace() TraceConfig { return t.trace }

// Len returns the number of connections held.
func (t *Table) Len() int { return len(t.conns) }

// SetTrace configures the flight recorder; q is the memory budget shared
// with the other workers and the cache. Connections already in the table
// keep their tracing state.
func (t *Table) SetTrace(cfg TraceConfig, q *Quota) {
	if cfg.MaxPacketNumber <= 0 {
		cfg.MaxPacketNumber = DefaultMaxPacketNumber
	}
	t.trace, t.quota = cfg, q
}

// Packet applies one segment.
func (t *Table) Packet(p *capture.Packet) { t.PacketWithHeaders(p, nil) }

// PacketWithHeaders applies one segment; hdr, its IP and TCP header bytes
// (nil when unknown), goes into the flight recorder of a traced connection.
func (t *Table) PacketWithHeaders(p *capture.Packet, hdr []byte) {
	t.Stats.Packets++
	if p.Timestamp > t.now {
		t.now = p.Timestamp
		t.expire(t.now)
	}
	k := KeyOf(p)
	c := t.conns[k]
	if c != nil && t.isNewConnection(c, p) {
		c.End = EndReused
		c.EvalTime = p.Timestamp
		t.Stats.ReusedPorts++
		t.finalize(c)
		c = nil
	}
	if c == nil {
		if len(t.conns) >= t.cfg.MaxConnections {
			t.evictOne(p.Timestamp)
		}
		c = t.alloc()
		c.init(k, p, t.idBase+t.nextID*t.idStep)
		t.nextID++
		t.conns[k] = c
		t.active.pushBack(c)
		t.Stats.Opened++
		t.startTrace(c, p)
	} else if c.list == &t.active {
		t.active.moveToBack(c)
	}
	from, a := c.update(p)
	if c.Trace != nil && t.trace.Enabled {
		t.record(c, p, from, a, hdr)
	}
	if !c.Ended && (c.AnyRST || c.CloseDone) {
		c.Ended = true
		c.EndedAt = p.Timestamp
		t.active.remove(c)
		t.ended.pushBack(c)
	}
}

// isNewConnection reports whether p, a segment of c's 4-tuple, starts a new
// connection: a SYN without ACK whose ISN differs from the one c's client
// used, as Wireshark's "TCP port numbers reused", or any SYN once c ended.
func (t *Table) isNewConnection(c *Conn, p *capture.Packet) bool {
	if !p.Flags.Has(capture.FlagSYN) || p.Flags.Has(capture.FlagACK) {
		return false
	}
	from := c.dirOf(p)
	e := &c.Ends[from]
	if c.Ended {
		if from == Client && !e.SawSYN && c.SYNACKTime != 0 && p.Seq+1 == c.synAckAck {
			// The client's SYN, never seen before, retransmitted late: the
			// SYN-ACK acknowledged exactly it.
			return false
		}
		return !e.SawSYN || p.Seq != e.ISN || from != Client
	}
	if from == Server && !c.Ends[Server].SawSYN && !c.Established {
		// The other side now opens: e.g. a refused attempt's port reused
		// in the other direction.
		return c.AnyRST
	}
	return e.SawSYN && p.Seq != e.ISN
}

// expire finalizes lingering and idle connections as of packet time now.
func (t *Table) expire(now int64) {
	linger := int64(t.cfg.CloseLinger)
	for c := t.ended.head; c != nil && c.EndedAt+linger <= now; c = t.ended.head {
		c.End = EndClosed
		c.EvalTime = c.LastSeen
		t.finalize(c)
	}
	idle := int64(t.cfg.IdleTimeout)
	for c := t.active.head; c != nil && c.LastSeen+idle <= now; c = t.active.head {
		c.End = EndIdle
		c.EvalTime = c.LastSeen + idle
		t.finalize(c)
	}
}

// evictOne makes room for one connection: the oldest ended connection, else
// the least recently seen live one.
func (t *Table) evictOne(now int64) {
	c := t.ended.head
	if c == nil {
		c = t.active.head
	}
	if c == nil {
		return
	}
	if !c.Ended {
		c.End = EndEvicted
		c.EvalTime = now
	} else {
		c.End = EndClosed
		c.EvalTime = c.LastSeen
	}
	t.Stats.Evicted++
	t.finalize(c)
}

// Flush finalizes every connection at the end of input, end being the time
// of the last packet of the whole capture (not only this worker's), so the
// answer does not depend on how flows were sharded.
func (t *Table) Flush(end int64) {
	if end < t.now {
		end = t.now
	}
	idle := int64(t.cfg.IdleTimeout)
	for c := t.ended.head; c != nil; c = t.ended.head {
		c.End = EndClosed
		c.EvalTime = c.LastSeen
		t.finalize(c)
	}
	for c := t.active.head; c != nil; c = t.active.head {
		if c.LastSeen+idle <= end {
			c.End = EndIdle
			c.EvalTime = c.LastSeen + idle
		} else {
			c.End = EndCapture
			c.EvalTime = end
		}
		t.finalize(c)
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
	var next *Conn
	for c := t.active.head; c != nil && c.LastSeen+t.deadMinQuiet <= now; c = next {
		next = c.next
		if !c.inProgress() {
			continue
		}
		c.EvalTime = now
		if t.deadCheck(c) {
			c.End = EndSilent
			t.finalize(c)
		}
	}
}

func (t *Table) finalize(c *Conn) {
	c.list.remove(c)
	delete(t.conns, c.Key)
	t.Stats.Finalized++
	if t.sink != nil {
		t.sink(c) // may take c.Trace (the cache keeps it)
	}
	if c.Trace != nil {
		c.Trace.Release()
		c.Trace = nil
	}
	t.free = append(t.free, c)
}

func (t *Table) alloc() *Conn {
	if n := len(t.free); n > 0 {
		c := t.free[n-1]
		t.free = t.free[:n-1]
		return c
	}
	return new(Conn)
}

// connList is an intrusive doubly linked list of connections.
type connList struct {
	head, tail *Conn
	n          int
}

func (l *connList) pushBack(c *Conn) {
	c.list = l
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
	l.n++
}

func (l *connList) remove(c *Conn) {
	if c.list != l {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.list = nil, nil, nil
	l.n--
}

func (l *connList) moveToBack(c *Conn) {
	if l.tail == c {
		return
	}
	l.remove(c)
	l.pushBack(c)
}
