package flightrec

import "sync"

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
	pool       *Pool
}

// ChunkRecords is the records in one chunk of a ring's storage (the first
// chunk is a new ring's room, ringStart): a ring or cache entry holds less
// than a chunk of spare room.
const ChunkRecords = ringStart

// chunkBytes is the quota one chunk costs.
const chunkBytes = ChunkRecords * PacketRecordSize

// Pool keeps the chunks of rings that ended without the cache taking
// them, so a worker's rings reuse memory instead of allocating for every
// connection (the flight recorder's allocations dominated the pipeline's
// profile). It belongs to one connection table: no locking. Its zero value
// allocates new chunks itself; SetSupply has it take them from a supply. Pooled chunks are not
// trace-quota memory (no connection holds them); the pool is bounded by
// poolLimit bytes.
type Pool struct {
	chunks [][]PacketRecord
	fresh  [][]PacketRecord // a group from supply, used up from the end
	supply *ChunkSupply     // nil: new chunks are allocated by the table
}

const poolLimit = 8 << 20 // bytes of idle chunks per worker

// SetSupply has the pool take new chunks from s, which faults them in
// ahead (nil: allocate them).
func (p *Pool) SetSupply(s *ChunkSupply) { p.supply = s }

func (p *Pool) get() []PacketRecord {
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

func (p *Pool) put(chunks [][]PacketRecord) {
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

// NewRing reserves the first chunk of a ring, or returns nil when the quota
// cannot pay for it. A ring smaller than a chunk gets storage of its size.
func NewRing(q *Quota, max int, pool *Pool) *Ring {
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

// Slot returns the record to fill next and whether it overwrites an old one.
// The ring grows by a chunk while it is below its maximum and the quota
// allows.
func (r *Ring) Slot() (*PacketRecord, bool) {
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
