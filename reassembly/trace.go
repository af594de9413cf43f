package reassembly

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/tcptap/tcptap/capture"
)

// Trace defaults, the switch vendor's.
const (
	DefaultMaxPacketNumber = 500
	DefaultMemoryQuota     = 100 << 20 // bytes
	// ringStart is the first size of a connection's record ring; it doubles
	// up to MaxPacketNumber while the quota allows.
	ringStart = 8
)

// TraceConfig is the trace feature's configuration (DESIGN §2.1).
type TraceConfig struct {
	Enabled bool
	// MaxPacketNumber is the size of each connection's packet record ring;
	// when full, new records overwrite the oldest.
	MaxPacketNumber int
	// Filter traces only connections its rules permit (empty: all).
	Filter ACL
	// OnlyNewConnection traces only connections whose handshake (the
	// client's SYN) is seen after tracing was enabled.
	OnlyNewConnection bool
	// EnabledAt is the packet time tracing was enabled; with
	// OnlyNewConnection, connections whose SYN came earlier are not traced.
	EnabledAt int64
}

// Validate reports a configuration that cannot work.
func (c TraceConfig) Validate() error {
	if c.MaxPacketNumber < 1 || c.MaxPacketNumber > 1<<20 {
		return fmt.Errorf("max_packet_number %d: want 1 to %d", c.MaxPacketNumber, 1<<20)
	}
	return nil
}

// Quota is the trace memory budget, shared by every worker and by the cache
// of closed connections: each holds exactly the bytes it reserved.
type Quota struct {
	limit atomic.Int64
	used  atomic.Int64
	peak  atomic.Int64
}

// NewQuota returns a budget of limit bytes.
func NewQuota(limit int64) *Quota {
	q := &Quota{}
	q.limit.Store(limit)
	return q
}

// Reserve takes n bytes from the budget, or reports false when they would
// exceed it.
func (q *Quota) Reserve(n int64) bool {
	for {
		used := q.used.Load()
		if used+n > q.limit.Load() {
			return false
		}
		if q.used.CompareAndSwap(used, used+n) {
			for {
				p := q.peak.Load()
				if used+n <= p || q.peak.CompareAndSwap(p, used+n) {
					return true
				}
			}
		}
	}
}

// Release returns n bytes to the budget.
func (q *Quota) Release(n int64) { q.used.Add(-n) }

// Used returns the bytes held.
func (q *Quota) Used() int64 { return q.used.Load() }

// Peak returns the most bytes ever held at once.
func (q *Quota) Peak() int64 { return q.peak.Load() }

// Limit returns the budget.
func (q *Quota) Limit() int64 { return q.limit.Load() }

// SetLimit changes the budget (only while tracing is disabled).
func (q *Quota) SetLimit(n int64) { q.limit.Store(n) }

// Ring is a connection's flight recorder: its last records, oldest first
// once wrapped. Its storage is accounted in the trace quota.
type Ring struct {
	recs       []PacketRecord
	next       int    // where the next record goes once the ring is full
	written    uint64 // records written in all
	max        int
	bytes      int64 // reserved from the quota
	quotaStuck bool  // the quota refused growth: overwrite from now on
	quota      *Quota
	pool       *ringPool
}

// ringPool keeps record buffers that rings outgrew or gave back, by
// capacity, so a worker's rings reuse memory instead of allocating for
// every connection (the flight recorder's allocations dominated the
// pipeline's profile). It belongs to one table: no locking. Pooled buffers
// are not trace-quota memory (no connection holds them); the pool is
// bounded by poolLimit bytes.
type ringPool struct {
	caps  []int
	bufs  [][][]PacketRecord
	bytes int64
}

const poolLimit = 8 << 20 // bytes of idle record buffers per worker

func (p *ringPool) get(n int) []PacketRecord {
	if p != nil {
		for i, c := range p.caps {
			if c == n && len(p.bufs[i]) > 0 {
				b := p.bufs[i][len(p.bufs[i])-1]
				p.bufs[i] = p.bufs[i][:len(p.bufs[i])-1]
				p.bytes -= int64(n) * PacketRecordSize
				return b[:0]
			}
		}
	}
	return make([]PacketRecord, 0, n)
}

func (p *ringPool) put(b []PacketRecord) {
	n := cap(b)
	size := int64(n) * PacketRecordSize
	if p == nil || n == 0 || p.bytes+size > poolLimit {
		return
	}
	for i, c := range p.caps {
		if c == n {
			p.bufs[i] = append(p.bufs[i], b[:0])
			p.bytes += size
			return
		}
	}
	p.caps = append(p.caps, n)
	p.bufs = append(p.bufs, [][]PacketRecord{b[:0]})
	p.bytes += size
}

// Records returns the records in capture order.
func (r *Ring) Records() []PacketRecord {
	out := make([]PacketRecord, 0, len(r.recs))
	if r.written > uint64(len(r.recs)) {
		out = append(out, r.recs[r.next:]...)
		return append(out, r.recs[:r.next]...)
	}
	return append(out, r.recs...)
}

// Len returns the records the ring holds; Cap the records its storage
// (and its quota reservation) has room for.
func (r *Ring) Len() int { return len(r.recs) }

// Cap returns the records the ring's storage has room for.
func (r *Ring) Cap() int { return cap(r.recs) }

// Take returns the records in capture order and leaves the ring without
// storage: the caller owns the slice from now on, capacity included (what
// the ring's reservation paid for), and must Disown the ring. The records
// are rotated in place rather than copied, so handing a connection's
// records to the cache allocates nothing.
func (r *Ring) Take() []PacketRecord {
	recs := r.recs
	if r.written > uint64(len(recs)) && r.next > 0 {
		// Rotate left by next: the oldest record (at next) comes first.
		slices.Reverse(recs[:r.next])
		slices.Reverse(recs[r.next:])
		slices.Reverse(recs)
	}
	r.recs, r.next = nil, 0
	return recs
}

// Overwritten returns how many records were overwritten by newer ones.
func (r *Ring) Overwritten() uint64 { return r.written - uint64(len(r.recs)) }

// Bytes returns the quota bytes the ring holds.
func (r *Ring) Bytes() int64 { return r.bytes }

// newRing reserves the first records of a ring, or returns nil when the
// quota cannot pay for them.
func newRing(q *Quota, max int, pool *ringPool) *Ring {
	n := min(ringStart, max)
	size := int64(n) * PacketRecordSize
	if !q.Reserve(size) {
		return nil
	}
	return &Ring{recs: pool.get(n), max: max, bytes: size, quota: q, pool: pool}
}

// slot returns the record to fill next and whether it overwrites an old one.
// The ring doubles while it is below its maximum and the quota allows.
func (r *Ring) slot() (*PacketRecord, bool) {
	r.written++
	if len(r.recs) < cap(r.recs) {
		r.recs = r.recs[:len(r.recs)+1]
		return &r.recs[len(r.recs)-1], false
	}
	if len(r.recs) < r.max && !r.quotaStuck {
		n := min(2*cap(r.recs), r.max)
		extra := int64(n-cap(r.recs)) * PacketRecordSize
		if r.quota.Reserve(extra) {
			grown := r.pool.get(n)[:len(r.recs)+1]
			copy(grown, r.recs)
			r.pool.put(r.recs)
			r.recs = grown
			r.bytes += extra
			return &r.recs[len(r.recs)-1], false
		}
		r.quotaStuck = true
	}
	rec := &r.recs[r.next]
	r.next = (r.next + 1) % len(r.recs)
	return rec, true
}

// Disown empties the ring without returning its memory to the quota: the
// caller (the cache) took over its records and their reservation.
// The records' storage (copied out by then) goes back to the pool.
func (r *Ring) Disown() {
	r.pool.put(r.recs)
	*r = Ring{}
}

// Release returns the ring's memory to the quota; the ring is then empty.
func (r *Ring) Release() {
	if r.quota != nil {
		r.quota.Release(r.bytes)
	}
	r.pool.put(r.recs)
	*r = Ring{}
}

// TraceStats count the trace feature's work in one worker.
type TraceStats struct {
	Traced         uint64 // connections given a recorder
	NotTracedQuota uint64 // not traced: the memory quota was used up
	NotTracedACL   uint64 // not traced: the filter denied them
	NotTracedOld   uint64 // not traced: only-new-connection and no SYN seen after enabling
	Records        uint64 // packet records written
	Overwritten    uint64 // records that overwrote an older one
}

// startTrace decides whether a new connection is traced and gives it a ring.
func (t *Table) startTrace(c *tracked, p *capture.Packet) {
	tc := &t.trace
	if !tc.Enabled || t.quota == nil {
		return
	}
	if tc.OnlyNewConnection && (!p.Flags.Has(capture.FlagSYN) || p.Flags.Has(capture.FlagACK) || p.Timestamp < tc.EnabledAt) {
		t.Stats.Trace.NotTracedOld++
		return
	}
	if len(tc.Filter) > 0 {
		if !tc.Filter.Permits(c.addrPort(Client), c.addrPort(Server)) {
			t.Stats.Trace.NotTracedACL++
			return
		}
	}
	ring := newRing(t.quota, tc.MaxPacketNumber, &t.rings)
	if ring == nil {
		t.Stats.Trace.NotTracedQuota++
		return
	}
	t.setTrace(c, ring)
	t.Stats.Trace.Traced++
}

// record writes p, already applied to c, into c's flight recorder.
func (t *Table) record(c *tracked, p *capture.Packet, from Role, a Analysis, hdr []byte) {
	r, overwrote := t.traceOf(c).slot()
	t.Stats.Trace.Records++
	if overwrote {
		t.Stats.Trace.Overwritten++
	}
	*r = PacketRecord{
		Timestamp:  p.Timestamp,
		Seq:        p.Seq,
		Ack:        p.Ack,
		PayloadLen: p.PayloadLen,
		Window:     p.Window,
		Checksum:   p.Checksum,
		IPID:       p.IPID,
		Flags:      p.Flags,
		From:       from,
		States:     [2]State{c.ends[Client].state, c.ends[Server].state},
		Analysis:   a,
		WireLen:    p.IPLen,
		Family:     p.Family,
	}
	for role := range c.ends {
		r.Snap[role] = c.ends[role].snapshot()
	}
	r.HdrLen = uint8(copy(r.Hdr[:], hdr))
}

// BaseSeq is the endpoint's initial sequence number, or one before the first
// sequence number it was seen sending when its SYN was not seen (as
// Wireshark's relative sequence numbers count).
func (e *Endpoint) BaseSeq() uint32 {
	if !e.SentAny {
		return 0 // nothing seen from it yet
	}
	if e.SawSYN {
		return e.ISN
	}
	return e.firstSeq - 1
}
