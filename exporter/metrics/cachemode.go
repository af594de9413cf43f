package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/cache"
)

func init() { registerCollector("cachemode", newCacheModeCollector) }

// cacheModeCollector: the running trace.cache_mode as a state set, so
// alerts can tell a cache that fills the quota by design (mode all keeps
// every closed connection until 'tcptap reset cache') from one that
// should not.
type cacheModeCollector struct{ mode *prometheus.Desc }

func newCacheModeCollector(Options) collector {
	return &cacheModeCollector{mode: desc("cache_mode", "1 for the running trace cache mode (trace.cache_mode), 0 for the others.", "mode")}
}

func (c *cacheModeCollector) describe(ch chan<- *prometheus.Desc) { ch <- c.mode }

func (c *cacheModeCollector) update(s *Snapshot, ch chan<- prometheus.Metric) {
	if !s.HasCache {
		return
	}
	for _, m := range []cache.Mode{cache.AbnormalClose, cache.All} {
		v := 0.0
		if s.Cache.Mode == m {
			v = 1
		}
		gauge(ch, c.mode, v, m.String())
	}
}
