package pipeline

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/reassembly"
)

// segment builds a TCP segment from src to dst with the given flags.
func segment(src, dst string, flags capture.Flags, ts int64) *capture.Packet {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	p := &capture.Packet{Timestamp: ts, SrcPort: s.Port(), DstPort: d.Port(), Flags: flags}
	p.Src, p.Family = capture.AddrFrom(s.Addr())
	p.Dst, _ = capture.AddrFrom(d.Addr())
	return p
}

const (
	syn    = capture.FlagSYN
	synAck = capture.FlagSYN | capture.FlagACK
)

func TestHandshakeOpens(t *testing.T) {
	h := newHandshakes([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")})
	// A local client opens: active.
	h.segment(segment("10.0.0.1:40000", "192.0.2.1:80", syn, 1), true)
	h.segment(segment("192.0.2.1:80", "10.0.0.1:40000", synAck, 2), false)
	// A remote client to a local server, the SYN-ACK retransmitted: one
	// passive open, one listener.
	in := segment("192.0.2.9:50000", "10.0.0.2:443", syn, 3)
	h.segment(in, true)
	h.segment(segment("10.0.0.2:443", "192.0.2.9:50000", synAck, 4), false)
	h.segment(segment("10.0.0.2:443", "192.0.2.9:50000", synAck, 5), false)
	// A SYN retransmitted (no new connection) counts nothing.
	h.segment(segment("10.0.0.1:40000", "192.0.2.1:80", syn, 6), false)
	// Only the SYN-ACK of a local server was captured: passive.
	h.segment(segment("[fd00::2]:22", "[2001:db8::1]:60000", synAck, 7), true)
	// Both ends local: the client's side; neither local: the client's.
	h.segment(segment("10.0.0.3:41000", "10.0.0.2:443", syn, 8), true)
	h.segment(segment("10.0.0.2:443", "10.0.0.3:41000", synAck, 9), false)
	h.segment(segment("192.0.2.5:1", "192.0.2.6:2", syn, 10), true)
	// A remote SYN refused: awaiting until the connection ends.
	refused := segment("192.0.2.9:50001", "10.0.0.2:25", syn, 11)
	h.segment(refused, true)

	if h.active != 3 || h.passive != 2 {
		t.Errorf("active %d passive %d, want 3 and 2", h.active, h.passive)
	}
	if len(h.awaiting) != 1 {
		t.Errorf("%d connections awaiting a SYN-ACK, want 1", len(h.awaiting))
	}
	c := &reassembly.Conn{Key: reassembly.KeyOf(refused)}
	h.ended(c)
	if len(h.awaiting) != 0 {
		t.Errorf("ended connection still awaiting")
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:443"), netip.MustParseAddrPort("[fd00::2]:22")}
	if got := Listeners([]*Worker{{opens: h}}); !slices.Equal(got, want) {
		t.Errorf("listeners %v, want %v", got, want)
	}
}

func TestHandshakeWithoutLocalNets(t *testing.T) {
	h := newHandshakes(nil)
	h.segment(segment("192.0.2.9:50000", "10.0.0.2:443", syn, 1), true)
	h.segment(segment("10.0.0.2:443", "192.0.2.9:50000", synAck, 2), false)
	h.segment(segment("10.0.0.2:443", "192.0.2.7:50000", synAck, 3), true)
	if h.active != 1 || h.passive != 0 || len(h.awaiting) != 0 || len(h.listeners.nodes) != 0 {
		t.Errorf("active %d passive %d awaiting %d listeners %d: every connection is its client's", h.active, h.passive, len(h.awaiting), len(h.listeners.nodes))
	}
}

// TestHandshakeNoAllocation: retransmitted handshake segments and SYN-ACKs
// of known listeners allocate nothing.
func TestHandshakeNoAllocation(t *testing.T) {
	h := newHandshakes([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")})
	sa := segment("10.0.0.2:443", "192.0.2.9:50000", synAck, 1)
	s := segment("10.0.0.1:40000", "192.0.2.1:80", syn, 2)
	h.segment(sa, false)
	if n := testing.AllocsPerRun(1000, func() { h.segment(sa, false); h.segment(s, false) }); n != 0 {
		t.Errorf("%v allocations per handshake segment", n)
	}
	if n := testing.AllocsPerRun(1000, func() { h.segment(s, true) }); n != 0 {
		t.Errorf("%v allocations per active open", n)
	}
	// Once the map has room, passive opens and unanswered SYNs reuse it.
	in := segment("192.0.2.9:50000", "10.0.0.2:443", syn, 3)
	c := &reassembly.Conn{Key: reassembly.KeyOf(in)}
	if n := testing.AllocsPerRun(1000, func() { h.segment(in, true); h.segment(sa, false) }); n != 0 {
		t.Errorf("%v allocations per passive open", n)
	}
	if n := testing.AllocsPerRun(1000, func() { h.segment(in, true); h.ended(c) }); n != 0 {
		t.Errorf("%v allocations per unanswered SYN", n)
	}
}

// TestListenerSetBound: the set keeps the most recently seen listeners.
func TestListenerSetBound(t *testing.T) {
	s := listenerSet{max: 3, head: -1, tail: -1}
	key := func(port uint16) listenerKey { return listenerKey{port: port, family: capture.IPv4} }
	for i, port := range []uint16{1, 2, 3, 1, 4, 5, 1} {
		s.seen(key(port), int64(i))
	}
	last := map[netip.AddrPort]int64{}
	s.mergeInto(last)
	var ports []int
	for ap := range last {
		ports = append(ports, int(ap.Port()))
	}
	slices.Sort(ports)
	if !slices.Equal(ports, []int{1, 4, 5}) || len(s.nodes) != 3 || len(s.index) != 3 {
		t.Errorf("kept %v (%d nodes, %d indexed), want [1 4 5]", ports, len(s.nodes), len(s.index))
	}
	if s.nodes[s.tail].key.port != 1 || last[netip.AddrPortFrom(netip.IPv4Unspecified(), 1)] != 6 {
		t.Errorf("most recent is %d", s.nodes[s.tail].key.port)
	}
	// Walking from the head reaches every node once, in recency order.
	var order []uint16
	for i := s.head; i >= 0; i = s.nodes[i].next {
		order = append(order, s.nodes[i].key.port)
	}
	if !slices.Equal(order, []uint16{4, 5, 1}) {
		t.Errorf("recency order %v", order)
	}
}

// BenchmarkHandshakeSegment: the cost of a handshake segment (a SYN-ACK of
// a known listener: a lock and two map lookups) next to the table's.
func BenchmarkHandshakeSegment(b *testing.B) {
	h := newHandshakes([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")})
	sa := segment("10.0.0.2:443", "192.0.2.9:50000", synAck, 1)
	b.ReportAllocs()
	for b.Loop() {
		h.segment(sa, false)
	}
}
