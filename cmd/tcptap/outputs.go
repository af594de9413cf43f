package main

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/exporter/output"
	"github.com/tcptap/tcptap/record"
)

// liveOutputs holds the daemon's record outputs, which a reload may
// replace: the workers write through it, the registry collects through it.
type liveOutputs struct {
	mu  sync.RWMutex // held for reading by Write, for writing by swap
	set *output.Set
}

// Write queues rec for the current outputs (daemon.Options.OnClose).
func (l *liveOutputs) Write(rec *record.Record) {
	l.mu.RLock()
	l.set.Write(rec)
	l.mu.RUnlock()
}

// Reopen has the current file output reopen its file.
func (l *liveOutputs) Reopen() {
	l.mu.RLock()
	l.set.Reopen()
	l.mu.RUnlock()
}

// swap makes s the outputs and returns the former ones. Once it returns,
// no Write is still writing into them: the caller can Close them and
// nothing queued after is lost.
func (l *liveOutputs) swap(s *output.Set) *output.Set {
	l.mu.Lock()
	old := l.set
	l.set = s
	l.mu.Unlock()
	return old
}

// Close delivers what the current outputs hold and closes them.
func (l *liveOutputs) Close() {
	l.mu.RLock()
	s := l.set
	l.mu.RUnlock()
	s.Close()
}

// Describe and Collect report the current outputs (tcptap_output_*).
func (l *liveOutputs) Describe(ch chan<- *prometheus.Desc) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	l.set.Collector().Describe(ch)
}

func (l *liveOutputs) Collect(ch chan<- prometheus.Metric) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	l.set.Collector().Collect(ch)
}
