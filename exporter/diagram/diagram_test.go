package diagram

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// readCapture reads captures with tracing on and every connection cached,
// as tcptap read --cache-mode all --html does.
func readCapture(t *testing.T, files ...string) ([]Conn, map[classifier.Code]uint64) {
	t.Helper()
	quota := flightrec.NewQuota(flightrec.DefaultMemoryQuota)
	tc := cache.New(cache.All, quota)
	counts := map[classifier.Code]uint64{}
	opts := offline.Options{Workers: 1, Classifier: classifier.DefaultConfig(), Quota: quota, Cache: tc,
		Trace: flightrec.Config{Enabled: true, MaxPacketNumber: flightrec.DefaultMaxPacketNumber}}
	if _, err := offline.Run(context.Background(), files, opts, func(r *record.Record) { counts[r.Reason]++ }); err != nil {
		t.Fatal(err)
	}
	var conns []Conn
	for _, e := range tc.Entries(nil) {
		conns = append(conns, Conn{Record: &e.Record, Packets: e.Packets(), Traced: e.Traced, Dropped: e.Overwritten})
	}
	return conns, counts
}

var (
	markRE = regexp.MustCompile(`<line class="([a-z]+)" data-packet="`)
	sample = filepath.Join("..", "..", "testdata", "sample.pcap")
)

// marks counts the diagram's segment marks by class.
func marks(svg string) map[string]int {
	n := map[string]int{}
	for _, m := range markRE.FindAllStringSubmatch(svg, -1) {
		n[m[1]]++
	}
	return n
}

// TestDiagramMarks: every connection of the reason suite's capture and of
// the timer scenarios gets one mark per recorded segment, one
// retransmission mark per retransmission in its record, one probe or
// keepalive mark per probe, and its verdict's evidence.
func TestDiagramMarks(t *testing.T) {
	files := []string{sample}
	for _, s := range []string{"RT-blackhole_tcp4", "RT-orphan_tcp6", "PT-blackhole_tcp4", "KT-blackhole_tcp6", "ST-syn-dropped_tcp4"} {
		files = append(files, filepath.Join("..", "..", "testdata", "scenarios", s+".pcap"))
	}
	seen := map[classifier.Code]int{}
	for _, f := range files {
		conns, _ := readCapture(t, f)
		for _, c := range conns {
			rec := c.Record
			if c.Dropped != 0 {
				t.Fatalf("%s %d: records overwritten; the counts below need them all", f, rec.ID)
			}
			svg := SVG(rec, c.Packets, Options{})
			m := marks(svg)
			total := 0
			for _, k := range m {
				total += k
			}
			if total != len(c.Packets) {
				t.Errorf("%s %s %d: %d segment marks for %d recorded packets", f, rec.Reason, rec.ID, total, len(c.Packets))
			}
			// RST-carrying retransmissions are drawn as RSTs: count those apart.
			rstRetrans := 0
			for i := range c.Packets {
				if IsRetransmission(&c.Packets[i]) && c.Packets[i].Flags.Has(capture.FlagRST) {
					rstRetrans++
				}
			}
			if want := int(rec.Retransmissions.Client+rec.Retransmissions.Server) - rstRetrans; m[ClassRetrans] != want {
				t.Errorf("%s %s %d: %d retransmission marks, the record counts %d", f, rec.Reason, rec.ID, m[ClassRetrans], want)
			}
			if want := int(rec.WindowProbes.Client + rec.WindowProbes.Server); m[ClassProbe] > want {
				t.Errorf("%s %s %d: %d window-probe marks, the record counts %d", f, rec.Reason, rec.ID, m[ClassProbe], want)
			}
			ev := FindEvidence(rec, c.Packets, classifier.DefaultConfig())
			switch rec.Reason {
			case classifier.RetransmitTimeout, classifier.PersistTimeout, classifier.KeepaliveTimeout, classifier.SYNTimeout:
				if len(ev.Times) < 1 || !strings.Contains(svg, "evidence: ") || !strings.Contains(svg, `class="gap"`) && len(ev.Times) > 1 {
					t.Errorf("%s %s %d: no evidence drawn (%+v)", f, rec.Reason, rec.ID, ev)
				}
				if !ev.RSTAfter && !strings.Contains(svg, `class="silence"`) {
					t.Errorf("%s %s %d: the silence after the run is not drawn", f, rec.Reason, rec.ID)
				}
			}
			if rec.Reason == classifier.PersistTimeout && !strings.Contains(svg, `class="zerowin"`) {
				t.Errorf("%s PT %d: no zero-window period shaded", f, rec.ID)
			}
			if rec.Reason == classifier.RetransmitTimeout {
				t.Logf("%s RT %d: %s", filepath.Base(f), rec.ID, ev.Summary())
			}
			seen[rec.Reason]++
		}
	}
	for _, code := range []classifier.Code{classifier.RetransmitTimeout, classifier.PersistTimeout, classifier.KeepaliveTimeout, classifier.SYNTimeout} {
		if seen[code] == 0 {
			t.Errorf("no %s connection in the captures", code)
		}
	}
}

// TestDiagramEscapes: text from packets and records (the interface name
// comes from a pcapng block) is escaped in the SVG and the report.
func TestDiagramEscapes(t *testing.T) {
	conns, counts := readCapture(t, sample)
	evil := `<script>alert(1)</script>"'&`
	for i := range conns {
		conns[i].Record.Interface = evil
		conns[i].Record.ReasonText = evil
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, &Report{Title: evil, Generated: time.Now(), Sources: []string{evil}, Counts: counts, Conns: conns}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script") {
		t.Error("the report holds an unescaped <script> from a record")
	}
	if s := SVG(conns[0].Record, conns[0].Packets, Options{}); strings.Contains(s, "<script") {
		t.Error("the diagram holds an unescaped <script> from a record")
	}
}

func TestEvidenceSummary(t *testing.T) {
	ms := int64(time.Millisecond)
	e := Evidence{Kind: "retransmission", Actor: reassembly.Client, Times: []int64{0, 200 * ms, 600 * ms, 1400 * ms}}
	e.NextDue = 3000 * ms
	want := "client sent 4 retransmissions, gaps 0.2 0.4 0.8 s, then silence: the next was due 1.6 s after the last"
	if got := e.Summary(); got != want {
		t.Errorf("Summary:\n got %s\nwant %s", got, want)
	}
}

// TestDiagramClasses: each kind of segment gets its class, and a zero
// window advertised by the peer is shaded until it opens.
func TestDiagramClasses(t *testing.T) {
	const ms = int64(time.Millisecond)
	pk := func(at int64, from reassembly.Role, seq, ack, n uint32, win uint16, f capture.Flags, a reassembly.Analysis) flightrec.PacketRecord {
		return flightrec.PacketRecord{Timestamp: at * ms, From: from, Seq: seq, Ack: ack, PayloadLen: n, Window: win, Flags: f, Analysis: a}
	}
	const ack = capture.FlagACK
	cl, sv := reassembly.Client, reassembly.Server
	pkts := []flightrec.PacketRecord{
		pk(0, cl, 1000, 0, 0, 100, capture.FlagSYN, 0),
		pk(1, sv, 5000, 1001, 0, 100, capture.FlagSYN|ack, 0),
		pk(2, cl, 1001, 5001, 100, 100, ack, 0),
		pk(3, cl, 1201, 5001, 100, 100, ack, reassembly.LostSegment),
		pk(4, cl, 1101, 5001, 100, 100, ack, reassembly.OutOfOrder),
		pk(5, sv, 5001, 1301, 0, 0, ack, reassembly.ZeroWindow),
		pk(205, cl, 1300, 5001, 0, 100, ack, reassembly.PersistProbe),
		pk(405, sv, 5001, 1301, 0, 100, ack, reassembly.WindowUpdate),
		pk(450, sv, 5001, 1301, 0, 100, ack, reassembly.DupAck),
		pk(500, cl, 1301, 5001, 50, 100, ack, 0),
		pk(900, cl, 1301, 5001, 50, 100, ack, reassembly.Retransmission),
		pk(1000, cl, 1351, 5001, 0, 100, ack|capture.FlagFIN, 0),
		pk(1001, sv, 5001, 1352, 0, 100, ack|capture.FlagRST, 0),
	}
	rec := &record.Record{Reason: classifier.ReceivedReset, Actor: "server"}
	svg := SVG(rec, pkts, Options{})
	want := map[string]int{ClassSYN: 2, ClassSegment: 5, ClassLost: 1, ClassOutOfOrder: 1, ClassProbe: 1, ClassRetrans: 1, ClassFIN: 1, ClassRST: 1}
	got := marks(svg)
	for class, n := range want {
		if got[class] != n {
			t.Errorf("%d %q marks, want %d (all: %v)", got[class], class, n, got)
		}
	}
	if n := strings.Count(svg, `class="mark dupack"`); n != 1 {
		t.Errorf("%d duplicate ACKs marked, want 1", n)
	}
	if n := strings.Count(svg, `<rect class="zerowin"`); n != 1 {
		t.Errorf("%d zero-window periods shaded, want 1", n)
	}
	if !strings.Contains(svg, ">SYN-ACK<") || !strings.Contains(svg, ">FIN<") || !strings.Contains(svg, ">RST<") {
		t.Error("SYN-ACK, FIN or RST not labelled")
	}
	// RR rests on the server's RST: ringed, and said.
	if strings.Count(svg, `class="decisive"`) != 1 || !strings.Contains(svg, "evidence: the server sent the first RST, 1.001 s after the first recorded packet") {
		t.Errorf("the RST the verdict rests on is not marked or said:\n%s", svg)
	}
}

func TestTimeTick(t *testing.T) {
	for _, c := range []struct {
		v, step float64
		want    string
	}{{0, 1, "0"}, {2, 1, "2 s"}, {0.4, 0.2, "0.4 s"}, {0.05, 0.05, "0.05 s"}, {0.0002, 0.0001, "0.2 ms"}, {0.0004, 0.0002, "0.4 ms"}, {10, 5, "10 s"}} {
		if got := timeTick(c.v, c.step); got != c.want {
			t.Errorf("timeTick(%v, %v) = %q, want %q", c.v, c.step, got, c.want)
		}
	}
}
