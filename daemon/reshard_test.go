package daemon

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/pipeline"
	"github.com/tcptap/tcptap/reassembly"
)

// reshardWorkers returns n workers of one interface, peers of each other,
// each with its own table.
func reshardWorkers(n int) []*worker {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	var ws []*worker
	for i := range n {
		w := &worker{d: d, index: i, iface: "test0",
			inbox: make(chan handoff, handoffQueue), dec: capture.NewDecoder(capture.DecoderConfig{})}
		w.p = pipeline.New(pipeline.Config{Index: i, Total: n, Table: reassembly.DefaultConfig(), Classifier: classifier.New(classifier.Config{}),
			Interface: func(*reassembly.Conn) string { return "test0" }})
		ws = append(ws, w)
	}
	for _, w := range ws {
		w.peers = ws
	}
	return ws
}

// tunnelled returns a VXLAN-tunnelled segment of connection c (0..255),
// sent by the client when fromClient.
func tunnelled(c int, fromClient bool, ts int64, flags capture.Flags) capture.Packet {
	cl, _ := capture.AddrFrom(netipAddr(10, 0, 0, byte(c)))
	sv, _ := capture.AddrFrom(netipAddr(10, 0, 1, 1))
	p := capture.Packet{Timestamp: ts, Src: cl, Dst: sv, SrcPort: 40000, DstPort: 80, Family: capture.IPv4, Flags: flags, Seq: 1}
	if !fromClient {
		p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
	}
	p.Tunnel.Depth = 1
	p.Tunnel.Layers[0] = capture.TunnelLayer{Type: capture.TunnelVXLAN, ID: 1, HasID: true, Family: capture.IPv4}
	return p
}

// TestReshardOrder: segments of one connection reaching two workers out of
// order (the SYN-ACK first at its owner, the SYN later from the other
// worker) reach the owner's table in capture order, once.
func TestReshardOrder(t *testing.T) {
	ws := reshardWorkers(2)
	syn := tunnelled(1, true, 1000, capture.FlagSYN)
	synAck := tunnelled(1, false, 2000, capture.FlagSYN|capture.FlagACK)
	owner := ws[capture.Shard(capture.FlowHash(&syn), 2)]
	other := ws[1-owner.index]
	owner.handOff(&synAck, nil) // the owner's own socket, first
	other.handOff(&syn, nil)    // later, through the inbox
	owner.drainInbox()
	owner.releaseHeld(0)
	if other.p.Table().Len() != 0 || owner.p.Table().Len() != 1 {
		t.Fatalf("connections: owner %d, other %d", owner.p.Table().Len(), other.p.Table().Len())
	}
	owner.p.Table().EachOpen(func(c *reassembly.Conn) bool {
		if c.Midstream || c.Ends[reassembly.Client].SYNs != 1 || c.Ends[reassembly.Server].SYNACKs != 1 {
			t.Errorf("the SYN did not come first: midstream %v, %+v", c.Midstream, c.Ends)
		}
		return true
	})
	if other.reshard.Sent != 1 || owner.reshard.Received != 1 {
		t.Errorf("stats: other %+v owner %+v", other.reshard, owner.reshard)
	}
	// Held segments wait reorderDelay.
	late := tunnelled(1, true, time.Now().UnixNano(), capture.FlagACK)
	owner.handOff(&late, nil)
	owner.releaseHeld(time.Now().UnixNano())
	if len(owner.held.heap) != 1 {
		t.Errorf("a fresh segment was not held (%d held)", len(owner.held.heap))
	}
}

// BenchmarkReshard is the cost of passing a tunnelled segment through the
// re-sharding path (hand-off to another worker, reorder heap, release)
// against giving it to the table directly; one op is one segment.
func BenchmarkReshard(b *testing.B) {
	var pkts []capture.Packet
	for i := range 256 {
		pkts = append(pkts, tunnelled(i, i%2 == 0, int64(i), capture.FlagACK))
	}
	b.Run("direct", func(b *testing.B) {
		w := reshardWorkers(1)[0]
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p := pkts[i%len(pkts)]
			p.Timestamp = int64(i)
			w.segment(&p, nil)
		}
	})
	b.Run("resharded", func(b *testing.B) {
		ws := reshardWorkers(2)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p := pkts[i%len(pkts)]
			p.Timestamp = int64(i)
			ws[0].handOff(&p, nil)
			if i%64 == 63 {
				for _, w := range ws {
					w.drainInbox()
					w.releaseHeld(0)
				}
			}
		}
	})
}

// TestLogCausesOnce: each cause of undecodable frames is logged once per
// daemon, whichever worker meets it.
func TestLogCausesOnce(t *testing.T) {
	var buf bytes.Buffer
	ws := reshardWorkers(2)
	ws[0].d.log = slog.New(slog.NewTextHandler(&buf, nil))
	lldp := make([]byte, 60)
	lldp[12], lldp[13] = 0x88, 0xcc
	var p capture.Packet
	for i, w := range ws {
		w.dec.Decode(&capture.Frame{Data: lldp, LinkType: capture.LinkTypeEthernet}, &p)
		w.logCauses(uint64(1))
		w.logCauses(uint64(1)) // nothing new
		if i == 1 {
			w.dec.Decode(&capture.Frame{Data: lldp, LinkType: 147}, &p)
			w.logCauses(uint64(2))
		}
	}
	out := buf.String()
	if strings.Count(out, "0x88cc") != 1 || strings.Count(out, "unsupported link type 147") != 1 {
		t.Errorf("log:\n%s", out)
	}
}

func netipAddr(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }
