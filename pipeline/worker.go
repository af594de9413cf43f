// Package pipeline is the worker `tcptap read` and `tcptap run` share. A
// worker owns one shard's connection table: the driver hands it decoded
// segments (Segment) and advances its clock (Tick, Flush), and for every
// connection the table lets go of the worker classifies it, builds its
// record, counts it, offers it with its flight recorder to the trace cache
// and hands the record to the driver (Config.Deliver). Its counters — the
// table's, the ended connections', the opens — are published as one
// metrics.Worker, read by a Prometheus scrape, the SNMP agent or the end of
// an offline run alike.
//
// The drivers differ only in where segments come from, so decoding stays
// with them: offline/ decodes capture files once, in one reader goroutine,
// to shard the packets by flow and hand batches to its workers; daemon/
// has each worker read and decode its own AF_PACKET socket, which the
// kernel's fanout already shards.
// docs/architecture.md follows one packet through both.
package pipeline

import (
	"sync"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// Config configures one worker.
type Config struct {
	// Index is the worker's shard and Total the number of workers, which
	// the table's connection IDs are unique across.
	Index, Total int
	// Table configures the connection table; MaxConnections is this
	// worker's share. LocalNets is taken from the classifier.
	Table      reassembly.Config
	Classifier *classifier.Classifier
	// Trace and Quota configure the flight recorder (Quota nil: no
	// tracing).
	Trace flightrec.Config
	Quota *flightrec.Quota
	// Cache, when set, is offered every finished connection with its
	// flight recorder.
	Cache *cache.Cache
	// Fleet, when set, stamps every record with the sensor name, the
	// Community ID and, when the connection finished, a uid.
	Fleet *record.Fleet
	// Interface names the capture interface a connection was seen on.
	Interface func(c *reassembly.Conn) string
	// PortLabels are the server ports whose closes are counted on their own.
	PortLabels []uint16
	// DeadCheck, for live capture, ends within seconds a connection whose
	// sender has given up (retransmission, persist, keepalive or SYN
	// timeout) instead of after the idle timeout; offline, the end of the
	// capture judges them.
	DeadCheck bool
	// Deliver, when set, receives each finished connection's record after
	// it was counted and offered to the cache, in the worker's goroutine.
	// It must not keep rec.
	Deliver func(rec *record.Record)
}

// Worker is one shard of the pipeline. It is not safe for concurrent use,
// except Published, which any goroutine may call.
type Worker struct {
	cfg   Config
	table *reassembly.Table
	rec   record.Record // the record of the connection finishing now

	// Owned by the worker's goroutine.
	conns metrics.Counters // added to once per ended connection
	opens *handshakes      // its listener set has its own lock
	ports []uint16         // Config.PortLabels as counted now (SetPortLabels)
	risks [classifier.NumRisks]uint64

	mu   sync.Mutex
	snap metrics.Worker
}

// New returns a worker with an empty table.
func New(cfg Config) *Worker {
	localNets := cfg.Classifier.Config().LocalNets
	w := &Worker{cfg: cfg, opens: newHandshakes(localNets), ports: cfg.PortLabels}
	tcfg := cfg.Table
	tcfg.LocalNets = localNets // the live counts by side name the classifier's local side
	w.table = reassembly.NewTable(tcfg, cfg.Index, cfg.Total, w.finished)
	if cfg.Quota != nil {
		w.table.SetTrace(cfg.Trace, cfg.Quota)
	}
	if cfg.DeadCheck {
		w.table.SetDeadCheck(w.deadByTimer, time.Second, cfg.Classifier.Config().MinSilence)
	}
	return w
}

// Table returns the worker's connection table, for the driver's clock
// (Tick, Flush) and trace changes (SetTrace, SetChunkSupply).
func (w *Worker) Table() *reassembly.Table { return w.table }

// Segment applies one decoded segment and its IP and TCP header bytes (nil
// when not tracing), counting opens as the handshakes go by.
func (w *Worker) Segment(p *capture.Packet, hdr []byte) {
	opened := w.table.Stats.Opened
	w.table.PacketWithHeaders(p, hdr)
	if p.Flags.Has(capture.FlagSYN) {
		w.opens.segment(p, w.table.Stats.Opened != opened)
	}
}

// finished is the table's sink: classify, build the record, count it,
// offer it to the cache, deliver it.
func (w *Worker) finished(c *reassembly.Conn) {
	rec := &w.rec
	record.Finish(rec, c, w.cfg.Classifier, w.cfg.Interface(c), w.cfg.Fleet)
	w.conns.Add(rec, w.ports)
	w.opens.ended(c)
	if w.cfg.Cache != nil && w.cfg.Cache.Add(rec, c.Trace) != nil {
		c.Trace = nil // the cache holds its records now
	}
	if w.cfg.Deliver != nil {
		w.cfg.Deliver(rec)
	}
}

// deadByTimer reports whether a silent connection, judged as of the tick,
// died by a timer (retransmission, persist, keepalive or SYN timeout).
func (w *Worker) deadByTimer(c *reassembly.Conn) bool {
	switch w.cfg.Classifier.Classify(c).Reason {
	case classifier.RetransmitTimeout, classifier.PersistTimeout, classifier.KeepaliveTimeout, classifier.SYNTimeout:
		return true
	}
	return false
}

// SetPortLabels changes the server ports counted on their own and starts
// their per-port counts from zero (a slot may now count another port;
// Prometheus reads the reset as a counter reset).
func (w *Worker) SetPortLabels(ports []uint16) {
	w.ports = ports
	w.conns.Services = [metrics.MaxServices][metrics.NumReasons]uint64{}
}

// CountRisks counts the open connections at risk as of now, by cause, from
// the table's watch list, for the next Publish.
func (w *Worker) CountRisks(now int64) {
	var n [classifier.NumRisks]uint64
	w.table.EachWatched(func(c *reassembly.Conn) bool {
		r, _ := classifier.RiskOf(c, now)
		n[r]++
		return true
	})
	n[classifier.NoRisk] = 0
	w.risks = n
}

// Publish completes s, which holds what the driver knows (the interface,
// frames, decoder, kernel socket, queue, re-sharding), with the worker's
// table, connection, open and risk counters, and makes it what Published
// returns. It runs in the worker's goroutine.
func (w *Worker) Publish(s *metrics.Worker) {
	s.Table = w.table.Stats
	s.Active = w.table.Len()
	s.Conns = w.conns
	s.Opens = metrics.Opens{Active: w.opens.active, Passive: w.opens.passive}
	s.AtRisk = w.risks
	w.mu.Lock()
	w.snap = *s
	w.mu.Unlock()
}

// Published returns the counters of the last Publish.
func (w *Worker) Published() metrics.Worker {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

// Snapshot is what one scrape (or the end of an offline run) reads: the
// workers' published counters, the trace quota and the cache (nil: none).
func Snapshot(workers []metrics.Worker, quota *flightrec.Quota, c *cache.Cache, traceEnabled bool) *metrics.Snapshot {
	s := &metrics.Snapshot{Workers: workers, TraceEnabled: traceEnabled}
	if quota != nil {
		s.QuotaLimit, s.QuotaUsed, s.QuotaPeak = quota.Limit(), quota.Used(), quota.Peak()
	}
	if c != nil {
		s.HasCache, s.Cache, s.CacheLen = true, c.Stats(), c.Len()
	}
	return s
}
