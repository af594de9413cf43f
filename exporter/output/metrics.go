package output

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the outputs' counters: tcptap_output_records_total
// {output,result="sent|dropped|failed"}, tcptap_output_queue_bytes
// {output}, tcptap_output_queue_limit_bytes{output} and
// tcptap_output_up{output}. Register it beside the daemon's collectors.
type Collector struct{ s *Set }

// Collector returns the outputs' metrics collector.
func (s *Set) Collector() *Collector { return &Collector{s} }

var (
	recordsDesc = prometheus.NewDesc("tcptap_output_records_total",
		"Records of finished connections per output: sent (delivered; for NATS acknowledged), dropped (the output's queue was full, or not delivered within output.flush_timeout at stop), failed (refused by the destination for good).",
		[]string{"output", "result"}, nil)
	queueDesc = prometheus.NewDesc("tcptap_output_queue_bytes",
		"Bytes of records waiting in the output's queue.", []string{"output"}, nil)
	queueLimitDesc = prometheus.NewDesc("tcptap_output_queue_limit_bytes",
		"Size of the output's queue (output.queue_size).", []string{"output"}, nil)
	upDesc = prometheus.NewDesc("tcptap_output_up",
		"1 when the output's file is open or its connection is up, else 0.", []string{"output"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- recordsDesc
	ch <- queueDesc
	ch <- queueLimitDesc
	ch <- upDesc
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Stats() {
		ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(st.Sent), st.Name, "sent")
		ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(st.Dropped), st.Name, "dropped")
		ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(st.Failed), st.Name, "failed")
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(st.QueueBytes), st.Name)
		ch <- prometheus.MustNewConstMetric(queueLimitDesc, prometheus.GaugeValue, float64(st.QueueLimit), st.Name)
		up := 0.0
		if st.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, st.Name)
	}
}
