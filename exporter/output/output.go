// Package output carries the record of every finished connection out of
// the sensor: to a JSON Lines file (rotated, reopened on SIGHUP), standard
// output, syslog and NATS JetStream, in any combination.
//
// Capture never waits for an output. A worker encodes the record once and
// copies it into each output's bounded queue (Set.Write: no lock held
// across I/O, nothing allocated); one goroutine per output delivers
// batches and removes them from its queue only once delivered, reconnects
// with backoff when the destination is down, and counts records sent,
// dropped (the queue was full, or the stop's flush timed out) and failed
// (the destination refused them for good).
package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcptap/tcptap/record"
)

// sender delivers batches to one destination; only its output's goroutine
// calls it.
type sender interface {
	// open connects (or opens the file); called until it succeeds, with
	// backoff, before send.
	open() error
	// send delivers the batch's records in order and returns how many of
	// the first ones were delivered and how many of the ones after them
	// were refused for good; a non-nil error closes the sender and the
	// rest are sent again after open.
	send(b *batch) (sent, failed int, err error)
	// close releases the connection or file.
	close() error
}

// reopener is a sender that reopens its destination on SIGHUP.
type reopener interface{ reopen() error }

// ticker is a sender with time-based work (file age rotation).
type ticker interface{ tick(now time.Time) error }

// checker is a sender that can tell a lost connection without sending
// (so that tcptap_output_up falls within a second of it).
type checker interface{ check() error }

// Batch limits: records and bytes delivered at once.
const (
	maxBatchRecords = 512
	maxBatchBytes   = 1 << 20
)

// Backoff between reconnection attempts: doubling from minBackoff to
// maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Stats are one output's counters.
type Stats struct {
	Name        string
	Sent        uint64
	Dropped     uint64
	Failed      uint64
	QueueBytes  int
	QueueRecs   int
	QueueLimit  int
	Up          bool
	LastFailure string
}

// output is one destination with its queue and goroutine.
type output struct {
	name string
	s    sender
	q    *queue
	log  *slog.Logger

	sent, dropped, failed atomic.Uint64
	up                    atomic.Bool
	reopenReq             atomic.Bool
	lastErr               atomic.Value // string

	stop     chan struct{} // closed to ask for a final flush
	deadline atomic.Int64  // unix nanoseconds the final flush ends at
	done     chan struct{}
}

// Set is the configured outputs.
type Set struct {
	outs         []*output
	abnormalOnly bool
	flushTimeout time.Duration
	bufs         sync.Pool  // *[]byte line buffers for Write
	pushMu       sync.Mutex // Write's copies into the queues
	closeOnce    sync.Once
}

// Options configure a Set.
type Options struct {
	// AbnormalOnly writes only abnormal closes (output.records abnormal).
	AbnormalOnly bool
	// QueueBytes bounds each output's queue.
	QueueBytes int
	// FlushTimeout bounds Close's delivery of queued records.
	FlushTimeout time.Duration
	Logger       *slog.Logger
}

// Config is which outputs to run (the zero value: none).
type Config struct {
	Stdout bool
	File   *FileConfig
	Syslog *SyslogConfig
	NATS   *NATSConfig
}

// New starts the configured outputs. It fails only on settings that can
// never work (an unreadable TLS file, a malformed address); a destination
// that is down is retried in the background.
func New(cfg Config, opts Options) (*Set, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 64 << 20
	}
	s := &Set{abnormalOnly: opts.AbnormalOnly, flushTimeout: opts.FlushTimeout}
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	add := func(name string, snd sender) {
		s.outs = append(s.outs, &output{name: name, s: snd, q: newQueue(opts.QueueBytes),
			log: opts.Logger.With("output", name), stop: make(chan struct{}), done: make(chan struct{})})
	}
	if cfg.Stdout {
		add("stdout", newStdout())
	}
	if cfg.File != nil {
		f, err := newFile(*cfg.File)
		if err != nil {
			return nil, err
		}
		add("file", f)
	}
	if cfg.Syslog != nil {
		sl, err := newSyslog(*cfg.Syslog)
		if err != nil {
			return nil, err
		}
		add("syslog", sl)
	}
	if cfg.NATS != nil {
		n, err := newNATS(*cfg.NATS)
		if err != nil {
			return nil, err
		}
		add("nats", n)
	}
	for _, o := range s.outs {
		go o.run()
	}
	return s, nil
}

// Len returns how many outputs run.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.outs)
}

// Write queues rec for every output; it never blocks on I/O and keeps
// nothing of rec (daemon.Options.OnClose). Safe for concurrent use.
func (s *Set) Write(rec *record.Record) {
	if s == nil || len(s.outs) == 0 {
		return
	}
	abnormal := rec.Reason.Abnormal()
	if s.abnormalOnly && !abnormal {
		return
	}
	var flags byte
	if abnormal {
		flags |= flagAbnormal
	}
	bp := s.bufs.Get().(*[]byte)
	b := append(rec.AppendJSON((*bp)[:0]), '\n')
	// One lock over the copies (a few microseconds) so that records the
	// workers finish at the same time reach every output in one order.
	s.pushMu.Lock()
	for _, o := range s.outs {
		if !o.q.push(b, flags) {
			o.dropped.Add(1)
		}
	}
	s.pushMu.Unlock()
	*bp = b
	s.bufs.Put(bp)
}

// Reopen asks every output that writes a file to reopen it (SIGHUP after
// logrotate moved it away).
func (s *Set) Reopen() {
	if s == nil {
		return
	}
	for _, o := range s.outs {
		if _, ok := o.s.(reopener); ok {
			o.reopenReq.Store(true)
			o.wake()
		}
	}
}

// Close delivers what is queued, for at most the flush timeout, then
// drops (and counts) the rest and closes every output.
func (s *Set) Close() {
	if s == nil {
		return
	}
	s.closeOnce.Do(func() {
		end := time.Now().Add(s.flushTimeout).UnixNano()
		for _, o := range s.outs {
			o.deadline.Store(end)
			close(o.stop)
		}
		for _, o := range s.outs {
			<-o.done
		}
	})
}

// Stats returns every output's counters.
func (s *Set) Stats() []Stats {
	if s == nil {
		return nil
	}
	out := make([]Stats, 0, len(s.outs))
	for _, o := range s.outs {
		recs, bytes := o.q.usage()
		le, _ := o.lastErr.Load().(string)
		out = append(out, Stats{Name: o.name, Sent: o.sent.Load(), Dropped: o.dropped.Load(), Failed: o.failed.Load(),
			QueueBytes: bytes, QueueRecs: recs, QueueLimit: len(o.q.buf), Up: o.up.Load(), LastFailure: le})
	}
	return out
}

func (o *output) wake() {
	select {
	case o.q.notify <- struct{}{}:
	default:
	}
}

// run is the output's goroutine: open, deliver, reconnect with backoff,
// and at stop deliver until the queue is empty or the deadline passes.
func (o *output) run() {
	defer close(o.done)
	var bt batch
	backoff := minBackoff
	var retryAt time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopping := false
	for {
		now := time.Now()
		if stopping && now.UnixNano() >= o.deadline.Load() {
			break
		}
		if o.reopenReq.Swap(false) && o.up.Load() {
			if err := o.s.(reopener).reopen(); err != nil {
				o.fail(fmt.Errorf("reopen: %w", err))
				retryAt = now
			}
		}
		if !o.up.Load() && !now.Before(retryAt) {
			if err := o.s.open(); err != nil {
				o.fail(err)
				retryAt = now.Add(backoff)
				backoff = min(2*backoff, maxBackoff)
			} else {
				if backoff > minBackoff {
					o.log.Info("output up again")
				}
				o.up.Store(true)
				backoff = minBackoff
			}
		}
		if c, ok := o.s.(checker); ok && o.up.Load() {
			if err := c.check(); err != nil {
				o.fail(err)
				retryAt = now.Add(backoff)
			}
		}
		if o.up.Load() {
			if t, ok := o.s.(ticker); ok {
				if err := t.tick(now); err != nil {
					o.fail(err)
				}
			}
		}
		progressed := false
		if o.up.Load() {
			o.q.peek(&bt, maxBatchRecords, maxBatchBytes)
			if bt.len() > 0 {
				sent, failed, err := o.s.send(&bt)
				o.q.discard(sent+failed, bt.entryBytes(sent+failed))
				o.sent.Add(uint64(sent))
				o.failed.Add(uint64(failed))
				progressed = sent+failed > 0
				if err != nil {
					o.fail(err)
					retryAt = time.Now().Add(backoff)
					backoff = min(2*backoff, maxBackoff)
				}
			}
		}
		if recs, _ := o.q.usage(); stopping && recs == 0 {
			break
		}
		if progressed {
			if recs, _ := o.q.usage(); recs > 0 {
				continue // more queued: no wait
			}
		}
		wait := time.Second
		if !o.up.Load() {
			wait = max(time.Until(retryAt), time.Millisecond)
		}
		if stopping {
			wait = min(wait, max(time.Duration(o.deadline.Load()-time.Now().UnixNano()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-o.q.notify:
		case <-tick.C:
		case <-t.C:
		case <-o.stopCh(stopping):
			stopping = true
		}
		t.Stop()
	}
	if recs, _ := o.q.usage(); recs > 0 {
		o.dropped.Add(uint64(recs))
		o.log.Warn("records dropped at stop: the output did not take them within the flush timeout", "records", recs)
		o.q.discard(recs, o.q.usedBytes())
	}
	if o.up.Load() {
		if err := o.s.close(); err != nil {
			o.log.Warn("close", "err", err)
		}
	}
	o.up.Store(false)
}

// stopCh returns the stop channel until stopping, then nil (never ready).
func (o *output) stopCh(stopping bool) chan struct{} {
	if stopping {
		return nil
	}
	return o.stop
}

// fail records an error, marks the output down and closes the sender.
func (o *output) fail(err error) {
	msg := err.Error()
	prev, _ := o.lastErr.Swap(msg).(string)
	if prev != msg || o.up.Load() {
		o.log.Warn("output down", "err", err)
	}
	if o.up.Swap(false) {
		if cerr := o.s.close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
			o.log.Debug("close after failure", "err", cerr)
		}
	}
}
