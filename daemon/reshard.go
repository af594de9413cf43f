package daemon

import (
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
)

// Re-sharding tunnelled segments. The kernel's PACKET_FANOUT_HASH spreads
// an interface's frames over its workers by a hash of the outer headers.
// For plain traffic that keeps both directions of a connection on one
// worker; for tunnelled traffic the outer headers name the tunnel, not the
// connection: a VXLAN source port is a VTEP's hash of the inner frame, two
// mirror sessions have different outer addresses, and the two directions
// of one connection may land on different workers, each seeing half of
// it. So a worker passes a tunnelled segment whose inner 4-tuple another
// worker owns (capture.FlowHash, as the offline pipeline shards) to that
// worker's inbox; plain traffic pays one test of Tunnel.Depth.
//
// The owner must then take the segments of a connection in time order,
// though they reach it by two ways: its own socket and other workers'
// hand-offs, each late by up to a ring block's retire timeout. So a worker
// with peers holds every tunnelled segment it owns in a small heap ordered
// by capture time and lets it go to the table once it is reorderDelay old
// (by the wall clock, which the kernel's timestamps follow): by then every
// earlier segment has arrived. Tunnelled connections are therefore judged
// up to reorderDelay plus a poll timeout later; their timing, taken from
// the capture timestamps, is unchanged.

const (
	// handoffQueue is each worker's inbox size, in segments.
	handoffQueue = 4096
	// maxHeld bounds the segments a worker holds for reordering; when it
	// is full the oldest goes to the table at once (metrics.ReshardStats.Early).
	maxHeld = 16384
	// reorderDelay is how old a held segment must be: more than twice
	// the ring block retire timeout (capture.DefaultLiveBlockTimeout,
	// 10 ms), after which the kernel hands a partly filled block over.
	reorderDelay = 30 * time.Millisecond
)

// handoff is one tunnelled segment passed to the worker that owns it, with
// its header bytes for the flight recorder.
type handoff struct {
	p      capture.Packet
	hdrLen uint8
	hdr    [flightrec.MaxHeaderBytes]byte
}

// handOff passes p to the worker of its inner connection when that is
// another worker, and reports whether it did. It never blocks: two workers
// handing off to each other must not wait on each other.
func (w *worker) handOff(p *capture.Packet, frame []byte) {
	h := handoff{p: *p}
	h.hdrLen = uint8(copy(h.hdr[:], p.HeaderBytes(frame, flightrec.MaxHeaderBytes)))
	owner := w.peers[capture.Shard(capture.FlowHash(p), len(w.peers))]
	if owner != w {
		select {
		case owner.inbox <- h:
			w.reshard.Sent++
			return
		default:
			w.reshard.Full++
		}
	}
	w.hold(&h)
}

// drainInbox holds the segments other workers passed to this one.
func (w *worker) drainInbox() {
	for {
		select {
		case h := <-w.inbox:
			w.reshard.Received++
			w.hold(&h)
		default:
			return
		}
	}
}

// heldQueue is a min-heap of held segments by capture time: indices into
// slots, whose free ones are listed in free. Both are allocated once.
type heldQueue struct {
	slots []handoff
	heap  []uint32
	free  []uint32
}

func (q *heldQueue) less(i, j int) bool {
	return q.slots[q.heap[i]].p.Timestamp < q.slots[q.heap[j]].p.Timestamp
}

func (q *heldQueue) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			return
		}
		q.heap[i], q.heap[parent] = q.heap[parent], q.heap[i]
		i = parent
	}
}

func (q *heldQueue) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(q.heap) {
			return
		}
		m := l
		if r := l + 1; r < len(q.heap) && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.heap[i], q.heap[m] = q.heap[m], q.heap[i]
		i = m
	}
}

// hold puts h in the reorder heap, first letting the oldest go when full.
func (w *worker) hold(h *handoff) {
	q := &w.held
	if q.slots == nil {
		q.slots = make([]handoff, maxHeld)
		q.heap = make([]uint32, 0, maxHeld)
		q.free = make([]uint32, maxHeld)
		for i := range q.free {
			q.free[i] = uint32(maxHeld - 1 - i)
		}
	}
	if len(q.free) == 0 {
		w.reshard.Early++
		w.releaseOldest()
	}
	slot := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	q.slots[slot] = *h
	q.heap = append(q.heap, slot)
	q.up(len(q.heap) - 1)
}

// releaseOldest gives the oldest held segment to the table.
func (w *worker) releaseOldest() {
	q := &w.held
	slot := q.heap[0]
	last := len(q.heap) - 1
	q.heap[0] = q.heap[last]
	q.heap = q.heap[:last]
	q.down(0)
	q.free = append(q.free, slot)
	h := &q.slots[slot]
	var hdr []byte
	if w.p.Table().Trace().Enabled {
		hdr = h.hdr[:h.hdrLen]
	}
	w.segment(&h.p, hdr)
}

// releaseHeld gives the table every held segment captured before
// now - reorderDelay (all of them when now is 0).
func (w *worker) releaseHeld(now int64) {
	q := &w.held
	for len(q.heap) > 0 && (now == 0 || q.slots[q.heap[0]].p.Timestamp <= now-int64(reorderDelay)) {
		w.releaseOldest()
	}
}

// clock is the time the worker's table may advance to: now, or for a
// worker that reorders tunnelled segments, no later than the oldest one it
// still holds and reorderDelay ago, so that no connection is judged
// silent while a later segment of it waits in the heap.
func (w *worker) clock(now int64) int64 {
	if w.peers == nil {
		return now
	}
	now -= int64(reorderDelay)
	if q := &w.held; len(q.heap) > 0 {
		now = min(now, q.slots[q.heap[0]].p.Timestamp)
	}
	return now
}
