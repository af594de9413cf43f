package reassembly

import (
	"github.com/tcptap/tcptap/capture"
)

// Counters are the per-direction counts of one endpoint's segments. The
// Wireshark-compatible flags count as tshark's tcp.analysis.* fields do:
// Retransmissions includes fast and spurious retransmissions. KeepAlives
// and WindowProbes are tcptap's context-aware reading of probe-shaped
// segments (see Analysis); WiresharkKeepAlives and ZeroWindowProbes are
// Wireshark's raw labels.
type Counters struct {
	Packets                   uint64
	PayloadBytes              uint64
	IPBytes                   uint64 // IP datagram bytes, as Zeek's orig_ip_bytes
	SYNs, SYNACKs, FINs, RSTs uint32

	Retransmissions         uint32
	FastRetransmissions     uint32
	SpuriousRetransmissions uint32
	OutOfOrder              uint32
	DupAcks                 uint32
	ZeroWindows             uint32
	ZeroWindowProbes        uint32
	ZeroWindowProbeAcks     uint32
	WiresharkKeepAlives     uint32
	KeepAliveAcks           uint32
	WindowFull              uint32
	WindowUpdates           uint32
	LostSegments            uint32
	AckedUnseen             uint32

	KeepAlives   uint32 // keepalive probes by context
	WindowProbes uint32 // persist (zero-window) probes by context, Linux and BSD style
	// ProbeRetransmissions are keepalive-shaped segments sent while data was
	// outstanding: retransmissions that Wireshark labels Keep-Alive.
	ProbeRetransmissions uint32
}

// Run follows a sequence of like events from one endpoint that its peer
// does not answer: retransmissions of the same unacknowledged data, or
// probes. The classifier reads a run's count and timing to recognise
// retransmission, persist and keepalive timeouts.
type Run struct {
	Count       uint32 // events in the run
	Unanswered  uint32 // events since the peer last sent anything
	Seq         uint32 // sequence number the run is about
	First, Last int64  // times of the first and last event
	MinGap      int64  // smallest and largest gap between consecutive events
	MaxGap      int64
	LastGap     int64
	Shrinks     uint32 // gaps that were clearly shorter than the one before
}

func (r *Run) reset() { *r = Run{} }

// add records an event at time ts.
func (r *Run) add(ts int64, seq uint32) {
	if r.Count == 0 {
		*r = Run{Count: 1, Unanswered: 1, Seq: seq, First: ts, Last: ts}
		return
	}
	gap := ts - r.Last
	if r.Count == 1 || gap < r.MinGap {
		r.MinGap = gap
	}
	if gap > r.MaxGap {
		r.MaxGap = gap
	}
	if r.Count >= 2 && gap*4 < r.LastGap*3 {
		r.Shrinks++
	}
	r.LastGap = gap
	r.Last = ts
	r.Count++
	r.Unanswered++
}

// Endpoint is one end of a connection: its address, what it sent, and the
// state inferred for it.
type Endpoint struct {
	Addr  capture.Addr
	Port  uint16
	State State
	Counters

	// From its SYN.
	SawSYN        bool
	ISN           uint32
	MSS           uint16
	WScale        int8 // -1 when not offered
	SACKPermitted bool
	Timestamps    bool

	FirstTime, LastTime int64 // first and last segment sent
	firstSeq            uint32
	LastNonRST          int64 // last segment sent that was not a RST
	LastDataTime        int64 // last segment with payload

	// Highest sequence number sent (seq+len, SYN/FIN count one) and highest
	// acknowledgment sent, valid when Sent/Acked are set.
	HighSeq, HighAck  uint32
	SentAny, AckedAny bool
	Window            uint16 // last raw window advertised
	WindowFromSYN     bool   // ... and it came in a SYN (never scaled)
	WindowZero        bool   // the last window advertised (non-SYN/FIN/RST) was 0

	FINSent     bool
	FINTime     int64
	FINSeq      uint32 // sequence number the FIN occupies
	FINAcked    bool   // the peer acknowledged the FIN
	RSTSent     bool
	RSTTime     int64
	RSTHasACK   bool
	RSTAfterFIN bool // its first RST came after its own FIN
	// DataAfterFIN: the peer's data arrived after this endpoint's FIN.
	DataAfterFIN bool

	// Runs read by the timeout rules.
	Retransmits Run // retransmissions of the data the peer has not acknowledged
	Persist     Run // window probes while the peer's window is 0
	Keepalive   Run // keepalive probes
	SYNRun      Run // its SYNs (or SYN-ACKs), retransmissions included

	// Data RTT (RFC 6298 smoothing, Karn's rule): one segment is timed at a
	// time, from its capture to the capture of the peer's ACK covering it.
	SRTT, RTTVar int64
	RTTSamples   uint32
	timedEnd     uint32
	timedAt      int64
	timing       bool

	seq seqAnalysis
}

// Conn is one TCP connection as seen on the tap.
type Conn struct {
	Key       Key
	ID        uint64 // unique within a run: worker-local sequence * workers + worker
	Family    capture.Family
	VLANCount uint8
	VLAN      [2]uint16
	Interface uint16
	Ends      [2]Endpoint // indexed by Role
	Trace     *Ring       // the flight recorder; nil when not traced
	Midstream bool        // the connection's SYN was not seen

	FirstSeen, LastSeen int64

	SYNTime, SYNACKTime int64 // first SYN and SYN-ACK
	Established         bool  // the three-way handshake completed (or midstream data flowed)
	EstablishedTime     int64
	HandshakeRTT        int64 // SYN to the ACK of the SYN-ACK, as seen on the tap

	FirstFIN       Role
	AnyFIN         bool
	FirstRST       Role
	AnyRST         bool
	RSTInHandshake bool // the first RST came before the handshake completed
	CloseDone      bool // both FINs sent and the second one acknowledged (or both FINs seen)

	// End bookkeeping, set by the table.
	Ended    bool  // a RST or a completed close ended it; it lingers to absorb stragglers
	EndedAt  int64 // packet time it ended
	End      EndCause
	EvalTime int64 // the time the classifier judges silence against

	Zeek ZeekTracker

	wsMRUSYN, wsFirstRTT int64  // Wireshark's ts_mru_syn and ts_first_rtt
	synAckAck            uint32 // the acknowledgment number of the first SYN-ACK

	// table links
	prev, next *Conn
	list       *connList
}

// EndCause says why the table let go of a connection.
type EndCause uint8

// End causes.
const (
	EndClosed  EndCause = iota + 1 // RST or completed close, after lingering
	EndIdle                        // idle timeout
	EndCapture                     // end of input (offline) or shutdown
	EndReused                      // a new SYN with another ISN reused the 4-tuple
	EndEvicted                     // table full (memory quota)
	EndSilent                      // live: judged dead by its silence (a timeout rule matched)
)

func (c *Conn) init(k Key, p *capture.Packet, id uint64) {
	*c = Conn{Key: k, ID: id, Family: p.Family, VLANCount: p.VLANCount, VLAN: p.VLAN, Interface: p.Interface}
	client := Client
	switch {
	case p.Flags.Has(capture.FlagSYN) && !p.Flags.Has(capture.FlagACK):
		// The SYN's sender is the client.
	case p.Flags.Has(capture.FlagSYN | capture.FlagACK):
		client = Server // the SYN-ACK's sender is the server
	default:
		c.Midstream = true
		if !senderLooksLikeClient(p.SrcPort, p.DstPort) {
			client = Server
		}
	}
	src, dst := &c.Ends[client], &c.Ends[client.Other()]
	src.Addr, src.Port = p.Src, p.SrcPort
	dst.Addr, dst.Port = p.Dst, p.DstPort
	for i := range c.Ends {
		c.Ends[i].WScale = -1
		c.Ends[i].seq.init()
		c.Ends[i].State = StateUnknown
	}
	if c.Midstream {
		c.Ends[Client].State, c.Ends[Server].State = StateEstablished, StateEstablished
	} else {
		c.Ends[Client].State, c.Ends[Server].State = StateClosed, StateListen
	}
	c.FirstSeen = p.Timestamp
}

// senderLooksLikeClient guesses, for a connection joined mid-stream, whether
// the sender of its first segment is the client: servers usually listen on
// a well-known or registered port, clients use ephemeral ones.
func senderLooksLikeClient(srcPort, dstPort uint16) bool {
	srcServ, dstServ := serviceLikely(srcPort), serviceLikely(dstPort)
	switch {
	case dstServ > srcServ:
		return true
	case srcServ > dstServ:
		return false
	}
	return true // no hint: the first sender is the client
}

// serviceLikely ranks how likely a port is a server's: 2 for well-known,
// 1 for registered, 0 for the dynamic range.
func serviceLikely(port uint16) int {
	switch {
	case port < 1024:
		return 2
	case port < 32768:
		return 1
	}
	return 0
}

// dirOf returns the role of p's sender.
func (c *Conn) dirOf(p *capture.Packet) Role {
	e := &c.Ends[Client]
	if e.Port == p.SrcPort && e.Addr == p.Src && (e.Port != c.Ends[Server].Port || e.Addr != c.Ends[Server].Addr) {
		return Client
	}
	if e.Port == p.SrcPort && e.Addr == p.Src {
		// Both ends share an address and port (a self-connection): tell
		// the directions apart by the destination.
		if c.Ends[Server].Port == p.DstPort && c.Ends[Server].Addr == p.Dst {
			return Client
		}
	}
	return Server
}

// update applies segment p to the connection and returns its analysis flags.
func (c *Conn) update(p *capture.Packet) (Role, Analysis) {
	from := c.dirOf(p)
	s, r := &c.Ends[from], &c.Ends[from.Other()]
	ts := p.Timestamp
	f := p.Flags
	c.LastSeen = ts

	// Counters.
	s.Packets++
	s.PayloadBytes += uint64(p.PayloadLen)
	s.IPBytes += uint64(p.IPLen)
	if s.FirstTime == 0 {
		s.FirstTime = ts
		s.firstSeq = p.Seq
	}
	s.LastTime = ts
	if !f.Has(capture.FlagRST) {
		s.LastNonRST = ts
	}
	if p.PayloadLen > 0 {
		s.LastDataTime = ts
	}

	a := analyze(&s.seq, &r.seq, p, c.wsFirstRTT)
	a |= c.interpretProbe(from, p, a)
	s.count(a)

	// Handshake. Wireshark reads the SYN's options after its sequence
	// analysis, so the window-scale state changes only now.
	if f.Has(capture.FlagSYN) {
		if f.Has(capture.FlagACK) {
			s.SYNACKs++
			if c.SYNACKTime == 0 {
				c.SYNACKTime = ts
				c.synAckAck = p.Ack
			}
		} else {
			s.SYNs++
			if c.SYNTime == 0 {
				c.SYNTime = ts
			}
		}
		if !s.SawSYN {
			s.SawSYN = true
			s.ISN = p.Seq
			s.MSS = p.Options.MSS
			s.WScale = p.Options.WScale
			s.SACKPermitted = p.Options.SACKPermitted
			s.Timestamps = p.Options.HasTimestamp
		}
		noteSYN(&s.seq, &r.seq, p)
		s.SYNRun.add(ts, p.Seq)
	} else if f.Has(capture.FlagACK) {
		s.seq.isFirstAck = false
	}
	// Wireshark's ts_first_rtt: the most recent SYN to the first pure ACK.
	switch {
	case f.Has(capture.FlagSYN) && !f.Has(capture.FlagACK):
		c.wsMRUSYN = ts
	case f.Has(capture.FlagACK) && !f.Has(capture.FlagSYN) && c.wsMRUSYN != 0 && c.wsFirstRTT == 0:
		c.wsFirstRTT = ts - c.wsMRUSYN
	}

	// Handshake completion: the client's ACK of the server's SYN.
	if !c.Established && f.Has(capture.FlagACK) && !f.Any(capture.FlagSYN|capture.FlagRST) {
		if from == Client && r.SawSYN && p.Ack == r.ISN+1 && c.SYNACKTime != 0 {
			c.Established = true
			c.EstablishedTime = ts
			if c.SYNTime != 0 {
				c.HandshakeRTT = ts - c.SYNTime
			}
		} else if c.Midstream {
			c.Established = true
			c.EstablishedTime = ts
		}
	}

	// Sequence and acknowledgment high-water marks.
	end := p.Seq + segLen(p)
	if !s.SentAny || seqGT(end, s.HighSeq) {
		s.HighSeq = end
		s.SentAny = true
	}
	ackAdvanced := false
	if f.Has(capture.FlagACK) {
		if !s.AckedAny || seqGT(p.Ack, s.HighAck) {
			ackAdvanced = s.AckedAny
			s.HighAck = p.Ack
			s.AckedAny = true
		}
	}
	if !f.Any(capture.FlagSYN | capture.FlagFIN | capture.FlagRST) {
		s.WindowZero = p.Window == 0
	}
	s.Window = p.Window
	s.WindowFromSYN = f.Has(capture.FlagSYN)

	c.trackRTT(s, r, p, a)
	c.trackRuns(from, p, a, ackAdvanced)
	c.trackClose(from, p)
	c.Zeek.Update(p, c.zeekFromFirst(from))
	return from, a
}

// zeekFromFirst reports whether a segment from role came from the endpoint
// that sent the connection's first segment.
func (c *Conn) zeekFromFirst(from Role) bool {
	first := Client
	if c.Ends[Server].FirstTime != 0 && (c.Ends[Client].FirstTime == 0 || c.Ends[Server].FirstTime < c.Ends[Client].FirstTime) {
		first = Server
	}
	return from == first
}

// interpretProbe reads a probe-shaped segment by context (REFERENCE §1).
func (c *Conn) interpretProbe(from Role, p *capture.Packet, a Analysis) Analysis {
	s, r := &c.Ends[from], &c.Ends[from.Other()]
	if a&ZeroWindowProbe != 0 {
		return PersistProbe // BSD/Windows: one byte at the next sequence number
	}
	if a&KeepAlive == 0 {
		return 0
	}
	// Wireshark's keep-alive: 0 or 1 byte at nextseq-1.
	outstanding := r.AckedAny && seqLT(r.HighAck, s.HighSeq) && !(p.PayloadLen == 0 && r.HighAck == s.HighSeq)
	switch {
	case r.WindowZero:
		return PersistProbe
	case p.PayloadLen == 1 && outstanding && p.Seq == r.HighAck:
		// The last byte sent, sent again: the peer has not acknowledged it.
		return ProbeRetransmission
	default:
		return KeepaliveProbe
	}
}

func (s *Endpoint) count(a Analysis) {
	if a == 0 {
		return
	}
	if a&(Retransmission|FastRetransmission|SpuriousRetransmission|ProbeRetransmission) != 0 {
		s.Retransmissions++
	}
	if a&FastRetransmission != 0 {
		s.FastRetransmissions++
	}
	if a&SpuriousRetransmission != 0 {
		s.SpuriousRetransmissions++
	}
	if a&OutOfOrder != 0 {
		s.OutOfOrder++
	}
	if a&DupAck != 0 {
		s.DupAcks++
	}
	if a&ZeroWindow != 0 {
		s.ZeroWindows++
	}
	if a&ZeroWindowProbe != 0 {
		s.ZeroWindowProbes++
	}
	if a&ZeroWindowProbeAck != 0 {
		s.ZeroWindowProbeAcks++
	}
	if a&KeepAlive != 0 {
		s.WiresharkKeepAlives++
	}
	if a&KeepAliveAck != 0 {
		s.KeepAliveAcks++
	}
	if a&WindowFull != 0 {
		s.WindowFull++
	}
	if a&WindowUpdate != 0 {
		s.WindowUpdates++
	}
	if a&LostSegment != 0 {
		s.LostSegments++
	}
	if a&AckedUnseen != 0 {
		s.AckedUnseen++
	}
	if a&KeepaliveProbe != 0 {
		s.KeepAlives++
	}
	if a&PersistProbe != 0 {
		s.WindowProbes++
	}
	if a&ProbeRetransmission != 0 {
		s.ProbeRetransmissions++
	}
}

// trackRTT times one data segment at a time per direction (Karn's rule: a
// retransmission cancels the measurement) and smooths samples as RFC 6298.
func (c *Conn) trackRTT(s, r *Endpoint, p *capture.Packet, a Analysis) {
	const retransmitted = Retransmission | FastRetransmission | SpuriousRetransmission | OutOfOrder | ProbeRetransmission
	if a&retransmitted != 0 {
		s.timing = false
	} else if !s.timing && p.PayloadLen > 0 && a&(PersistProbe|KeepaliveProbe) == 0 {
		s.timing = true
		s.timedEnd = p.Seq + p.PayloadLen
		s.timedAt = p.Timestamp
	}
	if r.timing && p.Flags.Has(capture.FlagACK) && seqGE(p.Ack, r.timedEnd) {
		r.timing = false
		sample := p.Timestamp - r.timedAt
		if sample < 0 {
			return
		}
		if r.RTTSamples == 0 {
			r.SRTT, r.RTTVar = sample, sample/2
		} else {
			d := r.SRTT - sample
			if d < 0 {
				d = -d
			}
			r.RTTVar = (3*r.RTTVar + d) / 4
			r.SRTT = (7*r.SRTT + sample) / 8
		}
		r.RTTSamples++
	}
}

// trackRuns maintains the retransmission and probe runs the timeout rules
// read (classifier package, REFERENCE §3).
func (c *Conn) trackRuns(from Role, p *capture.Packet, a Analysis, ackAdvanced bool) {
	s, r := &c.Ends[from], &c.Ends[from.Other()]
	f := p.Flags

	// Anything from s answers r's probes and retransmissions.
	r.Retransmits.Unanswered = 0
	r.Persist.Unanswered = 0
	r.Keepalive.Unanswered = 0
	r.Keepalive.Count = 0 // a keepalive run is broken by any reply
	if f.Has(capture.FlagACK) && ackAdvanced && r.Retransmits.Count > 0 && seqGT(p.Ack, r.Retransmits.Seq) {
		r.Retransmits.reset()
	}
	if !f.Any(capture.FlagSYN|capture.FlagFIN|capture.FlagRST) && p.Window != 0 {
		r.Persist.reset() // s's window opened
	}
	if f.Has(capture.FlagRST) {
		return
	}

	// s's own runs.
	const retransmitted = Retransmission | FastRetransmission | SpuriousRetransmission | ProbeRetransmission | OutOfOrder
	if a&retransmitted != 0 && (p.PayloadLen > 0 || f.Has(capture.FlagFIN)) && c.Established {
		// Only retransmissions of the oldest unacknowledged data (what an
		// RTO retransmits) extend the run; a tail-loss probe or a SACK
		// repair of a later hole does not.
		head := !r.AckedAny || seqLE(p.Seq, r.HighAck)
		if head {
			s.Retransmits.add(p.Timestamp, p.Seq)
		}
	}
	if p.PayloadLen > 0 && a&(retransmitted|PersistProbe|KeepaliveProbe) == 0 {
		// New data: any keepalive run is over (there was no idle).
		s.Keepalive.reset()
	}
	if a&PersistProbe != 0 {
		s.Persist.add(p.Timestamp, p.Seq)
	}
	if a&KeepaliveProbe != 0 {
		s.Keepalive.add(p.Timestamp, p.Seq)
	}
}

// trackClose follows FINs and RSTs and the endpoints' states.
func (c *Conn) trackClose(from Role, p *capture.Packet) {
	s, r := &c.Ends[from], &c.Ends[from.Other()]
	f := p.Flags
	ts := p.Timestamp

	if f.Has(capture.FlagFIN) {
		s.FINs++
	}
	if f.Has(capture.FlagRST) {
		s.RSTs++
		if !s.RSTSent {
			s.RSTSent = true
			s.RSTTime = ts
			s.RSTHasACK = f.Has(capture.FlagACK)
			s.RSTAfterFIN = s.FINSent
		}
		if !c.AnyRST && !c.CloseDone {
			c.AnyRST = true
			c.FirstRST = from
			c.RSTInHandshake = !c.Established
		}
		s.State, r.State = StateClosed, StateClosed
		return
	}

	// The handshake's states.
	switch {
	case f.Has(capture.FlagSYN) && !f.Has(capture.FlagACK):
		if s.State == StateClosed || s.State == StateUnknown {
			s.State = StateSynSent
		}
	case f.Has(capture.FlagSYN | capture.FlagACK):
		if s.State == StateListen || s.State == StateUnknown || s.State == StateClosed {
			s.State = StateSynReceived
		}
	}
	if f.Has(capture.FlagACK) {
		if s.State == StateSynSent && r.SawSYN && p.Ack == r.ISN+1 {
			s.State = StateEstablished
		}
		if r.State == StateSynReceived && r.SawSYN && p.Ack == r.ISN+1 {
			r.State = StateEstablished
		}
		if s.State == StateSynReceived && c.Established {
			s.State = StateEstablished
		}
	}
	if p.PayloadLen > 0 && r.FINSent {
		r.DataAfterFIN = true
	}

	// The peer's FIN acknowledged by s (before s's own FIN in the same
	// segment changes the states).
	if f.Has(capture.FlagACK) && r.FINSent && !r.FINAcked && seqGE(p.Ack, r.FINSeq+1) {
		r.FINAcked = true
		switch r.State {
		case StateFinWait1:
			r.State = StateFinWait2
		case StateClosing:
			r.State = StateTimeWait
		case StateLastAck:
			r.State = StateClosed
		}
	}

	if f.Has(capture.FlagFIN) {
		if !s.FINSent {
			s.FINSent = true
			s.FINTime = ts
			s.FINSeq = p.Seq + p.PayloadLen
			if !c.AnyFIN {
				c.AnyFIN = true
				c.FirstFIN = from
			}
			switch s.State {
			case StateCloseWait:
				s.State = StateLastAck
			case StateFinWait1, StateFinWait2, StateClosing, StateLastAck, StateTimeWait:
			default:
				s.State = StateFinWait1
			}
			switch r.State {
			case StateFinWait1:
				r.State = StateClosing
			case StateFinWait2:
				r.State = StateTimeWait
			case StateCloseWait, StateLastAck, StateClosing, StateTimeWait:
			default:
				r.State = StateCloseWait
			}
		}
	}
	if s.FINSent && r.FINSent && !c.AnyRST && !c.CloseDone {
		// Both FINs: the close completes when the second is acknowledged;
		// a missing final ACK (lost, or past the capture) still counts.
		c.CloseDone = true
	}
}

// inProgress reports whether a timer of either end could still be running:
// unanswered retransmissions or probes, or a handshake that never
// completed. Only such connections can be judged dead by their silence.
func (c *Conn) inProgress() bool {
	for i := range c.Ends {
		e := &c.Ends[i]
		if e.Retransmits.Count > 0 || e.Persist.Count > 0 || e.Keepalive.Count > 0 {
			return true
		}
	}
	return !c.Established && !c.Midstream
}
