package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("build_info", newBuildInfoCollector) }

type buildInfoCollector struct {
	d                            *prometheus.Desc
	version, revision, goversion string
}

func newBuildInfoCollector(o Options) collector {
	v, r := o.Version, o.Revision
	if v == "" {
		v = "unknown"
	}
	if r == "" {
		r = "unknown"
	}
	return &buildInfoCollector{
		d:         desc("build_info", "A metric with a constant '1' value labeled by the version, revision and Go version tcptap was built from.", "version", "revision", "goversion"),
		version:   v,
		revision:  r,
		goversion: runtime.Version(),
	}
}

func (c *buildInfoCollector) describe(ch chan<- *prometheus.Desc) { ch <- c.d }

func (c *buildInfoCollector) update(_ *Snapshot, ch chan<- prometheus.Metric) {
	gauge(ch, c.d, 1, c.version, c.revision, c.goversion)
}
