package offline_test

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/internal/oracle"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// encapFiles are the captures of the encapsulation corpus that exercise
// decapsulation (the corpus's other files are about TCP edge cases tested
// elsewhere), and whether the file shows each segment twice (plain and
// encapsulated), in which case tshark's counts, which include the copies,
// are halved: tcptap counts a copy once (see the duplicates policy).
//
// pending names what a file needs beyond decapsulation; until then the
// file yields no connection and is skipped with that reason.
var encapFiles = []struct {
	name       string
	duplicated bool
	pending    string
}{
	{"arkime__tests__pcap__gre-erspan-vxlan.pcap", false, ""},
	{"arkime__tests__pcap__pppoe.pcap", false, ""},
	{"suricata__tests__bug-4571-01__ipv4_over_ipv4.pcap", false, ""},
	{"suricata__tests__bug-4571-03__ipv6_over_ipv6.pcap", false, ""},
	{"suricata__tests__decode-chdlc-01__hdlc-http_1tx.pcap", false, ""},
	{"suricata__tests__decode-etag-01__input.pcap", false, ""},
	{"suricata__tests__defrag__bug-6887-defrag-ppp-ipv4-tcp-syn__frag-ppp-ip-tcp-syn.pcap", false, ""},
	{"zeek__testing__btest__Traces__cisco-fabric-path.pcap", true, ""},
	{"zeek__testing__btest__Traces__erspan.pcap", false, ""},
	{"zeek__testing__btest__Traces__nflog-http.pcap", false, ""},
	{"zeek__testing__btest__Traces__pbb.pcap", false, ""},
	{"zeek__testing__btest__Traces__snap-tcp.pcap", false, ""},
	{"zeek__testing__btest__Traces__tunnels__4in6.pcap", false, ""},
	{"zeek__testing__btest__Traces__tunnels__geneve-many-options.pcap", false, ""},
	{"zeek__testing__btest__Traces__tunnels__gre-sample.pcap", false, ""},
	{"zeek__testing__btest__Traces__tunnels__gtp__gtp_ext_header.pcap", false, ""},
	{"zeek__testing__btest__Traces__tunnels__tunnel-direct-bypass.pcap", false, ""},
	{"zeek__testing__btest__Traces__tunnels__vxlan-encapsulated-http.pcap", false, ""},
	{"zeek__testing__btest__Traces__vntag_vlan_sandwich_clean.pcap", false, ""}, // its only segment's TCP header is cut by the snap length (22 of 40 bytes): decoded from the fixed header
}

// encapKnown lists the differences from tshark on encapFiles, as
// tsharkKnown does for the peer corpus.
var encapKnown = []struct{ file, stream, field, reason string }{}

// TestEncapsulationOracle compares tcptap with tshark on every
// decapsulation capture: per inner 4-tuple and direction, packets, payload
// bytes and SYN/FIN/RST exactly, the analysis counts unless encapKnown
// says why not.
func TestEncapsulationOracle(t *testing.T) {
	dir := peers.EncapDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	used := make([]bool, len(encapKnown))
	all := oracle.NewTally()
	var streams, records int
	for _, f := range encapFiles {
		name := strings.TrimSuffix(f.name, ".pcap")
		t.Run(name, func(t *testing.T) {
			want, err := oracle.Load(filepath.Join(dir, "expected", "tshark", f.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if f.duplicated {
				for i := range want.Streams {
					halve(&want.Streams[i].C2S)
					halve(&want.Streams[i].S2C)
				}
			}
			recs, err := oracleRunErr(ctx, filepath.Join(dir, want.Pcap))
			if err != nil {
				t.Fatalf("tcptap: %v", err)
			}
			if len(recs) == 0 && f.pending != "" {
				t.Skip(f.pending)
			}
			if len(recs) == 0 {
				t.Fatalf("no connection decoded; tshark has %d streams", len(want.Streams))
			}
			groups := oracle.Match(want.Streams, recs)
			diffs, tally := oracle.Compare(groups)
			all.Add(tally)
			streams += len(want.Streams)
			records += len(recs)
			diffs = append(diffs, oracle.SplitDiffs(groups)...)
			for _, d := range diffs {
				if reason, ok := encapExplain(f.name, d, used); ok {
					t.Logf("known: %s (%s)", tsharkDiffString(d), reason)
					continue
				}
				t.Errorf("unexplained difference: %s", tsharkDiffString(d))
			}
		})
	}
	for i, k := range encapKnown {
		if !used[i] {
			t.Errorf("encapKnown row {%s %s %s} matches no difference any more (fixed?): delete it", k.file, k.stream, k.field)
		}
	}
	t.Logf("%d files, %d tshark streams, %d tcptap records; agreement with tshark 4.0.17: %s",
		len(encapFiles), streams, records, all.Summary())
}

func encapExplain(file string, d oracle.Diff, used []bool) (string, bool) {
	for i, k := range encapKnown {
		if k.file != file || (k.stream != d.Stream && k.stream != d.Tuple.String()) {
			continue
		}
		if k.field == d.Field || k.field == "analysis" && !d.Exact && d.Field != "split" {
			used[i] = true
			return k.reason, true
		}
	}
	return "", false
}

// halve halves every count of c: tshark counted each segment twice.
func halve(c *oracle.Counts) {
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.CanUint() {
			f.SetUint(f.Uint() / 2)
		}
	}
}

// TestVXLANSameAnswers: the synthetic capture wrapped in VXLAN, as a
// cloud's traffic mirroring delivers it, gives every connection the record
// the plain capture gives, but for the tunnel it names.
func TestVXLANSameAnswers(t *testing.T) {
	cfg := synth.Config{Connections: 300, Packets: 15000, Seed: 7, Payload: synth.PayloadSmall}
	records := func(vxlan bool) []record.Record {
		c := cfg
		c.VXLAN = vxlan
		data, _, err := synth.Bytes(c)
		if err != nil {
			t.Fatal(err)
		}
		src, err := capture.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var recs []record.Record
		opts := offline.Options{Workers: 2, Table: reassembly.DefaultConfig(), Classifier: classifier.DefaultConfig()}
		if _, err := offline.RunSources(context.Background(), []offline.Input{offline.NewInput("synth.pcap", src)}, opts,
			func(r *record.Record) { recs = append(recs, *r) }); err != nil {
			t.Fatal(err)
		}
		exporter.SortRecords(recs)
		return recs
	}
	plain, wrapped := records(false), records(true)
	if len(plain) != len(wrapped) || len(plain) < 290 {
		t.Fatalf("%d records plain, %d wrapped", len(plain), len(wrapped))
	}
	for i := range plain {
		w := wrapped[i]
		if len(w.Tunnel) != 1 || w.Tunnel[0].Type != "vxlan" || w.Tunnel[0].IDName != "vni" {
			t.Fatalf("record %d: tunnel %+v", i, w.Tunnel)
		}
		w.Tunnel = nil
		p, wj := plain[i].AppendJSON(nil), w.AppendJSON(nil)
		if !bytes.Equal(p, wj) {
			t.Fatalf("record %d differs:\n plain   %s\n wrapped %s", i, p, wj)
		}
	}
	t.Logf("%d connections: the same records plain and in VXLAN", len(plain))
}
