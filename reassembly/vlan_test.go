package reassembly

import (
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
)

// tagged is a segment with its VLAN tag (0: untagged) and, for the
// overlapping-VLAN case, its own ports offset.
type tagged struct {
	seg
	vlan uint16
}

// feedTags runs tagged segments through a table with the given policy and
// returns the finished connections and the table's statistics.
func feedTags(t *testing.T, policy VLANPolicy, segs []tagged) ([]Conn, TableStats) {
	t.Helper()
	var out []Conn
	cfg := DefaultConfig()
	cfg.VLANPolicy = policy
	tab := NewTable(cfg, 0, 1, func(c *Conn) { out = append(out, *c) })
	var last int64
	for _, s := range segs {
		p := packetOf(s.seg)
		if s.vlan != 0 {
			p.VLANCount, p.VLAN[0] = 1, s.vlan
		}
		tab.Packet(&p)
		last = p.Timestamp
	}
	tab.Flush(last)
	return out, tab.Stats
}

// handshake returns a connection's segments with the client's on cv and
// the server's on sv, starting at start with client ISN isn.
func handshake(start time.Duration, isn uint32, cv, sv uint16) []tagged {
	return []tagged{
		{seg{start, true, S, isn, 0, 0, 0}, cv},
		{seg{start + ms(1), false, S | A, 500, isn + 1, 0, 0}, sv},
		{seg{start + ms(2), true, A, isn + 1, 501, 0, 0}, cv},
		{seg{start + ms(3), true, P | A, isn + 1, 501, 10, 0}, cv},
		{seg{start + ms(4), false, A, 501, isn + 11, 0, 0}, sv},
	}
}

func TestVLANPolicy(t *testing.T) {
	withCopies := []tagged{
		{seg{0, true, S, 100, 0, 0, 0}, 300},
		{seg{ms(0), true, S, 100, 0, 0, 0}, 50}, // the same SYN seen on the second VLAN
		{seg{ms(1), false, S | A, 500, 101, 0, 0}, 50},
		{seg{ms(1), false, S | A, 500, 101, 0, 0}, 300},
		{seg{ms(2), true, A, 101, 501, 0, 0}, 300},
		{seg{ms(2), true, A, 101, 501, 0, 0}, 50},
		{seg{ms(3), true, P | A, 101, 501, 10, 0}, 300},
	}
	overlap := append(handshake(0, 100, 10, 10), handshake(ms(10), 9000, 20, 20)...)
	for _, tc := range []struct {
		name    string
		policy  VLANPolicy
		segs    []tagged
		conns   int
		copies  uint64
		packets [2]uint64 // of the first connection: client, server
	}{
		{"auto/different-tags", VLANAuto, handshake(0, 100, 81, 80), 1, 0, [2]uint64{3, 2}},
		{"auto/one-untagged", VLANAuto, handshake(0, 100, 3136, 0), 1, 0, [2]uint64{3, 2}},
		{"auto/copies", VLANAuto, withCopies, 1, 3, [2]uint64{3, 1}},
		{"auto/same-tuple-two-vlans", VLANAuto, overlap, 2, 0, [2]uint64{3, 2}},
		{"strict/different-tags", VLANStrict, handshake(0, 100, 81, 80), 2, 0, [2]uint64{3, 0}},
		{"strict/copies", VLANStrict, withCopies, 2, 0, [2]uint64{3, 1}},
		{"strict/same-tuple-two-vlans", VLANStrict, overlap, 2, 0, [2]uint64{3, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns, st := feedTags(t, tc.policy, tc.segs)
			if len(conns) != tc.conns || st.VLANCopies != tc.copies {
				t.Fatalf("%d connections, %d copies; want %d, %d", len(conns), st.VLANCopies, tc.conns, tc.copies)
			}
			c := conns[0]
			for _, x := range conns {
				if x.ID < c.ID { // created first
					c = x
				}
			}
			if got := [2]uint64{c.Ends[Client].Packets, c.Ends[Server].Packets}; got != tc.packets {
				t.Errorf("first connection's packets %v, want %v", got, tc.packets)
			}
			for _, x := range conns {
				if x.Ends[Client].Retransmissions+x.Ends[Server].Retransmissions+x.Ends[Client].DupAcks != 0 {
					t.Errorf("connection on VLAN %v: retransmissions or duplicate ACKs %+v", x.VLAN, x.Ends)
				}
			}
		})
	}
}

// TestVLANPolicyAllocs: finding a connection by its tags allocates nothing.
func TestVLANPolicyAllocs(t *testing.T) {
	tab := NewTable(DefaultConfig(), 0, 1, nil)
	segs := append(handshake(0, 100, 81, 80), handshake(ms(10), 9000, 20, 20)...)
	pkts := make([]capture.Packet, len(segs))
	for i, s := range segs {
		pkts[i] = packetOf(s.seg)
		pkts[i].VLANCount, pkts[i].VLAN[0] = 1, s.vlan
		tab.Packet(&pkts[i])
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		p := pkts[3+i%2] // data and its ACK, on different tags
		p.Timestamp += int64(i) * 1000
		p.Seq += uint32(i)
		tab.Packet(&p)
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet", allocs)
	}
}
