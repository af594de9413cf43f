package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/classifier"
)

func init() { registerCollector("risk", newRiskCollector) }

// riskCollector: open connections at risk of a timer's verdict, by cause
// (classifier.Risk): the live sensor's early warning. Offline runs have no
// open connections to warn about and export no such family.
type riskCollector struct {
	atRisk *prometheus.Desc
}

func newRiskCollector(Options) collector {
	return &riskCollector{
		atRisk: desc("connections_at_risk", "Open TCP connections in a pattern that ends in a timer's verdict if it goes on, by cause: retransmitting (RT), zero_window (PT), keepalive_unanswered (KT), syn_unanswered (ST). Counted live every 250 ms.", "cause"),
	}
}

func (c *riskCollector) describe(ch chan<- *prometheus.Desc) { ch <- c.atRisk }

func (c *riskCollector) update(s *Snapshot, ch chan<- prometheus.Metric) {
	if !s.Live {
		return
	}
	var n [classifier.NumRisks]uint64
	for i := range s.Workers {
		for r, v := range s.Workers[i].AtRisk {
			n[r] += v
		}
	}
	for _, r := range classifier.Risks {
		gauge(ch, c.atRisk, float64(n[r]), r.String())
	}
}
