package flightrec

import "sync/atomic"

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
