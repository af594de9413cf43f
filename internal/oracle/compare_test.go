package oracle

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/record"
)

func ep(s string) Endpoint {
	ap := netip.MustParseAddrPort(s)
	return Endpoint{IP: ap.Addr(), Port: ap.Port()}
}

func rec(client, server string, first time.Duration, pkts record.Pair[uint64]) record.Record {
	return record.Record{
		Client:    netip.MustParseAddrPort(client),
		Server:    netip.MustParseAddrPort(server),
		FirstSeen: time.Unix(1000, 0).Add(first),
		Packets:   pkts,
	}
}

// TestCompareOrientation: tshark's client is whoever sent the first SYN
// (or frame); tcptap may have chosen the other side (a mid-stream guess).
// Counts are compared per sending endpoint, whatever the roles.
func TestCompareOrientation(t *testing.T) {
	streams := []Stream{{
		TCPStream: 0, FirstFrame: 1,
		Client: ep("10.0.0.2:80"), Server: ep("10.0.0.1:40000"),
		C2S: Counts{Packets: 5}, S2C: Counts{Packets: 3},
	}}
	recs := []record.Record{rec("10.0.0.1:40000", "10.0.0.2:80", 0, record.Pair[uint64]{Client: 3, Server: 5})}
	groups := Match(streams, recs)
	if len(groups) != 1 || !groups[0].Paired() {
		t.Fatalf("groups %+v", groups)
	}
	diffs, tally := Compare(groups)
	if len(diffs) != 0 {
		t.Fatalf("diffs %v", diffs)
	}
	if tally.Agree["packets"] != 2 || tally.Total["packets"] != 2 {
		t.Errorf("tally %v / %v", tally.Agree, tally.Total)
	}

	recs[0].Packets = record.Pair[uint64]{Client: 3, Server: 4}
	diffs, _ = Compare(Match(streams, recs))
	if len(diffs) != 1 {
		t.Fatalf("diffs %v", diffs)
	}
	d := diffs[0]
	if d.Field != "packets" || !d.Exact || d.Sender != netip.MustParseAddrPort("10.0.0.2:80") ||
		d.Role != "server" || d.Dir != "c2s" || d.Tshark != 5 || d.Tcptap != 4 || d.Stream != "0" {
		t.Errorf("diff %+v", d)
	}
	if !strings.Contains(d.String(), "EXACT packets tshark=5 tcptap=4") {
		t.Errorf("diff string %q", d.String())
	}
}

// TestCompareSplit: when the tools split a 4-tuple differently, the
// per-endpoint sums are compared; when they agree, streams and records
// pair in time order.
func TestCompareSplit(t *testing.T) {
	a, b := "192.0.2.1:5000", "192.0.2.9:443"
	streams := []Stream{
		{TCPStream: 3, FirstFrame: 10, Client: ep(a), Server: ep(b), C2S: Counts{Packets: 7}, S2C: Counts{Packets: 6}},
	}
	recs := []record.Record{
		rec(a, b, time.Second, record.Pair[uint64]{Client: 2, Server: 2}),
		rec(a, b, 0, record.Pair[uint64]{Client: 5, Server: 4}),
	}
	groups := Match(streams, recs)
	if len(groups) != 1 || groups[0].Paired() {
		t.Fatalf("groups %+v", groups)
	}
	if g := groups[0]; g.Records[0].Packets.Client != 5 {
		t.Errorf("records not in time order: %+v", g.Records)
	}
	diffs, _ := Compare(groups)
	if len(diffs) != 0 {
		t.Fatalf("sums differ: %v", diffs)
	}

	// Two streams, two records: paired in order.
	streams = append(streams, Stream{TCPStream: 4, FirstFrame: 20, Client: ep(a), Server: ep(b), C2S: Counts{Packets: 2}, S2C: Counts{Packets: 2}})
	streams[0].C2S.Packets, streams[0].S2C.Packets = 5, 4
	groups = Match(streams, recs)
	if !groups[0].Paired() {
		t.Fatal("not paired")
	}
	if diffs, _ := Compare(groups); len(diffs) != 0 {
		t.Fatalf("pairing out of order: %v", diffs)
	}

	// A stream tcptap has no record for counts as zeros.
	streams = append(streams, Stream{TCPStream: 5, FirstFrame: 30, Client: ep("192.0.2.1:5001"), Server: ep(b), C2S: Counts{Packets: 1}})
	diffs, _ = Compare(Match(streams, recs))
	if len(diffs) != 1 || diffs[0].Tshark != 1 || diffs[0].Tcptap != 0 || diffs[0].Role != "-" {
		t.Fatalf("missing record: %v", diffs)
	}
}

func TestAggregate(t *testing.T) {
	// frame, time, protocols, ip.src, ipv6.src, ip.dst, ipv6.dst, ports,
	// stream, flags, len, window, then the 14 analysis columns.
	row := func(cols ...string) string {
		for len(cols) < colAnalysis+len(analysisFields) {
			cols = append(cols, "")
		}
		return strings.Join(cols, "\t")
	}
	out := strings.Join([]string{
		row("1", "100.000000100", "eth:ethertype:ip:tcp", "10.0.0.2", "", "10.0.0.1", "", "80", "4000", "0", "0x0012", "0", "0"), // SYN-ACK first
		row("2", "100.000500000", "eth:ethertype:ip:tcp", "10.0.0.1", "", "10.0.0.2", "", "4000", "80", "0", "0x0002", "0", "100"),
		row("3", "100.001000000", "eth:ethertype:ip:tcp", "10.0.0.1", "", "10.0.0.2", "", "4000", "80", "0", "0x0018", "10", "100", "1", "", "1"),
		row("4", "100.002000000", "eth:ethertype:ip:tcp", "10.0.0.1", "", "10.0.0.2", "", "4000", "80", "0", "", "77"), // no usable header
		row("5", "100.003000000", "eth:ethertype:ipv6:tcp", "", "fd00::1", "", "fd00::2", "1", "2", "1", "0x0014", "0", "0"),
	}, "\n")
	r, err := Aggregate(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Streams) != 2 || r.TCPStreams != 2 || len(r.FramesWithoutUsableHeader) != 1 || r.FramesWithoutUsableHeader[0] != 4 {
		t.Fatalf("%+v", r)
	}
	s := r.Streams[0]
	if s.Client != ep("10.0.0.1:4000") || s.ClientFrom != ClientFromSYN || s.FirstFrame != 1 || s.FirstTS != 100 || s.LastTS != 100.001 || s.Duration != 0.001 {
		t.Errorf("stream 0: %+v", s)
	}
	if s.C2S.Packets != 2 || s.C2S.SYN != 1 || s.C2S.PayloadBytes != 10 || s.C2S.Retransmission != 1 || s.C2S.SpuriousRetransmission != 1 ||
		s.S2C.Packets != 1 || s.S2C.SYNACK != 1 || s.S2C.ZeroWindowAdvertsRaw != 1 {
		t.Errorf("stream 0 counts: %+v / %+v", s.C2S, s.S2C)
	}
	s = r.Streams[1]
	if s.IPVersion != 6 || s.ClientFrom != ClientFromFirst || s.Client != ep("[fd00::1]:1") || s.Server != ep("[fd00::2]:2") ||
		s.C2S.RST != 1 || s.C2S.ZeroWindowAdvertsRaw != 0 {
		t.Errorf("stream 1: %+v", s)
	}
	if r.Totals.Packets != 4 {
		t.Errorf("totals %+v", r.Totals)
	}
}
