package reassembly

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
)

// seg builds a segment from a to b.
type seg struct {
	t        time.Duration // since the start
	fromA    bool
	flags    capture.Flags
	seq, ack uint32
	n        uint32
	win      uint16
}

var (
	epA = netip.MustParseAddrPort("10.0.0.1:40000")
	epB = netip.MustParseAddrPort("10.0.0.2:80")
)

const (
	S = capture.FlagSYN
	A = capture.FlagACK
	F = capture.FlagFIN
	R = capture.FlagRST
	P = capture.FlagPSH
)

func packetOf(s seg) capture.Packet {
	src, dst := epA, epB
	if !s.fromA {
		src, dst = epB, epA
	}
	sa, fam := capture.AddrFrom(src.Addr())
	da, _ := capture.AddrFrom(dst.Addr())
	win := s.win
	if win == 0 && s.flags&R == 0 {
		win = 1000
	}
	if s.win == 0xffff {
		win = 0
	}
	return capture.Packet{
		Timestamp: int64(time.Unix(1_700_000_000, 0).Add(s.t).UnixNano()),
		Src:       sa, Dst: da, SrcPort: src.Port(), DstPort: dst.Port(), Family: fam,
		Seq: s.seq, Ack: s.ack, Flags: s.flags, Window: win, PayloadLen: s.n,
		IPLen: 40 + s.n, Options: capture.TCPOptions{WScale: -1},
	}
}

// feed runs segments through a table and returns the finished connections.
func feed(t *testing.T, segs []seg) []Conn {
	t.Helper()
	var out []Conn
	tab := NewTable(DefaultConfig(), 0, 1, func(c *Conn) { out = append(out, *c) })
	var last int64
	for _, s := range segs {
		p := packetOf(s)
		tab.Packet(&p)
		last = p.Timestamp
	}
	tab.Flush(last)
	return out
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestNormalCloseAndStates(t *testing.T) {
	conns := feed(t, []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
		{ms(3), true, P | A, 101, 501, 10, 0},
		{ms(4), false, A, 501, 111, 0, 0},
		{ms(5), false, F | A, 501, 111, 0, 0},
		{ms(6), true, F | A, 111, 502, 0, 0},
		{ms(7), false, A, 502, 112, 0, 0},
	})
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	c := &conns[0]
	if !c.Established || !c.CloseDone || c.AnyRST || c.FirstFIN != Server || c.Midstream {
		t.Errorf("established %v closeDone %v rst %v firstFIN %v midstream %v", c.Established, c.CloseDone, c.AnyRST, c.FirstFIN, c.Midstream)
	}
	// The server closed first: it ends in TIME_WAIT, the client CLOSED.
	if c.Ends[Client].State != StateClosed || c.Ends[Server].State != StateTimeWait {
		t.Errorf("states client %v server %v, want CLOSED and TIME_WAIT", c.Ends[Client].State, c.Ends[Server].State)
	}
	if c.HandshakeRTT != int64(ms(2)) {
		t.Errorf("handshake RTT %v", time.Duration(c.HandshakeRTT))
	}
	if c.Ends[Client].PayloadBytes != 10 || c.Ends[Client].Packets != 4 || c.Ends[Server].Packets != 4 {
		t.Errorf("counters %+v", c.Ends[Client].Counters)
	}
	if c.Ends[Client].RTTSamples != 1 || c.Ends[Client].SRTT != int64(ms(1)) {
		t.Errorf("data RTT samples %d srtt %v", c.Ends[Client].RTTSamples, time.Duration(c.Ends[Client].SRTT))
	}
}

func TestPortReuseMakesTwoConnections(t *testing.T) {
	conns := feed(t, []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, R | A, 0, 101, 0, 0},
		{ms(1000), true, S, 9000, 0, 0, 0},
		{ms(1001), false, S | A, 700, 9001, 0, 0},
		{ms(1002), true, A, 9001, 701, 0, 0},
	})
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2", len(conns))
	}
	if !conns[0].AnyRST || conns[0].End != EndReused {
		t.Errorf("first: rst %v end %v", conns[0].AnyRST, conns[0].End)
	}
	if conns[1].AnyRST || !conns[1].Established || conns[1].Ends[Client].ISN != 9000 {
		t.Errorf("second: %+v", conns[1].Ends[Client])
	}
}

func TestMidstreamRoles(t *testing.T) {
	// First segment from the server port: the heuristic makes port 80 the server.
	conns := feed(t, []seg{
		{0, false, P | A, 5000, 100, 20, 0},
		{ms(1), true, A, 100, 5020, 0, 0},
	})
	if len(conns) != 1 || !conns[0].Midstream {
		t.Fatalf("%+v", conns)
	}
	if conns[0].Ends[Server].Port != 80 {
		t.Errorf("server port %d, want 80", conns[0].Ends[Server].Port)
	}
}

func TestRetransmissionRun(t *testing.T) {
	// Handshake, then data the server never acknowledges, retransmitted
	// with doubling gaps.
	segs := []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
		{ms(3), true, P | A, 101, 501, 100, 0},
	}
	gap := 200
	at := 3
	for i := 0; i < 5; i++ {
		at += gap
		segs = append(segs, seg{ms(at), true, P | A, 101, 501, 100, 0})
		gap *= 2
	}
	conns := feed(t, segs)
	run := conns[0].Ends[Client].Retransmits
	if run.Count != 5 || run.Shrinks != 0 || run.MinGap != int64(ms(400)) || run.LastGap != int64(ms(3200)) {
		t.Errorf("run %+v", run)
	}
	if conns[0].Ends[Client].Retransmissions != 5 {
		t.Errorf("retransmissions %d", conns[0].Ends[Client].Retransmissions)
	}
}

func TestProbesByContext(t *testing.T) {
	conns := feed(t, []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
		// Keepalive: nothing outstanding, the peer's window open.
		{ms(1000), true, A, 100, 501, 0, 0},
		{ms(1001), false, A, 501, 101, 0, 0},
		// The server's window closes; the client's persist probes.
		{ms(2000), true, P | A, 101, 501, 50, 0},
		{ms(2001), false, A, 501, 151, 0, 0xffff},
		{ms(2200), true, A, 150, 501, 0, 0},
		{ms(2201), false, A, 501, 151, 0, 0xffff},
		{ms(2600), true, A, 150, 501, 0, 0},
	})
	c := conns[0].Ends[Client]
	if c.KeepAlives != 1 || c.WindowProbes != 2 || c.WiresharkKeepAlives != 3 {
		t.Errorf("keepalives %d window probes %d wireshark keep-alives %d", c.KeepAlives, c.WindowProbes, c.WiresharkKeepAlives)
	}
	if conns[0].Ends[Server].ZeroWindows != 2 {
		t.Errorf("zero windows %d", conns[0].Ends[Server].ZeroWindows)
	}
}

// TestPacketDoesNotAllocate proves the per-packet state update allocates
// nothing once the connection exists.
func TestPacketDoesNotAllocate(t *testing.T) {
	tab := NewTable(DefaultConfig(), 0, 1, nil)
	hs := []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
	}
	for _, s := range hs {
		p := packetOf(s)
		tab.Packet(&p)
	}
	data := packetOf(seg{ms(3), true, P | A, 101, 501, 100, 0})
	ack := packetOf(seg{ms(4), false, A, 501, 201, 0, 0})
	seq := uint32(101)
	allocs := testing.AllocsPerRun(1000, func() {
		data.Seq = seq
		ack.Ack = seq + 100
		data.Timestamp += 1000
		ack.Timestamp = data.Timestamp + 500
		tab.Packet(&data)
		tab.Packet(&ack)
		seq += 100
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet pair, want 0", allocs)
	}
}

func BenchmarkTablePacket(b *testing.B) {
	tab := NewTable(DefaultConfig(), 0, 1, nil)
	for _, s := range []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
	} {
		p := packetOf(s)
		tab.Packet(&p)
	}
	data := packetOf(seg{ms(3), true, P | A, 101, 501, 100, 0})
	ack := packetOf(seg{ms(4), false, A, 501, 201, 0, 0})
	seq := uint32(101)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data.Seq = seq
		ack.Ack = seq + 100
		data.Timestamp += 1000
		ack.Timestamp = data.Timestamp + 500
		tab.Packet(&data)
		tab.Packet(&ack)
		seq += 100
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "packets/s")
}

// TestDeadCheckEndsSilentConnections: with a dead check set, a connection
// whose retransmissions went unanswered ends on a tick once the check
// accepts it, and one that is merely idle stays.
func TestDeadCheckEndsSilentConnections(t *testing.T) {
	var ended []EndCause
	tab := NewTable(DefaultConfig(), 0, 1, func(c *Conn) { ended = append(ended, c.End) })
	checked := 0
	tab.SetDeadCheck(func(c *Conn) bool { checked++; return c.Ends[Client].Retransmits.Count >= 3 }, time.Second, time.Second)
	segs := []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
		{ms(3), true, P | A, 101, 501, 100, 0},
		{ms(203), true, P | A, 101, 501, 100, 0},
		{ms(603), true, P | A, 101, 501, 100, 0},
		{ms(1403), true, P | A, 101, 501, 100, 0},
	}
	for _, s := range segs {
		p := packetOf(s)
		tab.Packet(&p)
	}
	// An idle, healthy connection on another port.
	idle := packetOf(seg{ms(1403), true, A, 101, 501, 0, 0})
	idle.SrcPort = 40001
	tab.Packet(&idle)
	base := packetOf(seg{0, true, A, 0, 0, 0, 0}).Timestamp
	tab.Tick(base + int64(ms(1900))) // not yet a second of silence
	if len(ended) != 0 {
		t.Fatalf("ended too early: %v", ended)
	}
	tab.Tick(base + int64(ms(3500)))
	if len(ended) != 1 || ended[0] != EndSilent || tab.Len() != 1 {
		t.Errorf("ended %v, %d left, want one EndSilent and the idle one left", ended, tab.Len())
	}
	if checked != 1 {
		t.Errorf("dead check called %d times, want once (only the connection with retransmissions)", checked)
	}
}

// TestStaleACKResetFromSYNSent: the client's SYN is answered by a stale ACK
// (the server still holds an old connection on the 4-tuple); the client
// resets it with the ACK's number as its sequence number (RFC 9293
// section 3.10.7.3), stays in SYN_SENT and sends its SYN again 3 s later.
// One connection, the RST counted but not ending it nor moving the
// client's sequence numbers, the second SYN the only retransmission.
func TestStaleACKResetFromSYNSent(t *testing.T) {
	conns := feed(t, []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(20), false, A, 7000, 9999, 0, 0}, // stale: acknowledges nothing the client sent
		{ms(21), true, R, 9999, 0, 0, 0},
		{3 * time.Second, true, S, 100, 0, 0, 0},
		{3*time.Second + ms(20), false, S | A, 500, 101, 0, 0},
		{3*time.Second + ms(21), true, A, 101, 501, 0, 0},
		{3*time.Second + ms(22), true, P | A, 101, 501, 10, 0},
		{3*time.Second + ms(40), false, P | A, 501, 111, 20, 0},
		{3*time.Second + ms(41), true, F | A, 111, 521, 0, 0},
		{3*time.Second + ms(60), false, F | A, 521, 112, 0, 0},
		{3*time.Second + ms(61), true, A, 112, 522, 0, 0},
	})
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	c := conns[0]
	cl := c.Ends[Client]
	if c.AnyRST || cl.RSTs != 1 || cl.Retransmissions != 1 || cl.SYNs != 2 || cl.HighSeq != 112 || cl.Packets != 7 {
		t.Errorf("any RST %v; client RSTs %d, retransmissions %d, SYNs %d, high seq %d, packets %d",
			c.AnyRST, cl.RSTs, cl.Retransmissions, cl.SYNs, cl.HighSeq, cl.Packets)
	}
	if cl.State != StateTimeWait || c.Ends[Server].State != StateClosed {
		t.Errorf("states %v %v", cl.State, c.Ends[Server].State)
	}

	// A RST that does not carry the stale ACK's number still resets.
	conns = feed(t, []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(20), false, A, 7000, 9999, 0, 0},
		{ms(21), true, R, 101, 0, 0, 0},
		{3 * time.Second, true, S, 100, 0, 0, 0},
	})
	if len(conns) != 1 || !conns[0].AnyRST {
		t.Errorf("RST at the client's own sequence number: %d connections, any RST %v", len(conns), len(conns) > 0 && conns[0].AnyRST)
	}
}

// TestCloseLingerFollowsRetransmissions: after both FINs the client's
// request and FIN go unacknowledged; it retransmits them with doubling gaps
// (1 to 8 s, past the 5-s close linger) and resets 15 s after the last one.
// The linger starts again while a retransmission is still due, so all of it
// is one connection; with no linger configured nothing waits.
func TestCloseLingerFollowsRetransmissions(t *testing.T) {
	segs := []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), false, P | A, 501, 101, 10, 0},
		{ms(3), false, F | A, 511, 101, 0, 0},
		{ms(4), true, A, 101, 512, 0, 0},
		{ms(5), true, P | A, 101, 512, 50, 0},
		{ms(6), true, F | A, 151, 512, 0, 0},
	}
	at := ms(6)
	for gap := time.Second; gap <= 8*time.Second; gap *= 2 {
		at += gap
		segs = append(segs, seg{at, true, P | F | A, 101, 512, 50, 0})
	}
	segs = append(segs, seg{at + 15*time.Second, true, R, 152, 0, 0, 0})
	conns := feed(t, segs)
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	cl := conns[0].Ends[Client]
	if cl.Retransmits.Count != 4 || !cl.RSTSent || cl.Packets != 9 {
		t.Errorf("client run %+v, RST sent %v, packets %d", cl.Retransmits, cl.RSTSent, cl.Packets)
	}

	// A RST long after the retransmissions stopped is a connection of its own.
	late := append(segs[:len(segs)-1:len(segs)-1], seg{at + 60*time.Second, true, R, 152, 0, 0, 0})
	if conns := feed(t, late); len(conns) != 2 {
		t.Errorf("RST 60 s after the last retransmission: %d connections, want 2", len(conns))
	}

	var n int
	tab := NewTable(Config{CloseLinger: -1}, 0, 1, func(*Conn) { n++ })
	for _, s := range segs {
		p := packetOf(s)
		tab.Packet(&p)
	}
	tab.Flush(0)
	if n < 2 {
		t.Errorf("no linger: %d connections, want the close and later ones apart", n)
	}
}

// TestSYNRetriesAfterRSTOneConnection: Windows answers a RST to its SYN by
// sending the same SYN (same ISN) again, twice, 0.5 s apart; Zeek logs a
// REJ row per attempt, tcptap one connection whose SYN and RST counts show
// the attempts.
func TestSYNRetriesAfterRSTOneConnection(t *testing.T) {
	var segs []seg
	for i := range 3 {
		at := time.Duration(i) * 500 * time.Millisecond
		segs = append(segs, seg{at, true, S, 100, 0, 0, 0}, seg{at + ms(1), false, R | A, 0, 101, 0, 0})
	}
	conns := feed(t, segs)
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	if c := conns[0]; c.Ends[Client].SYNs != 3 || c.Ends[Server].RSTs != 3 {
		t.Errorf("client SYNs %d, server RSTs %d; want 3 and 3", c.Ends[Client].SYNs, c.Ends[Server].RSTs)
	}
}

// TestTimedOutAttemptThenFINOneConnection: SYNs that went unanswered, then
// a FIN on the same 4-tuple a minute later (within the idle timeout):
// Zeek logs S0 then SH, tcptap one connection with both in its counts.
func TestTimedOutAttemptThenFINOneConnection(t *testing.T) {
	conns := feed(t, []seg{
		{0, true, S, 100, 0, 0, 0},
		{time.Second, true, S, 100, 0, 0, 0},
		{3 * time.Second, true, S, 100, 0, 0, 0},
		{time.Minute, true, F | A, 101, 900, 0, 0},
	})
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	if cl := conns[0].Ends[Client]; cl.SYNs != 3 || cl.FINs != 1 {
		t.Errorf("client SYNs %d, FINs %d; want 3 and 1", cl.SYNs, cl.FINs)
	}
}
