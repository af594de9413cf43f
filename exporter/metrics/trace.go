package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/classifier"
)

func init() { registerCollector("trace", newTraceCollector) }

// traceCollector: the flight recorder's memory and work, and the trace
// cache of closed connections.
type traceCollector struct {
	enabled, quota, used, peak, traced, notTraced, records, overwritten *prometheus.Desc
	cached, cachedRecords, notCached, skipped, resets                   *prometheus.Desc
}

func newTraceCollector(Options) collector {
	return &traceCollector{
		enabled:       desc("trace_enabled", "1 when the flight recorder is enabled (tcptap trace enable)."),
		quota:         desc("trace_memory_quota_bytes", "Trace memory quota (trace.memory_quota)."),
		used:          desc("trace_memory_used_bytes", "Trace memory in use by flight recorders and the cache."),
		peak:          desc("trace_memory_peak_bytes", "Highest trace memory in use since start."),
		traced:        desc("connections_traced_total", "Connections given a flight recorder."),
		notTraced:     desc("connections_not_traced_total", "Connections not traced while tracing was enabled, by cause (quota: memory quota exhausted; filter: the trace ACL; old: only-new-connection and the handshake was not seen).", "cause"),
		records:       desc("trace_records_total", "Packet records written to flight recorders."),
		overwritten:   desc("trace_records_overwritten_total", "Packet records overwritten because a connection's ring was full (trace.max_packet_number)."),
		cached:        desc("cache_connections", "Closed connections held in the trace cache, by reason code.", "reason"),
		cachedRecords: desc("cache_records", "Packet records held in the trace cache."),
		notCached:     desc("cache_not_cached_quota_total", "Closed connections the cache mode keeps that the memory quota could not hold (since the last cache reset)."),
		skipped:       desc("cache_skipped_total", "Closed connections the cache mode does not keep (since the last cache reset)."),
		resets:        desc("cache_resets_total", "Times the cache was reset (tcptap reset cache)."),
	}
}

func (c *traceCollector) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.enabled, c.quota, c.used, c.peak, c.traced, c.notTraced, c.records, c.overwritten,
		c.cached, c.cachedRecords, c.notCached, c.skipped, c.resets} {
		ch <- d
	}
}

func (c *traceCollector) update(s *Snapshot, ch chan<- prometheus.Metric) {
	var traced, quota, acl, old, recs, over uint64
	for i := range s.Workers {
		t := &s.Workers[i].Table.Trace
		traced += t.Traced
		quota += t.NotTracedQuota
		acl += t.NotTracedACL
		old += t.NotTracedOld
		recs += t.Records
		over += t.Overwritten
	}
	en := 0.0
	if s.TraceEnabled {
		en = 1
	}
	gauge(ch, c.enabled, en)
	gauge(ch, c.quota, float64(s.QuotaLimit))
	gauge(ch, c.used, float64(s.QuotaUsed))
	gauge(ch, c.peak, float64(s.QuotaPeak))
	counter(ch, c.traced, traced)
	counter(ch, c.notTraced, quota, "quota")
	counter(ch, c.notTraced, acl, "filter")
	counter(ch, c.notTraced, old, "old")
	counter(ch, c.records, recs)
	counter(ch, c.overwritten, over)
	if !s.HasCache {
		return
	}
	for _, code := range classifier.Codes {
		gauge(ch, c.cached, float64(s.Cache.ByReason[code]), string(code))
	}
	gauge(ch, c.cachedRecords, float64(s.Cache.RecordsCached))
	counter(ch, c.notCached, s.Cache.NotCachedQuota)
	counter(ch, c.skipped, s.Cache.Skipped)
	counter(ch, c.resets, s.Cache.Resets)
}
