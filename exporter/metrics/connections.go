package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/reassembly"
)

func init() { registerCollector("connections", newConnectionsCollector) }

// connectionsCollector: connections opened, closed by reason (at their
// end), tracked, evicted, and the per-direction segment counters (as the
// segments are seen).
type connectionsCollector struct {
	ports []uint16

	opened, closed, service, tracked, evicted, reused, segmentsSeen *prometheus.Desc
	vlanCopies                                                      *prometheus.Desc
	dir                                                             []dirFamily
}

type dirFamily struct {
	d   *prometheus.Desc
	get func(c *reassembly.SegmentCounts) uint64
}

func newConnectionsCollector(o Options) collector {
	dirDesc := func(name, help string) *prometheus.Desc {
		return desc(name, help+" Counted when the segment is seen, open connections included.", "direction")
	}
	type sc = reassembly.SegmentCounts
	return &connectionsCollector{
		ports:        o.PortLabels,
		opened:       desc("connections_opened_total", "TCP connections the workers started tracking."),
		closed:       desc("connections_closed_total", "TCP connections that ended, by reason code ("+classifier.CodeList()+"; see docs/reasons.md).", "reason"),
		service:      desc("service_connections_closed_total", "TCP connections that ended, by server port (only the ports of exporter.port_labels) and reason code.", "server_port", "reason"),
		tracked:      desc("connections_tracked", "TCP connections currently held in the connection tables."),
		evicted:      desc("connections_evicted_total", "TCP connections let go early because a connection table was full."),
		reused:       desc("connections_port_reused_total", "TCP connections ended by a new SYN on their 4-tuple."),
		segmentsSeen: desc("tcp_segments_processed_total", "TCP segments applied to the connection tables."),
		vlanCopies:   desc("vlan_copies_total", "TCP segments set aside as copies: their direction was seen on other VLAN tags before (trace.vlan_policy auto)."),
		dir: []dirFamily{
			{dirDesc("segments_total", "TCP segments by direction."), func(c *sc) uint64 { return c.Segments }},
			{dirDesc("payload_bytes_total", "TCP payload bytes by direction."), func(c *sc) uint64 { return c.PayloadBytes }},
			{dirDesc("retransmissions_total", "TCP retransmissions by direction."), func(c *sc) uint64 { return c.Retransmissions }},
			{dirDesc("fast_retransmissions_total", "TCP fast retransmissions by direction."), func(c *sc) uint64 { return c.FastRetransmissions }},
			{dirDesc("zero_window_advertisements_total", "TCP zero-window advertisements by direction (sender of the zero window)."), func(c *sc) uint64 { return c.ZeroWindows }},
			{dirDesc("window_probes_total", "TCP persist (zero-window) probes by direction."), func(c *sc) uint64 { return c.WindowProbes }},
			{dirDesc("keepalives_total", "TCP keepalive probes by direction."), func(c *sc) uint64 { return c.KeepAlives }},
			{dirDesc("duplicate_acks_total", "TCP duplicate ACKs by direction."), func(c *sc) uint64 { return c.DupAcks }},
			{dirDesc("resets_total", "TCP RST segments by direction."), func(c *sc) uint64 { return c.RSTs }},
			{dirDesc("fins_total", "TCP FIN segments by direction."), func(c *sc) uint64 { return c.FINs }},
		},
	}
}

func (c *connectionsCollector) describe(ch chan<- *prometheus.Desc) {
	ch <- c.opened
	ch <- c.closed
	ch <- c.tracked
	ch <- c.evicted
	ch <- c.reused
	ch <- c.segmentsSeen
	ch <- c.vlanCopies
	ch <- c.service // also when no port is listed yet: a reload may list some
	for _, f := range c.dir {
		ch <- f.d
	}
}

func (c *connectionsCollector) update(s *Snapshot, ch chan<- prometheus.Metric) {
	var sum Counters
	var segments reassembly.SegmentStats
	var opened, evicted, reused, segs, copies uint64
	var active int
	for i := range s.Workers {
		w := &s.Workers[i]
		sum.Merge(&w.Conns)
		segments.Add(&w.Table.Segments)
		opened += w.Table.Opened
		evicted += w.Table.Evicted
		reused += w.Table.ReusedPorts
		segs += w.Table.Packets
		copies += w.Table.VLANCopies
		active += w.Active
	}
	counter(ch, c.opened, opened)
	counter(ch, c.evicted, evicted)
	counter(ch, c.reused, reused)
	counter(ch, c.segmentsSeen, segs)
	counter(ch, c.vlanCopies, copies)
	gauge(ch, c.tracked, float64(active))
	// Every code, present at 0 from the start.
	for _, code := range classifier.Codes {
		counter(ch, c.closed, sum.Closed[ReasonIndex(code)], string(code))
	}
	ports := c.ports
	if s.PortLabels != nil {
		ports = s.PortLabels // as the workers count them now (a reload may change them)
	}
	for si, p := range ports {
		for _, code := range classifier.Codes {
			counter(ch, c.service, sum.Services[si][ReasonIndex(code)], portLabel(p), string(code))
		}
	}
	byDir := [2]reassembly.SegmentCounts{segments.Direction(reassembly.Client), segments.Direction(reassembly.Server)}
	for _, f := range c.dir {
		for d, name := range directionNames {
			counter(ch, f.d, f.get(&byDir[d]), name)
		}
	}
}
