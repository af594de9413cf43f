package reassembly_test

import (
	"bytes"
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/reassembly"
)

// connCounts returns what connection c's record says by sender role and
// side: its endpoints' Counters, the local side named by nets.
func connCounts(c *reassembly.Conn, nets []netip.Prefix) reassembly.SegmentStats {
	var s reassembly.SegmentStats
	local := reassembly.LocalRoleOf(nets,
		capture.AddrOf(c.Ends[reassembly.Client].Addr, c.Family), capture.AddrOf(c.Ends[reassembly.Server].Addr, c.Family))
	for r := reassembly.Client; r <= reassembly.Server; r++ {
		e := &c.Ends[r]
		side := reassembly.Remote
		if r == local {
			side = reassembly.Local
		}
		s[r][side].Add(&reassembly.SegmentCounts{
			Segments: e.Packets, PayloadBytes: e.PayloadBytes,
			Retransmissions: uint64(e.Retransmissions), FastRetransmissions: uint64(e.FastRetransmissions),
			ZeroWindows: uint64(e.ZeroWindows), WindowProbes: uint64(e.WindowProbes), KeepAlives: uint64(e.KeepAlives),
			DupAcks: uint64(e.DupAcks), RSTs: uint64(e.RSTs), FINs: uint64(e.FINs),
		})
	}
	return s
}

// liveCheck runs packets through a table and checks, every so often and at
// the end, that the live counts equal the counts of the connections that
// ended plus those of the connections still open, and, after the flush,
// the ended ones alone: each segment counted once, open or ended.
func liveCheck(t *testing.T, name string, cfg reassembly.Config, pkts []capture.Packet) (reassembly.SegmentStats, map[reassembly.EndCause]int) {
	t.Helper()
	var ended reassembly.SegmentStats
	causes := map[reassembly.EndCause]int{}
	tab := reassembly.NewTable(cfg, 0, 1, func(c *reassembly.Conn) {
		cc := connCounts(c, cfg.LocalNets)
		ended.Add(&cc)
		causes[c.End]++
	})
	check := func(at string) {
		t.Helper()
		want := ended
		tab.EachOpen(func(c *reassembly.Conn) bool {
			cc := connCounts(c, cfg.LocalNets)
			want.Add(&cc)
			return true
		})
		tab.EachLingering(func(c *reassembly.Conn) {
			cc := connCounts(c, cfg.LocalNets)
			want.Add(&cc)
		})
		if tab.Stats.Segments != want {
			t.Fatalf("%s %s: live counts\n%+v\nended plus open connections\n%+v", name, at, tab.Stats.Segments, want)
		}
	}
	var last int64
	for i := range pkts {
		tab.Packet(&pkts[i])
		last = max(last, pkts[i].Timestamp)
		if i%97 == 0 {
			check("mid-run")
		}
	}
	check("before the flush")
	tab.Flush(last)
	if tab.Len() != 0 || tab.Stats.Segments != ended {
		t.Fatalf("%s after the flush: live counts\n%+v\nended connections\n%+v", name, tab.Stats.Segments, ended)
	}
	var segs uint64
	for r := range ended {
		for d := range ended[r] {
			segs += ended[r][d].Segments
		}
	}
	if segs != uint64(len(pkts)) || tab.Stats.Packets != segs {
		t.Fatalf("%s: %d segments counted, %d applied, %d given", name, segs, tab.Stats.Packets, len(pkts))
	}
	return tab.Stats.Segments, causes
}

func readPackets(t *testing.T, r io.Reader) []capture.Packet {
	t.Helper()
	src, err := capture.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, src)
}

func readFile(t *testing.T, name string) []capture.Packet {
	t.Helper()
	src, err := capture.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return decodeAll(t, src)
}

// decodeAll returns the TCP segments of src.
func decodeAll(t *testing.T, src capture.Source) []capture.Packet {
	t.Helper()
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var out []capture.Packet
	for {
		f, err := src.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var p capture.Packet
		if dec.Decode(&f, &p) {
			out = append(out, p)
		}
	}
}

// prefixOf is the host prefix of a.
func prefixOf(a capture.Addr, f capture.Family) netip.Prefix {
	ip := capture.AddrOf(a, f)
	return netip.PrefixFrom(ip, ip.BitLen())
}

// TestLiveCountsEqualRecords: on the shipped captures of the real stack
// (every way a connection ends) and on the synthetic benchmark capture,
// with the local side named by address or by default, the live counts
// equal the records' sums at every point; with a small table, connections
// evicted and ports reused count once too.
func TestLiveCountsEqualRecords(t *testing.T) {
	names, _ := filepath.Glob("../testdata/scenarios/*.pcap")
	names = append(names, "../testdata/sample.pcap")
	if len(names) < 10 {
		t.Fatalf("only %d captures", len(names))
	}
	var bySide [2]uint64 // segments by side over every capture, local side by address
	for _, n := range names {
		pkts := readFile(t, n)
		if len(pkts) == 0 {
			t.Fatalf("%s: no segments", n)
		}
		cfg := reassembly.DefaultConfig()
		liveCheck(t, filepath.Base(n), cfg, pkts)
		// The first segment's receiver is local: mostly the server.
		cfg.LocalNets = []netip.Prefix{prefixOf(pkts[0].Dst, pkts[0].Family), netip.MustParsePrefix("192.0.2.0/24")}
		s, _ := liveCheck(t, filepath.Base(n)+" (local nets)", cfg, pkts)
		bySide[reassembly.Local] += s.Side(reassembly.Local).Segments
		bySide[reassembly.Remote] += s.Side(reassembly.Remote).Segments
	}
	if bySide[reassembly.Local] == 0 || bySide[reassembly.Remote] == 0 {
		t.Errorf("segments by side %v: want both sides", bySide)
	}

	data, _, err := synth.Bytes(synth.Config{Connections: 2000, Packets: 60_000, Seed: 3, Payload: synth.PayloadSmall})
	if err != nil {
		t.Fatal(err)
	}
	pkts := readPackets(t, bytes.NewReader(data))
	cfg := reassembly.DefaultConfig()
	cfg.MaxConnections = 50
	cfg.LocalNets = []netip.Prefix{prefixOf(pkts[0].Src, pkts[0].Family)}
	s, causes := liveCheck(t, "synth (50 connections at most)", cfg, pkts)
	if causes[reassembly.EndEvicted] == 0 {
		t.Errorf("no connection evicted (%v): the check is weak", causes)
	}
	c2s, s2c := s.Direction(reassembly.Client), s.Direction(reassembly.Server)
	if c2s.Retransmissions+s2c.Retransmissions == 0 || c2s.FINs+s2c.FINs == 0 || c2s.PayloadBytes+s2c.PayloadBytes == 0 {
		t.Errorf("synth: client to server %+v, server to client %+v: want retransmissions, FINs and payload", c2s, s2c)
	}
}
