// Package metrics exposes tcptap's counters to Prometheus. Workers keep
// plain counters (Counters, the decoder's and the table's stats); at scrape
// time a custom collector takes one Snapshot of every worker and builds
// constant metrics from it, so the per-packet path never touches a
// Prometheus metric: users of similar tools found per-packet metric updates their bottleneck. As node_exporter's collector/, each
// group of metric families lives in its own file and registers itself in
// init().
package metrics

import (
	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/reassembly"
)

// Worker is one worker's published counters.
type Worker struct {
	Interface string
	Frames    uint64 // frames read from the source
	Decode    capture.DecodeStats
	Table     reassembly.TableStats
	Active    int // connections in the table
	// Kernel counters of the worker's capture socket; HasKernel is false
	// for sources that have none (capture files).
	Kernel    capture.LiveStats
	HasKernel bool
	// QueueDepth is the frames waiting for the worker: in its capture
	// ring (capture.LiveSource.Backlog) and handed over by other workers
	// (live); none once an offline run has ended.
	QueueDepth int
	Conns      Counters
	// Opens are counted live, as the handshake segments are seen (the
	// daemon's workers; zero in offline runs).
	Opens Opens
	// AtRisk counts the open connections at risk, by classifier.Risk (live
	// workers only).
	AtRisk [classifier.NumRisks]uint64
	// Reshard counts the tunnelled segments passed between the
	// interface's live workers.
	Reshard ReshardStats
}

// Snapshot is everything one scrape reads.
type Snapshot struct {
	Workers []Worker
	Live    bool // the workers capture live (their open connections can be at risk)
	// PortLabels, when not nil, are the server ports the workers count
	// on their own now (a reload may change Options.PortLabels).
	PortLabels   []uint16
	TraceEnabled bool
	QuotaLimit   int64 // trace memory quota, bytes
	QuotaUsed    int64
	QuotaPeak    int64
	HasCache     bool
	Cache        cache.Stats
	CacheLen     int
}

// Source returns a fresh snapshot for each scrape.
type Source func() *Snapshot

// ReshardStats counts the tunnelled segments a worker passed on.
type ReshardStats struct {
	Sent     uint64 // passed to the worker that owns the inner connection
	Received uint64 // taken from this worker's inbox
	Full     uint64 // the owner's inbox was full: kept here instead (the connection may be split)
	Early    uint64 // let go before the reorder delay because the reorder heap was full
}

// Add adds o's counters to w (the interface stays w's): the sum of several
// workers, as an offline run reports them.
func (w *Worker) Add(o *Worker) {
	w.Frames += o.Frames
	w.Decode.Add(&o.Decode)
	w.Table.Add(&o.Table)
	w.Active += o.Active
	if o.HasKernel {
		w.HasKernel = true
		w.Kernel.Add(&o.Kernel)
	}
	w.QueueDepth += o.QueueDepth
	w.Conns.Merge(&o.Conns)
	w.Opens.Active += o.Opens.Active
	w.Opens.Passive += o.Opens.Passive
	for i := range w.AtRisk {
		w.AtRisk[i] += o.AtRisk[i]
	}
	w.Reshard.Sent += o.Reshard.Sent
	w.Reshard.Received += o.Reshard.Received
	w.Reshard.Full += o.Reshard.Full
	w.Reshard.Early += o.Reshard.Early
}
