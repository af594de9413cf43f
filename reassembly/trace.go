package reassembly

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tcptap/tcptap/acl"
	"github.com/tcptap/tcptap/capture"
)

// Trace defaults, the switch vendor's.
const (
	DefaultMaxPacketNumber = 500
	DefaultMemoryQuota     = 100 << 20 // bytes
	// ringStart is the first size of a connection's record ring; it grows
	// by as much up to MaxPacketNumber while the quota allows.
	ringStart = 8
)

// TraceConfig is the trace feature's configuration (docs/trace.md).
type TraceConfig struct {
	Enabled bool
	// MaxPacketNumber is the size of each connection's packet record ring;
	// when full, new records overwrite the oldest.
	MaxPacketNumber int
	// Filter traces only connections its rules permit (empty: all).
	Filter acl.List
	// OnlyNewConnection traces only connections whose handshake (the
	// client's SYN) is seen after tracing was enabled.
	OnlyNewConnection bool
	// EnabledAt is the packet time tracing was enabled; with
	// OnlyNewConnection, connections whose SYN came earlier are not traced.
	EnabledAt int64
}

// MaxPacketNumberLimit is the largest max-packet-number (the vendor's
// range, 1 to 1048576): the one bound every way of setting it checks —
// the configuration, the control socket, SNMP and tcptap read's flag.
const MaxPacketNumberLimit = 1 << 20

// CheckMaxPacketNumber reports a max-packet-number outside 1 to
// MaxPacketNumberLimit.
func CheckMaxPacketNumber(n int) error {
	if n < 1 || n > MaxPacketNumberLimit {
		return fmt.Errorf("%d: want 1 to %d", n, MaxPacketNumberLimit)
	}
	return nil
}

// Validate reports a configuration that cannot work.
func (c TraceConfig) Validate() error {
	if err := CheckMaxPacketNumber(c.MaxPacketNumber); err != nil {
		return fmt.Errorf("max_packet_number %w", err)
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
// once wrapped. Its storage is chunks of ChunkRecords records, added as the
// ring grows, so growing never copies a record and the cache can take the
// chunks as they are (growth copies and the cache's compaction were a tenth
// of a worker's time when rings doubled). Its storage is accounted in the
// trace quota.
type Ring struct {
	cur        []PacketRecord // the chunk slot writes in: chunks[curChunk]
	curChunk   int
	chunks     [][]PacketRecord // each of cap ChunkRecords
	n          int              // records held
	next       int              // once full: the slot the next record overwrites, the oldest
	written    uint64           // records written in all
	max        int
	bytes      int64 // reserved from the quota
	quotaStuck bool  // the quota refused growth: overwrite from now on
	quota      *Quota
	pool       *ringPool
}

// ChunkRecords is the records in one chunk of a ring's storage (the first
// chunk is a new ring's room, ringStart): a ring or cache entry holds less
// than a chunk of spare room.
const ChunkRecords = ringStart

// chunkBytes is the quota one chunk costs.
const chunkBytes = ChunkRecords * PacketRecordSize

// ringPool keeps the chunks of rings that ended without the cache taking
// them, so a worker's rings reuse memory instead of allocating for every
// connection (the flight recorder's allocations dominated the pipeline's
// profile). It belongs to one table: no locking. Pooled chunks are not
// trace-quota memory (no connection holds them); the pool is bounded by
// poolLimit bytes.
type ringPool struct {
	chunks [][]PacketRecord
	fresh  [][]PacketRecord // a group from supply, used up from the end
	supply *ChunkSupply     // nil: new chunks are allocated by the table
}

const poolLimit = 8 << 20 // bytes of idle chunks per worker

func (p *ringPool) get() []PacketRecord {
	if p == nil {
		return make([]PacketRecord, ChunkRecords)
	}
	if n := len(p.chunks); n > 0 {
		c := p.chunks[n-1]
		p.chunks = p.chunks[:n-1]
		return c
	}
	if len(p.fresh) == 0 && p.supply != nil {
		p.fresh = p.supply.group()
	}
	if n := len(p.fresh); n > 0 {
		c := p.fresh[n-1]
		p.fresh[n-1] = nil
		p.fresh = p.fresh[:n-1]
		return c
	}
	return make([]PacketRecord, ChunkRecords)
}

// ChunkSupply allocates flight-recorder chunks ahead, in a goroutine of its
// own, and writes to every page of them, so that the tables it supplies
// neither allocate chunks nor take the page faults of fresh memory: a
// worker filling the trace cache spent ~6 % of its time faulting in the
// pages of new chunks. Chunks come in groups, one channel operation (and
// at most one wakeup of the goroutine) per group: waking a goroutine
// whose thread slept costs ~45 µs of CPU on a 2-vCPU VM, so groups are
// large. The supply holds at most supplyGroups+1 groups (~2.7 MB) beside
// the trace quota, and each table the group it is using.
type ChunkSupply struct {
	groups chan [][]PacketRecord
	done   chan struct{}
	once   sync.Once
}

const (
	supplyGroup  = 512 // chunks per group
	supplyGroups = 2   // groups waiting in the channel
)

// NewChunkSupply starts a supply; Stop ends its goroutine.
func NewChunkSupply() *ChunkSupply {
	s := &ChunkSupply{groups: make(chan [][]PacketRecord, supplyGroups), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *ChunkSupply) run() {
	for {
		g := make([][]PacketRecord, supplyGroup)
		for i := range g {
			// Chunks are allocated one by one, not cut from one block:
			// a chunk the cache keeps must not pin a block's worth.
			c := make([]PacketRecord, ChunkRecords)
			// Write to the first and last record: a chunk spans at most
			// two pages. (Reading would map the shared zero page.)
			c[0].Timestamp, c[len(c)-1].Timestamp = 0, 0
			g[i] = c
		}
		select {
		case s.groups <- g:
		case <-s.done:
			return
		}
	}
}

// group returns a group of chunks when one is ready, nil otherwise: the
// table then allocates rather than wait.
func (s *ChunkSupply) group() [][]PacketRecord {
	select {
	case g := <-s.groups:
		return g
	default:
		return nil
	}
}

// Stop ends the supply's goroutine; tables using it allocate their chunks
// from then on. It may be called more than once.
func (s *ChunkSupply) Stop() {
	s.once.Do(func() { close(s.done) })
}

func (p *ringPool) put(chunks [][]PacketRecord) {
	if p == nil {
		return
	}
	for _, c := range chunks {
		if cap(c) != ChunkRecords || int64(len(p.chunks)+1)*chunkBytes > poolLimit {
			return
		}
		p.chunks = append(p.chunks, c[:ChunkRecords])
	}
}

// at returns slot i of the ring's storage. Slots are written in order, so
// it keeps the current chunk at hand rather than look it up in chunks (a
// cache miss a record otherwise).
func (r *Ring) at(i int) *PacketRecord {
	if c := i / ChunkRecords; c != r.curChunk || r.cur == nil {
		r.cur, r.curChunk = r.chunks[c], c
	}
	return &r.cur[i%ChunkRecords]
}

// Records returns a copy of the records in capture order.
func (r *Ring) Records() []PacketRecord {
	rec := r.recording()
	return rec.Records()
}

// recording is the ring's records as a Recording sharing its storage.
func (r *Ring) recording() Recording {
	rec := Recording{chunks: r.chunks, n: r.n}
	if r.written > uint64(r.n) {
		rec.first = r.next
	}
	return rec
}

// Len returns the records the ring holds.
func (r *Ring) Len() int { return r.n }

// Cap returns the records its storage (and its quota reservation) has
// room for.
func (r *Ring) Cap() int {
	rec := r.recording()
	return rec.Room()
}

// Take returns the ring's records and leaves it without storage: the
// caller owns the chunks from now on (what the ring's reservation paid
// for) and must Disown the ring. Nothing is copied, except that the few
// records of a ring whose one chunk is mostly empty are copied into storage
// of their own size, so a cache full of short connections does not hold
// mostly empty chunks; the chunk goes back to the pool.
func (r *Ring) Take() Recording {
	rec := r.recording()
	if r.compacts() {
		own := make([]PacketRecord, r.n)
		for i := range own {
			own[i] = *rec.At(i)
		}
		r.pool.put(r.chunks)
		rec = Recording{chunks: [][]PacketRecord{own}, n: r.n}
	}
	r.chunks, r.cur, r.n, r.next = nil, nil, 0, 0
	return rec
}

// compacts reports whether Take copies the records into storage of their
// own size: the ring has one chunk, under three quarters full.
func (r *Ring) compacts() bool { return len(r.chunks) == 1 && 4*r.n < 3*cap(r.chunks[0]) }

// TakeRoom returns the records of room Take would hand over.
func (r *Ring) TakeRoom() int {
	if r.compacts() {
		return r.n
	}
	return r.Cap()
}

// Overwritten returns how many records were overwritten by newer ones.
func (r *Ring) Overwritten() uint64 { return r.written - uint64(r.n) }

// Bytes returns the quota bytes the ring holds.
func (r *Ring) Bytes() int64 { return r.bytes }

// newRing reserves the first chunk of a ring, or returns nil when the quota
// cannot pay for it. A ring smaller than a chunk gets storage of its size.
func newRing(q *Quota, max int, pool *ringPool) *Ring {
	size := min(ChunkRecords, max)
	if !q.Reserve(int64(size) * PacketRecordSize) {
		return nil
	}
	r := &Ring{chunks: make([][]PacketRecord, 1, 4), max: max, bytes: int64(size) * PacketRecordSize, quota: q, pool: pool}
	if size == ChunkRecords {
		r.chunks[0] = pool.get()
	} else {
		r.chunks[0] = make([]PacketRecord, size)
	}
	return r
}

// slot returns the record to fill next and whether it overwrites an old one.
// The ring grows by a chunk while it is below its maximum and the quota
// allows.
func (r *Ring) slot() (*PacketRecord, bool) {
	r.written++
	if r.n < min(r.max, len(r.chunks)*ChunkRecords) {
		r.n++
		return r.at(r.n - 1), false
	}
	if r.n < r.max && !r.quotaStuck {
		if r.quota.Reserve(chunkBytes) {
			r.chunks = append(r.chunks, r.pool.get())
			r.bytes += chunkBytes
			r.n++
			return r.at(r.n - 1), false
		}
		r.quotaStuck = true
	}
	rec := r.at(r.next)
	if r.next++; r.next == r.n {
		r.next = 0
	}
	return rec, true
}

// Disown empties the ring without returning its memory to the quota: the
// caller (the cache) took over its records and their reservation.
func (r *Ring) Disown() {
	r.pool.put(r.chunks)
	*r = Ring{}
}

// Release returns the ring's memory to the quota; the ring is then empty.
func (r *Ring) Release() {
	if r.quota != nil {
		r.quota.Release(r.bytes)
	}
	r.pool.put(r.chunks)
	*r = Ring{}
}

// Recording is the records a flight recorder held, taken over by a new
// owner (the cache) without copying them: the ring's storage, with the
// oldest record at slot first once the ring had wrapped.
type Recording struct {
	chunks   [][]PacketRecord
	first, n int
}

// Len returns the number of records.
func (r *Recording) Len() int { return r.n }

// Room returns the records the storage has room for, which the quota pays.
func (r *Recording) Room() int {
	room := 0
	for _, c := range r.chunks {
		room += cap(c)
	}
	return room
}

// At returns the i-th record in capture order, 0 <= i < Len.
func (r *Recording) At(i int) *PacketRecord {
	j := r.first + i
	if j >= r.n {
		j -= r.n
	}
	// Storage is whole chunks, or one smaller slice of its own (Take).
	return &r.chunks[j/ChunkRecords][j%ChunkRecords]
}

// Records returns a copy of the records in capture order.
func (r *Recording) Records() []PacketRecord {
	out := make([]PacketRecord, r.n)
	for i := range out {
		out[i] = *r.At(i)
	}
	return out
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
	fillRecord(r, c, p, from, a, hdr)
}

// fillRecord overwrites every field of r, a slot that may hold an older
// record. Field by field rather than *r = PacketRecord{...}, which the
// compiler builds whole (header bytes included) in a temporary and then
// copies: 42 instructions a packet more (cachegrind). Only the header
// bytes past hdr are cleared. TestFillRecordOverwritesAll checks that no
// field is left out.
func fillRecord(r *PacketRecord, c *tracked, p *capture.Packet, from Role, a Analysis, hdr []byte) {
	r.Timestamp = p.Timestamp
	r.Seq, r.Ack = p.Seq, p.Ack
	r.PayloadLen = p.PayloadLen
	r.Window = p.Window
	r.Checksum = p.Checksum
	r.IPID = p.IPID
	r.Flags = p.Flags
	r.From = from
	r.States = [2]State{c.ends[Client].state, c.ends[Server].state}
	r.Analysis = a
	for role := range c.ends {
		r.Snap[role] = c.ends[role].snapshot()
	}
	r.WireLen = p.IPLen
	r.Family = p.Family
	n := copy(r.Hdr[:], hdr)
	r.HdrLen = uint8(n)
	clear(r.Hdr[n:])
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
