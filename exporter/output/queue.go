package output

import (
	"encoding/binary"
	"slices"
	"sync"
)

// queue is a bounded FIFO of records, in bytes: a ring buffer of entries
// [length uint32][flags byte][record]. Workers push (copying the record in,
// under a short lock, allocating nothing); one writer goroutine peeks a
// batch, delivers it and only then discards it, so a record the
// destination did not take stays queued. When a record does not fit, the
// newest is dropped: the records already queued are older and may be in
// the middle of delivery.
type queue struct {
	mu     sync.Mutex
	buf    []byte // capacity fixed at creation; pages are touched only when used
	head   int    // offset of the oldest entry
	used   int    // bytes of entries
	count  int    // entries
	notify chan struct{}
}

const entryHeader = 5

func newQueue(size int) *queue {
	return &queue{buf: make([]byte, size), notify: make(chan struct{}, 1)}
}

// push appends a record; false when it does not fit.
func (q *queue) push(rec []byte, flags byte) bool {
	n := entryHeader + len(rec)
	q.mu.Lock()
	if q.used+n > len(q.buf) {
		q.mu.Unlock()
		return false
	}
	var h [entryHeader]byte
	binary.LittleEndian.PutUint32(h[:], uint32(len(rec)))
	h[4] = flags
	tail := (q.head + q.used) % len(q.buf)
	tail = q.put(tail, h[:])
	q.put(tail, rec)
	q.used += n
	q.count++
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// put copies b into the ring at off, wrapping; returns the offset after it.
func (q *queue) put(off int, b []byte) int {
	c := copy(q.buf[off:], b)
	if c < len(b) {
		copy(q.buf, b[c:])
	}
	return (off + len(b)) % len(q.buf)
}

// get copies len(b) bytes from the ring at off into b.
func (q *queue) get(off int, b []byte) int {
	c := copy(b, q.buf[off:])
	if c < len(b) {
		copy(b[c:], q.buf)
	}
	return (off + len(b)) % len(q.buf)
}

// peek fills bt with the oldest records, at most maxRecs of them and, past
// the first, at most maxBytes of record bytes, without removing them.
func (q *queue) peek(bt *batch, maxRecs, maxBytes int) {
	bt.reset()
	q.mu.Lock()
	defer q.mu.Unlock()
	off := q.head
	for i := 0; i < q.count && i < maxRecs; i++ {
		var h [entryHeader]byte
		o := q.get(off, h[:])
		n := int(binary.LittleEndian.Uint32(h[:]))
		if i > 0 && len(bt.data)+n > maxBytes {
			break
		}
		start := len(bt.data)
		bt.data = slices.Grow(bt.data, n)[:start+n]
		off = q.get(o, bt.data[start:])
		bt.ends = append(bt.ends, len(bt.data))
		bt.flags = append(bt.flags, h[4])
		bt.bytes += entryHeader + n
	}
}

// discard removes the n oldest records, of total entry bytes size.
func (q *queue) discard(n, size int) {
	q.mu.Lock()
	q.count -= n
	q.used -= size
	q.head = (q.head + size) % len(q.buf)
	if q.count == 0 {
		q.head = 0
	}
	q.mu.Unlock()
}

// usage returns the records and bytes queued.
func (q *queue) usage() (records, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count, q.used
}

// batch is records copied out of a queue for delivery: record i is
// data[ends[i-1]:ends[i]] (each a JSON object and a newline).
type batch struct {
	data  []byte
	ends  []int
	flags []byte
	bytes int // entry bytes in the queue, for discard
}

func (b *batch) reset() {
	b.data, b.ends, b.flags, b.bytes = b.data[:0], b.ends[:0], b.flags[:0], 0
}

func (b *batch) len() int { return len(b.ends) }

// record returns record i with its newline.
func (b *batch) record(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.data[start:b.ends[i]]
}

// entryBytes returns the queue bytes of the first n records.
func (b *batch) entryBytes(n int) int {
	if n == 0 {
		return 0
	}
	return b.ends[n-1] + n*entryHeader
}

// flagAbnormal marks the record of an abnormal close.
const flagAbnormal = 1

// usedBytes returns the bytes queued.
func (q *queue) usedBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}
