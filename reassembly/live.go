package reassembly

import (
	"net/netip"

	"github.com/tcptap/tcptap/capture"
)

// SegmentCounts are counts of segments as they are seen, summed over
// connections: what Counters and AnalysisCounts give one connection's
// endpoint when it ends, counted instead the moment the table applies each
// segment, so that rates show the traffic of connections still open.
type SegmentCounts struct {
	Segments     uint64
	PayloadBytes uint64
	// Retransmissions counts as Counters.Retransmissions does (tshark's
	// tcp.analysis.retransmission, fast and spurious ones included, plus
	// keepalive-shaped retransmissions of the last byte).
	Retransmissions     uint64
	FastRetransmissions uint64
	ZeroWindows         uint64 // zero-window advertisements
	WindowProbes        uint64 // persist probes, by context
	KeepAlives          uint64 // keepalive probes, by context
	DupAcks             uint64
	RSTs                uint64
	FINs                uint64
}

// Add adds o's counts to s.
func (s *SegmentCounts) Add(o *SegmentCounts) {
	s.Segments += o.Segments
	s.PayloadBytes += o.PayloadBytes
	s.Retransmissions += o.Retransmissions
	s.FastRetransmissions += o.FastRetransmissions
	s.ZeroWindows += o.ZeroWindows
	s.WindowProbes += o.WindowProbes
	s.KeepAlives += o.KeepAlives
	s.DupAcks += o.DupAcks
	s.RSTs += o.RSTs
	s.FINs += o.FINs
}

// countedRetransmission are the flags that count a segment as a
// retransmission, for a connection's Counters and the live counts alike.
const countedRetransmission = Retransmission | FastRetransmission | SpuriousRetransmission | ProbeRetransmission

// Side is which side of a connection sent a segment: its local side (see
// LocalRoleOf) or its remote side.
type Side uint8

// Sides.
const (
	Local  Side = 0
	Remote Side = 1
)

// SegmentStats are a table's live segment counts, indexed by the sender's
// role and side. Each segment is counted once, when the table applies it,
// under the role its sender has in its connection then. The table decides
// a connection's roles and local side when it creates the connection (from
// its first segment: a SYN's sender is the client, a SYN-ACK's the server,
// otherwise a port heuristic) and never changes them afterwards (a late
// SYN on a connection joined mid-stream does not swap them), so the counts
// of a connection that ended equal what its record says, and the sums
// over every ended connection equal these once no connection is open.
type SegmentStats [2][2]SegmentCounts // [Role][Side]

// Direction returns the counts of segments sent by role r: the client to
// server direction for Client.
func (s *SegmentStats) Direction(r Role) SegmentCounts {
	c := s[r][Local]
	c.Add(&s[r][Remote])
	return c
}

// Side returns the counts of segments sent by side d.
func (s *SegmentStats) Side(d Side) SegmentCounts {
	c := s[Client][d]
	c.Add(&s[Server][d])
	return c
}

// Add adds o's counts to s.
func (s *SegmentStats) Add(o *SegmentStats) {
	for r := range s {
		for d := range s[r] {
			s[r][d].Add(&o[r][d])
		}
	}
}

// LocalRoleOf returns the role of a connection's local side: the endpoint
// inside nets when exactly one endpoint is, otherwise the client (also
// when nets is empty). client and server are the endpoints' addresses.
func LocalRoleOf(nets []netip.Prefix, client, server netip.Addr) Role {
	if len(nets) == 0 {
		return Client
	}
	in := func(a netip.Addr) bool {
		for _, p := range nets {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if in(server) && !in(client) {
		return Server
	}
	return Client
}

// decideLocal sets c's local side from the table's local networks, once,
// when c is created.
func (t *Table) decideLocal(c *tracked) {
	if len(t.cfg.LocalNets) == 0 {
		return // the client: cfLocalIsServer clear
	}
	cl, _ := c.endpoint(Client)
	sv, _ := c.endpoint(Server)
	local := LocalRoleOf(t.cfg.LocalNets, capture.AddrOf(cl, c.family), capture.AddrOf(sv, c.family))
	c.set(cfLocalIsServer, local == Server)
}

// countSegment adds segment p, sent by role from with analysis flags a, to
// the table's live counts. It runs for every packet: plain additions into
// the table's own stats, no allocation, no lookup.
func (t *Table) countSegment(c *tracked, from Role, p *capture.Packet, a Analysis) {
	side := Remote
	if (from == Server) == c.has(cfLocalIsServer) {
		side = Local
	}
	s := &t.Stats.Segments[from][side]
	s.Segments++
	s.PayloadBytes += uint64(p.PayloadLen)
	if p.Flags&(capture.FlagRST|capture.FlagFIN) != 0 {
		if p.Flags.Has(capture.FlagRST) {
			s.RSTs++
		}
		if p.Flags.Has(capture.FlagFIN) {
			s.FINs++
		}
	}
	if a == 0 {
		return
	}
	// As count adds them to the connection's AnalysisCounts.
	if a&countedRetransmission != 0 {
		s.Retransmissions++
	}
	if a&FastRetransmission != 0 {
		s.FastRetransmissions++
	}
	if a&ZeroWindow != 0 {
		s.ZeroWindows++
	}
	if a&PersistProbe != 0 {
		s.WindowProbes++
	}
	if a&KeepaliveProbe != 0 {
		s.KeepAlives++
	}
	if a&DupAck != 0 {
		s.DupAcks++
	}
}
