package metrics

import (
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

func closedRecord(reason classifier.Code, port uint16) *record.Record {
	r := &record.Record{
		Reason: reason,
		Client: netip.MustParseAddrPort("10.0.0.1:40000"),
		Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), port),
	}
	r.Packets = record.Pair[uint64]{Client: 10, Server: 8}
	r.Bytes = record.Pair[uint64]{Client: 1000, Server: 200}
	r.Retransmissions = record.Pair[uint32]{Client: 5}
	r.FastRetransmissions = record.Pair[uint32]{Client: 1}
	r.ZeroWindows = record.Pair[uint32]{Server: 2}
	r.WindowProbes = record.Pair[uint32]{Client: 3}
	r.KeepAlives = record.Pair[uint32]{Client: 4}
	r.DupAcks = record.Pair[uint32]{Server: 6}
	r.Resets = record.Pair[uint32]{Server: 1}
	r.FINs = record.Pair[uint32]{Client: 1, Server: 1}
	r.RTTms.Handshake = 0.5                                   // 500 µs
	r.RTTms.Data = record.Pair[float64]{Client: 2, Server: 0} // 2 ms; no server samples
	return r
}

// liveSegments are a table's live segment counts of n connections like
// record's (client local).
func liveSegments(n uint64) reassembly.SegmentStats {
	var s reassembly.SegmentStats
	s[reassembly.Client][reassembly.Local] = reassembly.SegmentCounts{Segments: 10 * n, PayloadBytes: 1000 * n,
		Retransmissions: 5 * n, FastRetransmissions: n, WindowProbes: 3 * n, KeepAlives: 4 * n, FINs: n}
	s[reassembly.Server][reassembly.Remote] = reassembly.SegmentCounts{Segments: 8 * n, PayloadBytes: 200 * n,
		ZeroWindows: 2 * n, DupAcks: 6 * n, RSTs: n, FINs: n}
	return s
}

// fixture is a snapshot of two workers on two interfaces.
func fixture() *Snapshot {
	var a, b Counters
	ports := []uint16{443}
	a.Add(closedRecord(classifier.RetransmitTimeout, 443), ports)
	a.Add(closedRecord(classifier.AppNormalClose, 80), ports)
	b.Add(closedRecord(classifier.RetransmitTimeout, 22), ports)
	return &Snapshot{
		Workers: []Worker{
			{Interface: "eth1", Frames: 100, Active: 3, HasKernel: true, QueueDepth: 0,
				Kernel: capture.LiveStats{Packets: 110, Drops: 10, QueueFreezes: 1},
				Decode: capture.DecodeStats{TCP: 90, NonTCP: 5, TruncatedIP: 2, Fragments: 4, FragmentsDone: 1, FragmentsDropped: 1, IPv6Fragments: 2, IPv6FragmentsDone: 1, IPv6FragmentsDropped: 0},
				Table: reassembly.TableStats{Packets: 90, Opened: 7, Evicted: 1, ReusedPorts: 2, VLANCopies: 4, Trace: flightrec.Stats{Traced: 5, NotTracedQuota: 1, NotTracedACL: 2, Records: 50, Overwritten: 3},
					Segments: liveSegments(2)},
				Conns: a},
			{Interface: "eth2", Frames: 50, Active: 1, HasKernel: true,
				Kernel: capture.LiveStats{Packets: 50, LinkDowns: 1},
				Table:  reassembly.TableStats{Packets: 50, Opened: 2, Segments: liveSegments(1)},
				Conns:  b},
		},
		TraceEnabled: true,
		QuotaLimit:   1 << 20, QuotaUsed: 4096, QuotaPeak: 8192,
		HasCache: true,
		Cache:    cache.Stats{Cached: 2, ByReason: map[classifier.Code]uint64{classifier.RetransmitTimeout: 2}, RecordsCached: 20, NotCachedQuota: 1, Skipped: 1},
		CacheLen: 2,
	}
}

func newExporter() *Exporter {
	return New(func() *Snapshot { return fixture() }, Options{Version: "1.2.3", Revision: "abc", PortLabels: []uint16{443}})
}

func closedLines() string {
	var b strings.Builder
	for _, c := range classifier.Codes {
		n := map[classifier.Code]int{classifier.RetransmitTimeout: 2, classifier.AppNormalClose: 1}[c]
		b.WriteString("tcptap_connections_closed_total{reason=\"" + string(c) + "\"} " + strconv.Itoa(n) + "\n")
	}
	return b.String()
}

func TestCollectAndCompare(t *testing.T) {
	e := newExporter()
	cases := []struct {
		name, want string
	}{
		{"tcptap_connections_closed_total", `# HELP tcptap_connections_closed_total TCP connections that ended, by reason code (RF, ST, RT, PT, KT, AA, SR, RR, AN, PN, IT, OP, BD; see docs/reasons.md).
# TYPE tcptap_connections_closed_total counter
` + closedLines()},
		{"tcptap_connections_opened_total", "# HELP tcptap_connections_opened_total TCP connections the workers started tracking.\n# TYPE tcptap_connections_opened_total counter\ntcptap_connections_opened_total 9\n"},
		{"tcptap_connections_tracked", "# HELP tcptap_connections_tracked TCP connections currently held in the connection tables.\n# TYPE tcptap_connections_tracked gauge\ntcptap_connections_tracked 4\n"},
		{"tcptap_connections_evicted_total", "# HELP tcptap_connections_evicted_total TCP connections let go early because a connection table was full.\n# TYPE tcptap_connections_evicted_total counter\ntcptap_connections_evicted_total 1\n"},
		{"tcptap_connections_port_reused_total", "# HELP tcptap_connections_port_reused_total TCP connections ended by a new SYN on their 4-tuple.\n# TYPE tcptap_connections_port_reused_total counter\ntcptap_connections_port_reused_total 2\n"},
		{"tcptap_tcp_segments_processed_total", "# HELP tcptap_tcp_segments_processed_total TCP segments applied to the connection tables.\n# TYPE tcptap_tcp_segments_processed_total counter\ntcptap_tcp_segments_processed_total 140\n"},
		{"tcptap_capture_kernel_drops_total", "# HELP tcptap_capture_kernel_drops_total Frames the kernel dropped because a capture ring was full: workers too slow or ring too small (capture.ring_size).\n# TYPE tcptap_capture_kernel_drops_total counter\ntcptap_capture_kernel_drops_total{interface=\"eth1\"} 10\ntcptap_capture_kernel_drops_total{interface=\"eth2\"} 0\n"},
		{"tcptap_build_info", "# HELP tcptap_build_info A metric with a constant '1' value labeled by the version, revision and Go version tcptap was built from.\n# TYPE tcptap_build_info gauge\ntcptap_build_info{goversion=\"" + goVersion() + "\",revision=\"abc\",version=\"1.2.3\"} 1\n"},
	}
	for _, c := range cases {
		if err := testutil.CollectAndCompare(e, strings.NewReader(c.want), c.name); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func goVersion() string {
	return newBuildInfoCollector(Options{}).(*buildInfoCollector).goversion
}

// values gathers every sample as "name{labels}" -> value (histograms: the
// sample count), to check each family's numbers.
func values(t *testing.T, c prometheus.Collector) (map[string]float64, map[string]*dto.MetricFamily) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
		for _, m := range mf.Metric {
			key := mf.GetName()
			if len(m.Label) > 0 {
				var ls []string
				for _, l := range m.Label {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out, fams
}

func TestEveryFamily(t *testing.T) {
	got, fams := values(t, newExporter())
	want := map[string]float64{
		"tcptap_service_connections_closed_total{reason=RT,server_port=443}":  1,
		"tcptap_service_connections_closed_total{reason=AN,server_port=443}":  0,
		"tcptap_segments_total{direction=client_to_server}":                   30,
		"tcptap_segments_total{direction=server_to_client}":                   24,
		"tcptap_payload_bytes_total{direction=client_to_server}":              3000,
		"tcptap_retransmissions_total{direction=client_to_server}":            15,
		"tcptap_fast_retransmissions_total{direction=client_to_server}":       3,
		"tcptap_zero_window_advertisements_total{direction=server_to_client}": 6,
		"tcptap_window_probes_total{direction=client_to_server}":              9,
		"tcptap_keepalives_total{direction=client_to_server}":                 12,
		"tcptap_duplicate_acks_total{direction=server_to_client}":             18,
		"tcptap_resets_total{direction=server_to_client}":                     3,
		"tcptap_fins_total{direction=client_to_server}":                       3,
		"tcptap_handshake_rtt_seconds":                                        3,
		"tcptap_data_rtt_seconds":                                             3,
		"tcptap_capture_frames_total{interface=eth1}":                         100,
		"tcptap_capture_kernel_packets_total{interface=eth1}":                 110,
		"tcptap_capture_kernel_queue_freezes_total{interface=eth1}":           1,
		"tcptap_capture_link_downs_total{interface=eth2}":                     1,
		"tcptap_workers{interface=eth1}":                                      1,
		"tcptap_worker_queue_depth{interface=eth1}":                           0,
		"tcptap_decode_errors_total{cause=truncated_ip}":                      2,
		"tcptap_decode_ignored_frames_total{kind=non_tcp}":                    5,
		"tcptap_vlan_copies_total":                                            4,
		"tcptap_ip_fragments_total{family=ipv4}":                              4,
		"tcptap_ip_fragments_total{family=ipv6}":                              2,
		"tcptap_ip_fragments_reassembled_total{family=ipv4}":                  1,
		"tcptap_ip_fragments_reassembled_total{family=ipv6}":                  1,
		"tcptap_ip_fragments_dropped_total{family=ipv4}":                      1,
		"tcptap_ip_fragments_dropped_total{family=ipv6}":                      0,
		"tcptap_trace_enabled":                                                1,
		"tcptap_trace_memory_quota_bytes":                                     1 << 20,
		"tcptap_trace_memory_used_bytes":                                      4096,
		"tcptap_trace_memory_peak_bytes":                                      8192,
		"tcptap_connections_traced_total":                                     5,
		"tcptap_connections_not_traced_total{cause=quota}":                    1,
		"tcptap_connections_not_traced_total{cause=filter}":                   2,
		"tcptap_connections_not_traced_total{cause=old}":                      0,
		"tcptap_trace_records_total":                                          50,
		"tcptap_trace_records_overwritten_total":                              3,
		"tcptap_cache_connections{reason=RT}":                                 2,
		"tcptap_cache_connections{reason=PN}":                                 0,
		"tcptap_cache_records":                                                20,
		"tcptap_cache_not_cached_quota_total":                                 1,
		"tcptap_cache_skipped_total":                                          1,
		"tcptap_cache_resets_total":                                           0,
		"tcptap_cache_mode{mode=abnormal-close}":                              1,
		"tcptap_cache_mode{mode=all}":                                         0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Every family has a test above or in TestCollectAndCompare.
	for name := range fams {
		found := false
		for k := range want {
			if k == name || strings.HasPrefix(k, name+"{") {
				found = true
			}
		}
		switch name {
		case "tcptap_connections_closed_total", "tcptap_connections_opened_total", "tcptap_connections_tracked",
			"tcptap_connections_evicted_total", "tcptap_connections_port_reused_total", "tcptap_tcp_segments_processed_total",
			"tcptap_capture_kernel_drops_total", "tcptap_build_info":
			found = true
		}
		if !found {
			t.Errorf("family %s is not checked", name)
		}
	}
}

func TestLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(newExporter())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestHistogram(t *testing.T) {
	// Boundaries: 2^(i/4) belongs to bucket i; just above it to i+1.
	for _, i := range []int{-79, -41, -40, -1, 0, 1, 3, 4, 39, 40} {
		b := math.Pow(2, float64(i)/4)
		if g := bucketIndex(b); g != i && math.Abs(b-math.Round(b)) == 0 {
			t.Errorf("bucketIndex(2^(%d/4)=%g) = %d", i, b, g)
		}
		if g := bucketIndex(b * 1.0001); g != i+1 {
			t.Errorf("bucketIndex(just above 2^(%d/4)) = %d, want %d", i, g, i+1)
		}
	}
	var h Histogram
	h.Observe(1e-9)   // zero bucket
	h.Observe(0.0005) // 500 µs
	h.Observe(0.001)
	h.Observe(5000) // clamped
	m := &histMetric{desc: desc("x_seconds", "x"), h: h}
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	hg := out.Histogram
	if hg.GetSampleCount() != 4 || hg.GetZeroCount() != 1 || hg.GetSchema() != 2 {
		t.Fatalf("histogram %v", hg)
	}
	// Classic: le=2^-10 (0.000977) holds 1e-9 and 0.0005; le=2^-9 adds 0.001.
	for _, b := range hg.Bucket {
		switch b.GetUpperBound() {
		case math.Ldexp(1, -10):
			if b.GetCumulativeCount() != 2 {
				t.Errorf("le=2^-10: %d", b.GetCumulativeCount())
			}
		case math.Ldexp(1, -9):
			if b.GetCumulativeCount() != 3 {
				t.Errorf("le=2^-9: %d", b.GetCumulativeCount())
			}
		case math.Ldexp(1, 10):
			if b.GetCumulativeCount() != 4 {
				t.Errorf("le=2^10: %d", b.GetCumulativeCount())
			}
		}
	}
	var sum int64
	var n int64
	for _, d := range hg.PositiveDelta {
		n += d
		sum += n
	}
	if sum != 3 {
		t.Errorf("native buckets hold %d, want 3", sum)
	}
}

// TestNoAllocation: counting an ended connection allocates nothing, and the
// per-packet path does not touch the counters at all.
func TestNoAllocation(t *testing.T) {
	var c Counters
	r := closedRecord(classifier.RetransmitTimeout, 443)
	ports := []uint16{80, 443}
	if n := testing.AllocsPerRun(1000, func() { c.Add(r, ports) }); n != 0 {
		t.Errorf("Counters.Add allocates %v times", n)
	}
}

func BenchmarkCountersAdd(b *testing.B) {
	var c Counters
	r := closedRecord(classifier.RetransmitTimeout, 443)
	b.ReportAllocs()
	for b.Loop() {
		c.Add(r, nil)
	}
}

func TestWriteTextfile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tcptap.prom")
	if err := WriteTextfile(p, fixture(), Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`tcptap_connections_closed_total{reason="RT"} 2`, `tcptap_handshake_rtt_seconds_bucket{le="+Inf"} 3`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("textfile lacks %s", s)
		}
	}
}

// TestCountersOutcomes: TCP-MIB's failed attempts only when the local side
// opened, aborted connections by reason.
func TestCountersOutcomes(t *testing.T) {
	var c Counters
	c.Add(closedRecord(classifier.SentReset, 80), nil)

	attempt := func(reason classifier.Code, local string, syns record.Pair[uint32], midstream bool) uint64 {
		var c Counters
		r := closedRecord(reason, 80)
		r.Local, r.SYNs, r.Midstream = local, syns, midstream
		c.Add(r, nil)
		return c.AttemptFails
	}
	for _, x := range []struct {
		reason    classifier.Code
		local     string
		syns      record.Pair[uint32]
		midstream bool
		want      uint64
	}{
		{classifier.Refused, "client", record.Pair[uint32]{Client: 1}, false, 1},               // active open refused
		{classifier.Refused, "server", record.Pair[uint32]{Client: 1}, false, 0},               // closed local port: no passive open
		{classifier.SYNTimeout, "server", record.Pair[uint32]{Client: 3, Server: 2}, false, 1}, // SYN-RCVD timed out
		{classifier.SYNTimeout, "server", record.Pair[uint32]{Client: 3}, false, 0},            // the local server never answered
		{classifier.SYNTimeout, "client", record.Pair[uint32]{Client: 1}, true, 0},
		{classifier.SentReset, "client", record.Pair[uint32]{Client: 1}, false, 0},
	} {
		if got := attempt(x.reason, x.local, x.syns, x.midstream); got != x.want {
			t.Errorf("%s local %s SYNs %+v midstream %v: %d attempt fails, want %d", x.reason, x.local, x.syns, x.midstream, got, x.want)
		}
	}

	var r Counters
	for _, code := range classifier.Codes {
		r.Add(closedRecord(code, 80), nil)
	}
	if r.EstabResets != 6 {
		t.Errorf("one close of each reason: %d established resets, want 6 (AA SR RR RT PT KT)", r.EstabResets)
	}
	var m Counters
	m.Merge(&r)
	m.Merge(&c)
	if m.EstabResets != 7 || m.Closed[ReasonIndex(classifier.SentReset)] != 2 || m.Closed[ReasonIndex(classifier.Refused)] != 1 {
		t.Errorf("merged: %d established resets, closed %v", m.EstabResets, m.Closed)
	}
}
