package metrics

import (
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "tcptap"

// Options configure the exporter's collectors.
type Options struct {
	// Version, Revision: the build, for tcptap_build_info.
	Version  string
	Revision string
	// PortLabels are the server ports (exporter.port_labels) that get
	// their own series in tcptap_service_connections_closed_total; at most
	// MaxServices are used.
	PortLabels []uint16
}

// collector is one group of metric families, built per scrape from the
// snapshot (node_exporter's Collector, with the snapshot taken once for all).
type collector interface {
	describe(ch chan<- *prometheus.Desc)
	update(s *Snapshot, ch chan<- prometheus.Metric)
}

var (
	factoriesMu sync.Mutex
	factories   = map[string]func(Options) collector{}
)

// registerCollector is called from each collector file's init().
func registerCollector(name string, f func(Options) collector) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	if _, dup := factories[name]; dup {
		panic("metrics: collector " + name + " registered twice")
	}
	factories[name] = f
}

// Collectors returns the registered collector names, sorted.
func Collectors() []string {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Exporter is a prometheus.Collector over every registered collector: one
// snapshot per scrape, shared by all of them.
type Exporter struct {
	src        Source
	collectors []collector
}

var _ prometheus.Collector = (*Exporter)(nil)

// New returns the exporter reading src at each scrape.
func New(src Source, opts Options) *Exporter {
	if len(opts.PortLabels) > MaxServices {
		opts.PortLabels = opts.PortLabels[:MaxServices]
	}
	e := &Exporter{src: src}
	for _, n := range Collectors() {
		e.collectors = append(e.collectors, factories[n](opts))
	}
	return e
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range e.collectors {
		c.describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	s := e.src()
	for _, c := range e.collectors {
		c.update(s, ch)
	}
}

// NewRegistry returns a registry with the exporter, the Go runtime and the
// process collectors: what /metrics serves.
func NewRegistry(src Source, opts Options) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(src, opts))
	// The sensor's own health: process_* (CPU, resident memory, open
	// files) and go_* (goroutines, heap, GC).
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return reg
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// portLabel is a server port as a label value.
func portLabel(p uint16) string { return strconv.Itoa(int(p)) }
