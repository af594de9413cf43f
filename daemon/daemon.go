// Package daemon is tcptap's sensor appliance: live capture workers, each
// owning one AF_PACKET socket of a fanout group and its connection table,
// the trace cache they feed, and the control socket through which the
// operator's commands (docs/trace.md) reach them.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcptap/tcptap/acl"
	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/pipeline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// Source is a live capture socket as a worker reads it.
type Source interface {
	// Next returns the next frame, valid until the next call, or an error
	// for which IsTimeout is true when no frame came within the poll
	// timeout.
	Next() (capture.Frame, error)
	Close() error
}

// VLANSource is a Source that puts the VLAN tag the kernel stripped from
// the last frame (into its metadata) back into the decoded packet.
type VLANSource interface {
	ApplyVLAN(p *capture.Packet)
}

// StatsSource is a Source with kernel socket statistics.
type StatsSource interface {
	Stats() (capture.LiveStats, error)
}

// IsTimeout reports whether err is a source's poll timeout.
func IsTimeout(err error) bool { return errors.Is(err, capture.ErrTimeout) }

// OpenFunc opens the source of one worker on one interface.
type OpenFunc func(iface string, worker, workers int) (Source, error)

// Options configure a daemon.
type Options struct {
	Interfaces []string
	Workers    int // per interface; 0: one per CPU
	Open       OpenFunc

	Decoder     capture.DecoderConfig // UDP tunnel ports, duplicates policy
	Table       reassembly.Config
	Classifier  classifier.Config
	Trace       flightrec.Config // Enabled starts tracing at once
	MemoryQuota int64
	// OnClose, when set, is called from the worker with every finished
	// connection after the cache saw it; it must not block or keep rec.
	OnClose   func(rec *record.Record)
	CacheMode cache.Mode

	// Persist saves the running trace configuration (tcptap trace persist).
	Persist func(config.TraceSettings) error
	Logger  *slog.Logger

	// PortLabels are the server ports whose closes are counted on their
	// own (exporter.port_labels; at most metrics.MaxServices).
	PortLabels []uint16

	// Fleet, when set, stamps every record with the sensor name and the
	// Community ID, and those of finished connections with a uid.
	Fleet *record.Fleet
}

// Daemon runs the live pipeline.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	cls     *classifier.Classifier
	quota   *flightrec.Quota
	cache   *cache.Cache
	workers []*worker
	started time.Time

	mu       sync.Mutex // guards settings and trace
	settings config.TraceSettings
	acl      acl.List
	trace    flightrec.Config
	gen      atomic.Uint64 // bumped on every trace change; workers pick it up
	causes   sync.Map      // causes of undecoded frames already logged (string → true)

	reload func(who Actor) error // the "reload" command (SetReload); under mu
}

// worker is one live capture worker: its socket and decoder feed a
// pipeline worker (its connection table and everything downstream).
type worker struct {
	reqs  chan query  // queries, run in the worker's goroutine at its next sync
	asked atomic.Bool // a query waits: sync at the next frame
	d     *Daemon
	iface string
	index int // across all interfaces
	src   Source
	dec   *capture.Decoder
	p     *pipeline.Worker
	gen   uint64
	hdr   [flightrec.MaxHeaderBytes]byte

	nextSync, nextRisk int64 // wall-clock times the next sync and risk count are due
	// undecoded is the frames not decoded when causes were last logged.
	undecoded uint64

	// Re-sharding of tunnelled segments (see reshard.go): the workers of
	// this interface (nil when it has one) and this worker's inbox.
	peers   []*worker
	inbox   chan handoff
	held    heldQueue
	reshard metrics.ReshardStats
}

// query is work a worker does for another goroutine between its frames,
// as of now.
type query func(w *worker, now int64)

// New opens the capture sockets and prepares the workers; Run starts them.
func New(opts Options) (*Daemon, error) {
	if len(opts.Interfaces) == 0 {
		return nil, errors.New("no capture interface: set capture.interfaces or -i")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Open == nil {
		return nil, errors.New("no source opener")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Trace.MaxPacketNumber <= 0 {
		opts.Trace.MaxPacketNumber = flightrec.DefaultMaxPacketNumber
	}
	if opts.MemoryQuota <= 0 {
		opts.MemoryQuota = flightrec.DefaultMemoryQuota
	}
	d := &Daemon{
		opts:    opts,
		log:     opts.Logger,
		cls:     classifier.New(opts.Classifier),
		quota:   flightrec.NewQuota(opts.MemoryQuota),
		started: time.Now(),
		trace:   opts.Trace,
	}
	d.cache = cache.New(opts.CacheMode, d.quota)
	d.settings = config.TraceSettings{
		Enabled:           opts.Trace.Enabled,
		Filter:            opts.Trace.Filter.Strings(),
		OnlyNewConnection: opts.Trace.OnlyNewConnection,
		MaxPacketNumber:   opts.Trace.MaxPacketNumber,
		MemoryQuota:       opts.MemoryQuota,
		CacheMode:         opts.CacheMode,
	}
	d.acl = opts.Trace.Filter
	if d.trace.Enabled && d.trace.EnabledAt == 0 {
		d.trace.EnabledAt = time.Now().UnixNano()
	}
	total := len(opts.Interfaces) * opts.Workers
	tcfg := opts.Table
	if tcfg.MaxConnections <= 0 {
		tcfg.MaxConnections = reassembly.DefaultMaxConnections
	}
	tcfg.MaxConnections = max(1, tcfg.MaxConnections/total)
	for _, iface := range opts.Interfaces {
		var peers []*worker
		for i := 0; i < opts.Workers; i++ {
			src, err := opts.Open(iface, i, opts.Workers)
			if err != nil {
				d.closeSources()
				return nil, err // the source names the interface
			}
			w := &worker{reqs: make(chan query, 8), d: d, iface: iface, index: len(d.workers), src: src, dec: capture.NewDecoder(opts.Decoder)}
			w.p = pipeline.New(pipeline.Config{
				Index: w.index, Total: total,
				Table: tcfg, Classifier: d.cls,
				Trace: d.trace, Quota: d.quota, Cache: d.cache,
				Fleet:      opts.Fleet,
				Interface:  func(*reassembly.Conn) string { return iface },
				PortLabels: opts.PortLabels,
				DeadCheck:  true,
				Deliver:    opts.OnClose,
			})
			d.workers = append(d.workers, w)
			peers = append(peers, w)
		}
		if len(peers) > 1 {
			for _, w := range peers {
				w.peers = peers
				w.inbox = make(chan handoff, handoffQueue)
			}
		}
	}
	return d, nil
}

func (d *Daemon) closeSources() {
	for _, w := range d.workers {
		w.src.Close()
	}
}

// Run captures until ctx is done, then flushes nothing (connections still
// open stay unreported, as on the device) and closes the sockets after every
// reader has returned (closing unmaps the ring under the frame a reader still reads).
func (d *Daemon) Run(ctx context.Context) error {
	// Flight-recorder chunks come faulted in from a goroutine of their own
	// rather than be faulted in by a worker that should be reading.
	supply := flightrec.NewChunkSupply()
	defer supply.Stop()
	for _, w := range d.workers {
		w.p.Table().SetChunkSupply(supply)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(d.workers))
	for _, w := range d.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx); err != nil {
				errs <- fmt.Errorf("capture %s worker %d: %w", w.iface, w.index, err)
			}
		}()
	}
	wg.Wait()
	d.closeSources()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// syncEvery is how often a worker publishes its counters, ages its
// connections and answers queries, whatever the packet rate: quiet (the
// poll timeout), trickling or flooded (a clock check between frames).
const syncEvery = 50 * time.Millisecond

// riskEvery is how often a worker counts its at-risk connections for the
// gauge (a walk of its watch list).
const riskEvery = 250 * time.Millisecond

// BacklogSource is a Source that counts the frames waiting in it: the
// queue a live worker has (tcptap_worker_queue_depth).
type BacklogSource interface {
	Backlog() int
}

// Waker is a Source whose wait for the next frame another goroutine can cut
// short, so a query is answered at once on a quiet link. ClearWake drops a
// wake the reader no longer needs: it is about to serve the queries.
type Waker interface {
	Wake()
	ClearWake()
}

// run is one worker's loop: read, decode, update the table; every syncEvery
// (on a poll timeout, or when a frame's time or the clock says it is due)
// and whenever a query waits, pick up trace changes, advance the table's
// clock so idle and silent connections end, answer queries and publish the
// counters.
func (w *worker) run(ctx context.Context) error {
	var p capture.Packet
	var frames uint64
	vs, _ := w.src.(VLANSource)
	w.sync(frames, time.Now().UnixNano())
	for n := 0; ; n++ {
		if w.inbox != nil {
			if len(w.inbox) > 0 {
				w.drainInbox()
			}
			if len(w.held.heap) > 0 && n&63 == 0 {
				w.releaseHeld(time.Now().UnixNano())
			}
		}
		f, err := w.src.Next()
		if err != nil {
			if IsTimeout(err) {
				if ctx.Err() != nil {
					w.stop(frames)
					return nil
				}
				if w.inbox != nil {
					w.drainInbox()
					w.releaseHeld(time.Now().UnixNano())
				}
				w.sync(frames, time.Now().UnixNano())
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		frames++
		// The frame's kernel timestamp is free to read; the clock is read
		// when it says a sync is due, every 1024 frames (timestamps may be
		// a replay's), or when a query waits.
		if f.Timestamp >= w.nextSync || frames&1023 == 0 || w.asked.Load() {
			if now := time.Now().UnixNano(); now >= w.nextSync || w.asked.Load() {
				if ctx.Err() != nil {
					w.stop(frames)
					return nil
				}
				w.sync(frames, now)
			}
		}
		if !w.dec.Decode(&f, &p) {
			continue
		}
		if vs != nil {
			vs.ApplyVLAN(&p)
		}
		if p.Tunnel.Depth != 0 && w.peers != nil {
			w.handOff(&p, f.Data)
			continue
		}
		var hdr []byte
		if w.p.Table().Trace().Enabled {
			hdr = w.hdr[:copy(w.hdr[:], p.HeaderBytes(f.Data, flightrec.MaxHeaderBytes))]
		}
		w.segment(&p, hdr)
	}
}

// stop applies what other workers handed over and publishes the last
// counters.
func (w *worker) stop(frames uint64) {
	if w.inbox != nil {
		w.drainInbox()
		w.releaseHeld(0)
	}
	w.publish(frames)
}

// segment hands one decoded segment and its IP and TCP header bytes (nil
// when not tracing) to the pipeline.
func (w *worker) segment(p *capture.Packet, hdr []byte) {
	p.Interface = uint16(w.index)
	w.p.Segment(p, hdr)
}

// sync ages the table as of now, answers waiting queries, applies a
// changed trace configuration and publishes counters.
func (w *worker) sync(frames uint64, now int64) {
	w.p.Table().Tick(w.clock(now)) // a busy link gets no poll timeouts
	// Before the queries are taken: a wake or ask that comes later is
	// for a query this sync may miss.
	w.asked.Store(false)
	if wk, ok := w.src.(Waker); ok {
		wk.ClearWake()
	}
	for served := false; !served; {
		select {
		case q := <-w.reqs:
			q(w, now)
		default:
			served = true
		}
	}
	if g := w.d.gen.Load(); g != w.gen {
		w.d.mu.Lock()
		w.p.Table().SetTrace(w.d.trace, w.d.quota)
		w.gen = g
		w.d.mu.Unlock()
	}
	if now >= w.nextRisk {
		w.nextRisk = now + int64(riskEvery)
		w.p.CountRisks(now)
	}
	w.publish(frames)
	// The next sync is due syncEvery after this one ends, however long
	// its queries held it: frames that arrived meanwhile do not make the
	// first of them sync again at once.
	w.nextSync = time.Now().UnixNano() + int64(syncEvery)
}

// logCauses logs, once per daemon, each new cause of frames the decoder
// could not use, so nothing is dropped silently (the counts are in
// tcptap_decode_errors_total and tcptap_decode_ignored_frames_total).
func (w *worker) logCauses(frames uint64) {
	s := &w.dec.Stats
	if n := frames - s.TCP; n == w.undecoded {
		return // nothing new: the common case costs a subtraction
	} else {
		w.undecoded = n
	}
	for _, c := range s.Undecoded() {
		if _, seen := w.d.causes.LoadOrStore(c.Name, true); !seen {
			w.d.log.Info("frames not decoded", "cause", c.Name, "interface", w.iface, "frames", c.Frames)
		}
	}
}

func (w *worker) publish(frames uint64) {
	w.logCauses(frames)
	s := metrics.Worker{Interface: w.iface, Frames: frames, Decode: w.dec.Stats, Reshard: w.reshard}
	if ss, ok := w.src.(StatsSource); ok {
		s.Kernel, _ = ss.Stats()
		s.HasKernel = true
	}
	// The queue: frames the kernel put in the ring, and tunnelled
	// segments other workers handed over that wait in the inbox or the
	// reorder heap.
	if b, ok := w.src.(BacklogSource); ok {
		s.QueueDepth = b.Backlog()
	}
	s.QueueDepth += len(w.inbox) + len(w.held.heap)
	w.p.Publish(&s)
}

// Stats returns every worker's last published counters.
func (d *Daemon) Stats() []metrics.Worker {
	out := make([]metrics.Worker, len(d.workers))
	for i, w := range d.workers {
		out[i] = w.p.Published()
	}
	return out
}

// CacheEntries returns the trace cache's closed connections, oldest first
// (snmp.Backend).
func (d *Daemon) CacheEntries() []*cache.Entry { return d.cache.Entries(nil) }

// Cache returns the trace cache.
func (d *Daemon) Cache() *cache.Cache { return d.cache }

// Quota returns the trace memory budget.
func (d *Daemon) Quota() *flightrec.Quota { return d.quota }

// Settings returns the running trace configuration.
func (d *Daemon) Settings() config.TraceSettings {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.settings
	s.Filter = append([]string(nil), s.Filter...)
	return s
}

// ErrTraceEnabled refuses a change the vendor allows only while tracing is
// disabled.
var ErrTraceEnabled = errors.New("tracing is enabled: filter, max-packet-number and memory-quota can change only while it is disabled (run 'tcptap trace disable' first)")

// update applies fn to the settings under the lock and hands the result to
// the workers.
func (d *Daemon) update(needDisabled bool, fn func(s *config.TraceSettings) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if needDisabled && d.settings.Enabled {
		return ErrTraceEnabled
	}
	s := d.settings
	if err := fn(&s); err != nil {
		return err
	}
	acl, err := acl.Parse(s.Filter)
	if err != nil {
		return err
	}
	if s.Enabled && !d.settings.Enabled {
		d.trace.EnabledAt = time.Now().UnixNano()
	}
	d.settings, d.acl = s, acl
	d.trace.Enabled = s.Enabled
	d.trace.Filter = acl
	d.trace.OnlyNewConnection = s.OnlyNewConnection
	d.trace.MaxPacketNumber = s.MaxPacketNumber
	d.quota.SetLimit(s.MemoryQuota)
	d.cache.SetMode(s.CacheMode)
	d.gen.Add(1)
	return nil
}

// SetEnabled starts or stops tracing.
func (d *Daemon) SetEnabled(on bool) error {
	return d.update(false, func(s *config.TraceSettings) error { s.Enabled = on; return nil })
}

// SetFilter replaces the ACL (only while disabled).
func (d *Daemon) SetFilter(rules []string) error {
	if _, err := acl.Parse(rules); err != nil {
		return err
	}
	return d.update(true, func(s *config.TraceSettings) error { s.Filter = append([]string(nil), rules...); return nil })
}

// SetOnlyNewConnection sets the only-new-connection filter (only while disabled).
func (d *Daemon) SetOnlyNewConnection(on bool) error {
	return d.update(true, func(s *config.TraceSettings) error { s.OnlyNewConnection = on; return nil })
}

// SetMaxPacketNumber sets the per-connection record ring size (only while disabled).
func (d *Daemon) SetMaxPacketNumber(n int) error {
	if err := flightrec.CheckMaxPacketNumber(n); err != nil {
		return fmt.Errorf("max-packet-number %w", err)
	}
	return d.update(true, func(s *config.TraceSettings) error { s.MaxPacketNumber = n; return nil })
}

// SetMemoryQuota sets the trace memory budget (only while disabled).
func (d *Daemon) SetMemoryQuota(n int64) error {
	if n < 0 {
		return fmt.Errorf("memory-quota %d: want a positive size", n)
	}
	return d.update(true, func(s *config.TraceSettings) error { s.MemoryQuota = n; return nil })
}

// SetCacheMode sets which closed connections the cache keeps.
func (d *Daemon) SetCacheMode(m cache.Mode) error {
	return d.update(false, func(s *config.TraceSettings) error { s.CacheMode = m; return nil })
}

// Persist saves the running trace configuration through Options.Persist.
func (d *Daemon) Persist() error {
	if d.opts.Persist == nil {
		return errors.New("no configuration file to persist to: start the daemon with --config FILE")
	}
	return d.opts.Persist(d.Settings())
}

// ResetCache clears the cache.
func (d *Daemon) ResetCache() { d.cache.Reset() }

// Information gathers the configuration and statistics the information
// view shows.
func (d *Daemon) Information() *exporter.TraceInformation {
	s := d.Settings()
	in := &exporter.TraceInformation{
		Enabled:           s.Enabled,
		MaxPacketNumber:   s.MaxPacketNumber,
		CacheMode:         s.CacheMode.String(),
		Filter:            s.Filter,
		OnlyNewConnection: s.OnlyNewConnection,
	}
	in.SetMemory(d.quota)
	for _, w := range d.Stats() {
		in.AddTable(&w.Table, w.Active)
	}
	in.SetCache(d.cache.Stats())
	return in
}

// MetricsSnapshot returns what a Prometheus scrape reads: every worker's
// last published counters, the trace quota and the cache's statistics.
func (d *Daemon) MetricsSnapshot() *metrics.Snapshot {
	s := pipeline.Snapshot(d.Stats(), d.quota, d.cache, d.Settings().Enabled)
	s.Live = true
	s.PortLabels = d.PortLabels()
	return s
}

// ask runs q in every worker's goroutine, at once, and waits for all of
// them or ctx. A worker runs a query at its next sync: within syncEvery,
// at once when its source can be woken from a wait for frames.
func (d *Daemon) ask(ctx context.Context, q func(w *worker, now int64) any) ([]any, error) {
	replies := make(chan struct {
		i int
		v any
	}, len(d.workers))
	for i, w := range d.workers {
		run := func(w *worker, now int64) {
			replies <- struct {
				i int
				v any
			}{i, q(w, now)}
		}
		select {
		case w.reqs <- run:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		w.asked.Store(true)
		if wk, ok := w.src.(Waker); ok {
			wk.Wake()
		}
	}
	out := make([]any, len(d.workers))
	for range d.workers {
		select {
		case r := <-replies:
			out[r.i] = r.v
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// Open returns one page of open connections, judged as of now (mostly
// OP: still open), each with its risk.
func (d *Daemon) Open(ctx context.Context, q pipeline.OpenQuery) (pipeline.OpenPage, error) {
	parts, err := d.ask(ctx, func(w *worker, now int64) any { return w.p.OpenPage(q, now) })
	if err != nil {
		return pipeline.OpenPage{}, err
	}
	pages := make([]pipeline.OpenPage, len(parts))
	for i, p := range parts {
		pages[i] = p.(pipeline.OpenPage)
	}
	return pipeline.MergePages(pages, q.Limit), nil
}

// OpenConnections returns records of connections still open, at most max
// in all, in increasing ID order, asking the workers one page at a time.
func (d *Daemon) OpenConnections(ctx context.Context, max int) ([]record.Record, error) {
	var out []record.Record
	q := pipeline.OpenQuery{}
	for len(out) < max {
		q.Limit = min(pipeline.MaxOpenPage, max-len(out))
		pg, err := d.Open(ctx, q)
		if err != nil {
			return out, err
		}
		out = append(out, pg.Records...)
		if !pg.More || len(pg.Records) == 0 {
			break
		}
		q.From = pg.Records[len(pg.Records)-1].ID + 1
	}
	return out, nil
}

// PortLabels returns the server ports counted on their own
// (exporter.port_labels) as they run.
func (d *Daemon) PortLabels() []uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.opts.PortLabels)
}

// SetPortLabels changes the server ports counted on their own: each worker
// takes the new list between its frames and starts their per-port counts
// from zero (a slot may now count another port; Prometheus reads the
// reset as a counter reset). It returns once every worker has the list.
func (d *Daemon) SetPortLabels(ctx context.Context, ports []uint16) error {
	ports = slices.Clone(ports[:min(len(ports), metrics.MaxServices)])
	d.mu.Lock()
	d.opts.PortLabels = ports
	d.mu.Unlock()
	_, err := d.ask(ctx, func(w *worker, _ int64) any {
		w.p.SetPortLabels(ports)
		return nil
	})
	return err
}

// OpenPage is Open for the HTTP API (exporter/web.OpenLister).
func (d *Daemon) OpenPage(ctx context.Context, from uint64, limit int, atRisk bool, risk classifier.Risk) ([]record.Record, bool, error) {
	pg, err := d.Open(ctx, pipeline.OpenQuery{From: from, Limit: limit, AtRisk: atRisk, Risk: risk})
	return pg.Records, pg.More, err
}

// Listeners returns the local-side endpoints seen answering a SYN with a
// SYN-ACK (the listening sockets a tap can infer), sorted, at most
// pipeline.MaxListeners (snmp.Backend).
func (d *Daemon) Listeners() []netip.AddrPort {
	ps := make([]*pipeline.Worker, len(d.workers))
	for i, w := range d.workers {
		ps[i] = w.p
	}
	return pipeline.Listeners(ps)
}
