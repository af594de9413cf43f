// Package offline runs tcptap's pipeline over capture files: one reader
// decodes frames and hands batches to pipeline workers by the flow's
// symmetric hash; each worker owns a connection table and classifies,
// counts and caches its finished connections (package pipeline, the worker
// tcptap run's live workers use too), whose records reach the caller's
// sink.
package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/pipeline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// Options configure a run.
type Options struct {
	Workers    int // 0: one per CPU
	Table      reassembly.Config
	Classifier classifier.Config
	Decoder    capture.DecoderConfig
	// Trace configures the flight recorder; Quota is its memory budget
	// (default flightrec.DefaultMemoryQuota) and Cache, when set, receives
	// every finished connection with its records.
	Trace flightrec.Config
	Quota *flightrec.Quota
	Cache *cache.Cache
	// CaptureEnd, when set, decides when the capture ended, given the
	// capture's own clock at the end of input: the latest time of any frame
	// (TCP or not, decodable or not, on any interface) or pcapng isb_endtime.
	// The connections still open are judged as of the time it returns (a
	// time before the capture's clock counts as the clock). Nil keeps the
	// capture's clock.
	CaptureEnd func(clock int64) int64
	// Progress, when set, is called from the reading goroutine about every
	// 64k frames with the bytes consumed and the total (-1 when unknown) of
	// the current input.
	Progress func(name string, done, total int64)
	// Fleet, when set, stamps every record with the sensor name, a uid
	// and the Community ID.
	Fleet *record.Fleet
	// FlushIdle, when positive, makes a pipe on standard input ("-")
	// deliver records as connections finish: whenever no input arrived
	// for this long, the packets read so far reach the workers, their
	// clocks advance by the time waited (so closed connections linger
	// and idle ones time out as they would live), their records reach
	// the sink, and then Flush runs in the sink's goroutine.
	FlushIdle time.Duration
	Flush     func()
}

// Sink receives each finished connection's record. The sink runs in a
// goroutine of its own, one record at a time, and receives each worker's
// records in the order its connections finish; the record is only valid
// during the call.
type Sink func(r *record.Record)

// Stats summarise a run.
type Stats struct {
	// Worker is the pipeline workers' counters summed (interface
	// "offline"), what a Prometheus scrape of tcptap run would read; the
	// frames and the decoder's counts are the reader's.
	metrics.Worker
	// Workers are the counters each worker published at the end.
	Workers  []metrics.Worker
	Segments uint64 // TCP segments handed to the workers
	Inputs   int    // inputs named
	Opened   int    // inputs that could be opened and read
}

// InputError is the failure of one input; the results obtained from it
// before the failure were delivered.
type InputError struct {
	Name string
	Err  error
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

const (
	batchSize = 256 // packets per batch handed to a worker
	// Batches in flight per worker (64 KB each) bound memory and let the
	// reader run ahead: maxBatchesInFlight for one or two workers (~4 MB
	// each), fewer with more workers, down to minBatchesInFlight, so that
	// all of them together hold max(8 MB, 1 MB a worker).
	maxBatchesInFlight = 64
	minBatchesInFlight = 16
	// A worker hands used batches back half its batches at a time. The
	// reader, usually ahead, sleeps until it gets them, and waking a
	// goroutine whose thread slept costs ~45 µs of CPU on a 2-vCPU VM
	// (futex, the idle vCPU's exit; GOMAXPROCS=1 pays ~4 µs): once per 8k
	// packets, not per 256.
	maxFreeGroup = maxBatchesInFlight / 2

	// Records a worker hands to the sink goroutine at once; the sink,
	// faster than the workers, sleeps between batches.
	recordBatchSize = 256
)

type batch struct {
	pkts [batchSize]capture.Packet
	n    int
	// The IP and TCP header bytes of each packet, copied only when the
	// flight recorder is on.
	hdr    [batchSize][flightrec.MaxHeaderBytes]byte
	hdrLen [batchSize]uint8
	// Set when input paused (Options.FlushIdle): the worker advances its
	// clock to tick (when not 0) and hands its records to the sink.
	tick  int64
	flush bool
}

// freeGroup is batches a worker hands back to the reader at once.
type freeGroup struct {
	b [maxFreeGroup]*batch
	n int
}

type worker struct {
	in    chan *batch
	free  chan freeGroup
	p     *pipeline.Worker
	cur   *batch
	spare []*batch // free batches the reader holds

	used     freeGroup // batches the worker is done with
	inFlight int       // batches the worker and the reader share

	out *recordBatch // records not yet handed to the sink goroutine
}

// next returns a free batch for the reader, waiting for the worker to give
// a group back when the reader holds none.
func (w *worker) next() *batch {
	if len(w.spare) == 0 {
		g := <-w.free
		w.spare = append(w.spare, g.b[:g.n]...)
	}
	b := w.spare[len(w.spare)-1]
	w.spare = w.spare[:len(w.spare)-1]
	return b
}

// done gives a processed batch back to the reader, half of the worker's
// batches at a time. Since their number is even, a reader waiting for
// batches always gets a group: every batch it does not hold is in the
// worker's queue, being processed or among the used ones.
func (w *worker) done(b *batch) {
	b.n = 0
	w.used.b[w.used.n] = b
	if w.used.n++; w.used.n == w.inFlight/2 {
		w.free <- w.used
		w.used.n = 0
	}
}

// recordBatch carries finished connections' records from a worker to the
// sink goroutine, so that encoding and writing them (JSON, ~2 µs a record)
// runs beside the worker rather than in it.
type recordBatch struct {
	recs  [recordBatchSize]record.Record
	n     int
	flush bool // run Options.Flush after delivering it
}

// sinkLoop is the sink goroutine: it delivers batches of records to sink
// and hands the emptied batches back.
type sinkLoop struct {
	in   chan *recordBatch
	free chan *recordBatch
}

func newSinkLoop(workers int) *sinkLoop {
	n := 2*workers + 2
	s := &sinkLoop{in: make(chan *recordBatch, n), free: make(chan *recordBatch, n)}
	for range n {
		s.free <- new(recordBatch)
	}
	return s
}

func (s *sinkLoop) run(sink Sink, flush func()) {
	for b := range s.in {
		for i := range b.recs[:b.n] {
			sink(&b.recs[i])
			b.recs[i] = record.Record{} // drop references to strings and slices
		}
		if b.flush && flush != nil {
			flush()
		}
		b.n, b.flush = 0, false
		s.free <- b
	}
}

// Run reads the named captures ("-" is standard input) in order as one
// stream of packets and delivers every connection's record to sink. An
// input that cannot be opened or is corrupt or truncated yields an
// *InputError (joined with others) after everything read before the fault
// was processed; Run goes on with the next input.
func Run(ctx context.Context, names []string, opts Options, sink Sink) (Stats, error) {
	sources := make([]Input, 0, len(names))
	var errs []error
	for _, n := range names {
		var idle *idleReader
		var src capture.Source
		var err error
		if n == "-" && opts.FlushIdle > 0 && !isRegular(os.Stdin) {
			idle = newIdleReader(os.Stdin, opts.FlushIdle, func() {})
			if src, err = capture.NewReader(idle); err != nil {
				err = fmt.Errorf("standard input: %w", err)
			}
		} else {
			src, err = capture.Open(n)
		}
		if err != nil {
			errs = append(errs, &InputError{Name: n, Err: unwrapPath(err, n)})
			continue
		}
		sources = append(sources, Input{name: n, src: src, idle: idle})
	}
	st, err := RunSources(ctx, sources, opts, sink)
	for _, s := range sources {
		s.src.Close()
	}
	if err != nil {
		errs = append(errs, err)
	}
	st.Inputs = len(names)
	st.Opened = len(sources)
	return st, errors.Join(errs...)
}

// unwrapPath drops the "path: " prefix capture.Open adds, since InputError
// names the input itself.
func unwrapPath(err error, name string) error {
	if u := errors.Unwrap(err); u != nil && err.Error() == name+": "+u.Error() {
		return u
	}
	return err
}

// Input is a capture source and the name it is reported by.
type Input struct {
	name string
	src  capture.Source
	idle *idleReader // a pipe read with Options.FlushIdle
}

// NewInput pairs a name with an already open source, for RunSources.
func NewInput(name string, src capture.Source) Input { return Input{name: name, src: src} }

// RunSources is Run over sources the caller opened.
func RunSources(ctx context.Context, sources []Input, opts Options, sink Sink) (Stats, error) {
	n := opts.Workers
	if n <= 0 {
		n = runtime.NumCPU()
	}
	cls := classifier.New(opts.Classifier)
	var st Stats
	tracing := opts.Trace.Enabled
	quota := opts.Quota
	if tracing && quota == nil {
		quota = flightrec.NewQuota(flightrec.DefaultMemoryQuota)
	}

	// Interface names: the input's base name, with "#i" for its further
	// pcapng interfaces; packets carry an index into this list.
	var ifaces []string
	ifaceBase := make([]int, len(sources))

	var ifacesMu sync.Mutex
	sinks := newSinkLoop(n)
	sinkDone := make(chan struct{})
	go func() {
		defer close(sinkDone)
		sinks.run(sink, opts.Flush)
	}()
	var supply *flightrec.ChunkSupply
	if tracing {
		supply = flightrec.NewChunkSupply()
		defer supply.Stop()
	}
	workers := make([]*worker, n)
	var wg sync.WaitGroup
	for i := range workers {
		inFlight := min(maxBatchesInFlight, max(minBatchesInFlight, 128/n)) &^ 1
		w := &worker{in: make(chan *batch, inFlight), free: make(chan freeGroup, 2), inFlight: inFlight}
		for range inFlight {
			w.spare = append(w.spare, new(batch))
		}
		w.out = <-sinks.free
		tcfg := opts.Table
		if tcfg.MaxConnections > 0 {
			tcfg.MaxConnections = max(1, tcfg.MaxConnections/n) // the bound is for all workers together
		} else {
			tcfg.MaxConnections = max(1, reassembly.DefaultMaxConnections/n)
		}
		pc := pipeline.Config{
			Index: i, Total: n, Table: tcfg, Classifier: cls,
			Cache: opts.Cache, Fleet: opts.Fleet,
			Interface: func(c *reassembly.Conn) string {
				ifacesMu.Lock()
				defer ifacesMu.Unlock()
				if int(c.Interface) < len(ifaces) {
					return ifaces[c.Interface]
				}
				return ""
			},
			// The workers classify, build records, count and fill the
			// cache (which has its own lock) in parallel; the sink
			// goroutine alone calls sink.
			Deliver: func(rec *record.Record) {
				w.out.recs[w.out.n] = *rec
				if w.out.n++; w.out.n == recordBatchSize {
					sinks.in <- w.out
					w.out = <-sinks.free
				}
			},
		}
		if tracing {
			pc.Trace, pc.Quota = opts.Trace, quota
		}
		w.p = pipeline.New(pc)
		if tracing {
			w.p.Table().SetChunkSupply(supply)
		}
		w.cur = w.next()
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range w.in {
				for k := 0; k < b.n; k++ {
					w.p.Segment(&b.pkts[k], b.hdr[k][:b.hdrLen[k]])
				}
				tick, flush := b.tick, b.flush
				b.tick, b.flush = 0, false
				w.done(b)
				if tick != 0 {
					w.p.Table().Tick(tick)
				}
				if flush {
					w.out.flush = true
					sinks.in <- w.out
					w.out = <-sinks.free
				}
			}
		}()
	}

	dec := capture.NewDecoder(opts.Decoder)
	var pkt capture.Packet
	// last is the capture's clock: every frame moves it, not only the TCP
	// segments, since any frame shows the capture was still running then.
	// A sender silent for seconds before a capture that ends with a UDP
	// frame or an ARP request was silent that long on the wire.
	var last int64
	var nFrames uint64
	var errs []error
	nIfaces := 0 // len(ifaces), read without the lock by the reader that alone appends
	for si, s := range sources {
		ifaceBase[si] = len(ifaces)
		base := filepath.Base(s.name)
		if s.name == "-" {
			base = "stdin"
		}
		ifacesMu.Lock()
		ifaces = append(ifaces, base)
		nIfaces = len(ifaces)
		ifacesMu.Unlock()
		total := capture.Size(s.src)
		off, _ := s.src.(capture.OffsetSource)
		if s.idle != nil {
			// Called in this goroutine, from within s.src.Next, between
			// packets: the batches are the reader's to hand over.
			s.idle.onIdle = func() {
				var tick int64
				if last > 0 {
					tick = last + int64(time.Since(s.idle.lastData))
				}
				for _, w := range workers {
					w.cur.tick, w.cur.flush = tick, true
					w.in <- w.cur
					w.cur = w.next()
				}
			}
		}
		for frames := 0; ; frames++ {
			if frames&0xffff == 0 {
				if ctx.Err() != nil {
					errs = append(errs, ctx.Err())
					break
				}
				if opts.Progress != nil && off != nil {
					opts.Progress(s.name, off.Offset(), total)
				}
			}
			f, err := s.src.Next()
			if err != nil {
				if err != io.EOF {
					errs = append(errs, &InputError{Name: s.name, Err: err})
				}
				break
			}
			nFrames++
			last = max(last, f.Timestamp)
			gi := ifaceBase[si] + int(f.Interface)
			if gi >= nIfaces {
				ifacesMu.Lock()
				for len(ifaces) <= gi {
					ifaces = append(ifaces, fmt.Sprintf("%s#%d", base, len(ifaces)-ifaceBase[si]))
				}
				nIfaces = len(ifaces)
				ifacesMu.Unlock()
			}
			if !dec.Decode(&f, &pkt) {
				continue
			}
			pkt.Interface = uint16(gi)
			w := workers[capture.Shard(capture.FlowHash(&pkt), n)]
			w.cur.pkts[w.cur.n] = pkt
			w.cur.hdrLen[w.cur.n] = 0
			if tracing {
				w.cur.hdrLen[w.cur.n] = uint8(copy(w.cur.hdr[w.cur.n][:], pkt.HeaderBytes(f.Data, flightrec.MaxHeaderBytes)))
			}
			w.cur.n++
			if w.cur.n == batchSize {
				w.in <- w.cur
				w.cur = w.next()
			}
			st.Segments++
		}
		if opts.Progress != nil && off != nil {
			opts.Progress(s.name, off.Offset(), total)
		}
		if e, ok := s.src.(capture.EndTimeSource); ok {
			last = max(last, e.EndTime())
		}
	}
	if opts.CaptureEnd != nil {
		last = max(last, opts.CaptureEnd(last))
	}
	for _, w := range workers {
		if w.cur.n > 0 {
			w.in <- w.cur
		}
		close(w.in)
	}
	wg.Wait()
	// The connections still open at the end are finished by every worker
	// at once.
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.p.Table().Flush(last)
			if w.out.n > 0 {
				sinks.in <- w.out
			}
			w.p.Publish(&metrics.Worker{})
		}()
	}
	wg.Wait()
	close(sinks.in)
	<-sinkDone
	st.Workers = make([]metrics.Worker, n)
	st.Worker = metrics.Worker{Interface: "offline"}
	for i, w := range workers {
		st.Workers[i] = w.p.Published()
		st.Worker.Add(&st.Workers[i])
	}
	st.Frames, st.Decode = nFrames, dec.Stats
	return st, errors.Join(errs...)
}

// isRegular reports whether f is a regular file (not a pipe or terminal).
func isRegular(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}
