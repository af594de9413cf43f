package reassembly

import (
	"net/netip"
	"testing"
	"time"
)

// TestLiveCountsKeepFirstRoles: a segment counts under the role its sender
// has when the table applies it, and the table never changes a
// connection's roles, so a late SYN on a connection joined mid-stream, a
// port reused by a new SYN, and a connection that lingers after its RST
// each leave the live counts equal to the records.
func TestLiveCountsKeepFirstRoles(t *testing.T) {
	// A is 10.0.0.1:40000, B is 10.0.0.2:80; B's network is local.
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}
	segs := []seg{
		// Joined mid-stream: B's data first; the port heuristic makes A
		// (the ephemeral port) the client all the same.
		{0, false, P | A, 5000, 100, 10, 0},
		{ms(1), true, A, 100, 5010, 0, 0},
		// A late SYN from A (a retransmitted SYN from before the capture):
		// absorbed, the roles stay.
		{ms(2), true, S, 99, 0, 0, 0},
		{ms(3), true, P | A, 100, 5010, 20, 0},
		{ms(4), true, P | A, 100, 5010, 20, 0}, // a retransmission
		{ms(5), false, R | A, 5010, 120, 0, 0},
		{ms(6), true, A, 120, 5010, 0, 0}, // lingers: counted with it
		// A new SYN with another ISN reuses the port after the RST; B
		// still holds the old connection and answers with a stale ACK,
		// which A resets from SYN_SENT (with a FIN flag too: counted as
		// sent, as ever), then retransmits its SYN.
		{ms(7), true, S, 9000, 0, 0, 0},
		{ms(7) + 100*time.Microsecond, false, A, 5010, 120, 0, 0},
		{ms(7) + 200*time.Microsecond, true, R | F, 120, 0, 0, 0},
		{ms(7) + 300*time.Microsecond, true, S, 9000, 0, 0, 0},
		{ms(8), false, S | A, 7000, 9001, 0, 0},
		{ms(9), true, A, 9001, 7001, 0, 0},
		{ms(10), true, P | A, 9001, 7001, 30, 0},
		{ms(11), true, F | A, 9031, 7001, 0, 0},
	}
	var ended []Conn
	cfg := DefaultConfig()
	cfg.LocalNets = nets
	tab := NewTable(cfg, 0, 1, func(c *Conn) { ended = append(ended, *c) })
	for _, s := range segs {
		p := packetOf(s)
		tab.Packet(&p)
	}
	live := tab.Stats.Segments
	tab.Flush(packetOf(segs[len(segs)-1]).Timestamp)
	if tab.Stats.Segments != live {
		t.Fatalf("the flush changed the live counts")
	}
	if len(ended) != 2 || !ended[0].Midstream || ended[0].End != EndReused {
		t.Fatalf("%d connections, want the mid-stream one (ended by the reused port) and the new one", len(ended))
	}
	var want SegmentStats
	for _, c := range ended {
		if got := LocalRoleOf(nets, netipOf(c.Ends[Client].Addr), netipOf(c.Ends[Server].Addr)); got != Server {
			t.Fatalf("local role %v, want the server (10.0.0.2)", got)
		}
		for r := Client; r <= Server; r++ {
			side := Remote
			if r == Server {
				side = Local
			}
			e := &c.Ends[r]
			want[r][side].Add(&SegmentCounts{Segments: e.Packets, PayloadBytes: e.PayloadBytes,
				Retransmissions: uint64(e.Retransmissions), DupAcks: uint64(e.DupAcks), RSTs: uint64(e.RSTs), FINs: uint64(e.FINs)})
		}
	}
	if live != want {
		t.Errorf("live counts\n%+v\nrecords\n%+v", live, want)
	}
	// By hand: the client (A) sent 11 segments, 70 payload bytes, three
	// retransmissions (its late SYN, its data, its second SYN), one RST
	// and two FINs; the server (B) 4 segments, 10 bytes, one RST.
	c2s, s2c := live.Direction(Client), live.Direction(Server)
	if c2s.Segments != 11 || c2s.PayloadBytes != 70 || c2s.Retransmissions != 3 || c2s.FINs != 2 || c2s.RSTs != 1 ||
		s2c.Segments != 4 || s2c.PayloadBytes != 10 || s2c.RSTs != 1 {
		t.Errorf("client to server %+v, server to client %+v", c2s, s2c)
	}
	if l, r := live.Side(Local), live.Side(Remote); l != s2c || r != c2s {
		t.Errorf("by side: local %+v remote %+v, want the server's and the client's", l, r)
	}
}

func netipOf(a [16]byte) netip.Addr { return netip.AddrFrom4([4]byte(a[:4])) }

// TestLiveCountsDoNotAllocate: counting a segment allocates nothing, with
// the local side named by address, on every counted path: data, pure
// ACKs, duplicate ACKs, retransmissions.
func TestLiveCountsDoNotAllocate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LocalNets = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}
	tab := NewTable(cfg, 0, 1, nil)
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
	before := tab.Stats.Segments
	const rounds = 1000
	allocs := testing.AllocsPerRun(rounds, func() {
		data.Seq = seq
		ack.Ack = seq + 100
		data.Timestamp += 1000
		tab.Packet(&data) // new data
		ack.Timestamp = data.Timestamp + 500
		tab.Packet(&ack)
		ack.Timestamp += 100
		tab.Packet(&ack) // a duplicate ACK
		data.Timestamp = ack.Timestamp + 100
		tab.Packet(&data) // a retransmission (acknowledged already: spurious)
		seq += 100
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round of 4 segments, want 0", allocs)
	}
	after := tab.Stats.Segments
	c, s := after[Client][Remote], after[Server][Local]
	c.Segments -= before[Client][Remote].Segments
	s.Segments -= before[Server][Local].Segments
	// AllocsPerRun runs the function once more than rounds.
	if c.Segments != 2*(rounds+1) || s.Segments != 2*(rounds+1) || c.Retransmissions == 0 || s.DupAcks == 0 {
		t.Errorf("client (remote) %+v, server (local) %+v", c, s)
	}
}
