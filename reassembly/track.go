package reassembly

import (
	"net/netip"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
)

// tracked is the table's state of one connection: what every connection
// needs, compactly, with the rest in extensions (see closeExt and rareExt)
// taken only by the connections that need them. Conn is the full view of
// it the table hands out.
//
// Values that are usually derivable are not stored twice: the endpoints'
// addresses and ports are the key's, LastSeen is the last sender's lastTime,
// FirstSeen the first sender's firstTime, Wireshark's per-direction "last
// ACK time" is the direction's lastTime, its window is the endpoint's, and a
// single SYN at the start of an endpoint's traffic needs no run of its own.
//
// It holds no pointers (the flight recorder is a handle into the table's
// rings), so the garbage collector never scans the connection slabs.
type tracked struct {
	lo, hi         capture.Addr // the key's endpoints: the lower one first
	vlanKey        uint32       // Key.VLAN
	loPort, hiPort uint16
	vlan           [2]uint16
	iface          uint16
	family         capture.Family
	vlanCount      uint8
	flags          uint32 // cf*
	synAckAck      uint32 // the acknowledgment number of the first SYN-ACK
	prev, next     uint32 // handles of the neighbours in the table's list (0: none)
	closeX, rareX  uint32 // extension handles (0: none yet)
	traceX         uint32 // flight recorder handle (0: not traced)
	// peerTags are the packed VLAN tags (as Key.VLAN) the endpoint that
	// did not send the first segment was first seen with (VLANAuto, once
	// cfPeerTagsSeen); the first sender's are vlan and vlanCount.
	peerTags uint32
	tunnelX  uint32 // tunnel extension handle (0: not tunnelled)
	vniKey   uint32 // Key.VNI
	id       uint64

	// synTime is the time of the first SYN until the handshake completes,
	// then Conn.HandshakeRTT (only that is read afterwards).
	synTime int64
	// wsTime is Wireshark's ts_mru_syn (the latest SYN) until ts_first_rtt
	// is known (cfFirstRTTKnown), then ts_first_rtt (the SYN is then never
	// read again).
	wsTime int64

	ends [2]trackedEnd // by Role
	zeek zeekCore
}

// tracked flags.
const (
	cfMidstream uint32 = 1 << iota
	cfEstablished
	cfAnyFIN
	cfFirstFINServer // the first FIN came from the server
	cfAnyRST
	cfFirstRSTServer // the first RST came from the server
	cfRSTInHandshake
	cfCloseDone
	cfEnded
	cfClientIsLo      // the client is the key's lower endpoint
	cfLastFromServer  // the last segment came from the server (LastSeen)
	cfFirstFromServer // the first segment came from the server (FirstSeen)
	cfFirstSeenZero   // the first segment's timestamp was 0
	cfFirstRTTKnown   // wsTime is ts_first_rtt
	cfSYNACKSeen      // a SYN-ACK with a non-zero timestamp was seen
	cfRuns            // a retransmission, persist or keepalive run started (in the rare extension)
	cfRunGrew         // a run (or the SYN run) grew on this packet: the table puts the connection on its watch list
	cfWatched         // on the table's watch list (rareExt.watchAt)
	cfLocalIsServer   // the server is the local side (Config.LocalNets), decided at creation
	cfPeerTagsSeen    // peerTags holds the other endpoint's VLAN tags
)

func (c *tracked) has(f uint32) bool { return c.flags&f != 0 }

func (c *tracked) set(f uint32, on bool) {
	if on {
		c.flags |= f
	} else {
		c.flags &^= f
	}
}

func roleIf(server bool) Role {
	if server {
		return Server
	}
	return Client
}

// trackedEnd is one endpoint's state.
type trackedEnd struct {
	firstTime, lastTime int64 // first and last segment sent
	nextSeqTime         int64 // Wireshark: when nextSeq last advanced
	timedAt             int64 // data RTT: when the timed segment was sent

	// wide are values that rarely pass 32 bits (wPackets, ...): the high
	// halves are in rareEnd.wideHi.
	wide [numWide]uint32

	isn, firstSeq    uint32
	highSeq, highAck uint32 // Endpoint.HighSeq and HighAck
	finSeq           uint32 // the sequence number its FIN occupies

	// Wireshark's tcp_analyze_seq_info (see analyze); 0 means unknown.
	nextSeq, lastAck, maxSeqToBeAcked uint32
	dupAckNum                         int32

	timedEnd, rttSamples uint32

	flags uint32 // ef*

	// small are counts that rarely pass 16 bits: the high halves are in
	// rareEnd.countsHi.
	small [numSmallCounts]uint16

	mss, window uint16
	state       State
	wscale      int8 // the SYN's option, -1 when not offered
	winScale    int8 // Wireshark's window-scale state
}

// trackedEnd flags.
const (
	efSawSYN uint32 = 1 << iota
	efSentAny
	efAckedAny
	efWindowFromSYN
	efWindowZero
	efFINSent
	efFINAcked
	efRSTSent
	efRSTHasACK
	efRSTAfterFIN
	efDataAfterFIN
	efSACKPermitted
	efTimestamps
	efTiming        // a data segment is being timed for the RTT
	efIsFirstAck    // Wireshark's is_first_ack
	efLastKeepAlive // Wireshark: the last segment was a keep-alive
	efLastZWP       // Wireshark: the last segment was a zero-window probe
	efLastWasRST    // the last segment was a RST: LastNonRST is in the close extension
	efSynRunInline  // one SYN, at firstTime: SYNRun is {1, 1, isn, firstTime, firstTime}
	efHigh          // a high half of wide or small may be non-zero (in the rare extension)
)

func (e *trackedEnd) has(f uint32) bool { return e.flags&f != 0 }

func (e *trackedEnd) set(f uint32, on bool) {
	if on {
		e.flags |= f
	} else {
		e.flags &^= f
	}
}

// Small counts, indexes into trackedEnd.small.
const (
	scSYNs = iota
	scSYNACKs
	scFINs
	scRSTs
	numSmallCounts
)

// Wide values, indexes into trackedEnd.wide.
const (
	wPackets = iota
	wPayloadBytes
	wIPBytes
	wSRTT // Endpoint.SRTT, never negative
	numWide
)

// carry adds one to the high half of wide value k of c's endpoint r.
func (t *Table) carry(c *tracked, r Role, k int) {
	c.ends[r].flags |= efHigh
	t.rareExt(c).ends[r].wideHi[k]++
}

// setWide sets wide value k of c's endpoint r.
func (t *Table) setWide(c *tracked, r Role, k int, v uint64) {
	e := &c.ends[r]
	e.wide[k] = uint32(v)
	if hi := uint32(v >> 32); hi != 0 {
		e.flags |= efHigh
		t.rareExt(c).ends[r].wideHi[k] = hi
	} else if e.has(efHigh) {
		t.rareExt(c).ends[r].wideHi[k] = 0
	}
}

// wideValue returns wide value k of endpoint r.
func (t *Table) wideValue(c *tracked, r Role, k int) uint64 {
	e := &c.ends[r]
	if e.flags&efHigh == 0 {
		return uint64(e.wide[k])
	}
	return uint64(e.wide[k]) | uint64(t.rares.at(c.rareX).ends[r].wideHi[k])<<32
}

// bumpSmall adds one to count k of c's endpoint r.
func (t *Table) bumpSmall(c *tracked, r Role, k int) {
	e := &c.ends[r]
	e.small[k]++
	if e.small[k] == 0 {
		e.flags |= efHigh
		t.rareExt(c).ends[r].countsHi[k]++
	}
}

// smallCount returns count k of endpoint r.
func (t *Table) smallCount(c *tracked, r Role, k int) uint32 {
	n := uint32(c.ends[r].small[k])
	if c.ends[r].has(efHigh) {
		n |= uint32(t.rares.at(c.rareX).ends[r].countsHi[k]) << 16
	}
	return n
}

// key returns c's key.
func (c *tracked) key() Key {
	return Key{LoAddr: c.lo, HiAddr: c.hi, LoPort: c.loPort, HiPort: c.hiPort, VLAN: c.vlanKey, VNI: c.vniKey, Family: c.family}
}

// is reports whether c's key is k.
func (c *tracked) is(k *Key) bool {
	return c.lo == k.LoAddr && c.hi == k.HiAddr && c.loPort == k.LoPort && c.hiPort == k.HiPort &&
		c.vlanKey == k.VLAN && c.vniKey == k.VNI && c.family == k.Family
}

// endpoint returns the address and port of role r.
func (c *tracked) endpoint(r Role) (capture.Addr, uint16) {
	if (r == Client) == c.has(cfClientIsLo) {
		return c.lo, c.loPort
	}
	return c.hi, c.hiPort
}

// addrPort returns role r's address and port.
func (c *tracked) addrPort(r Role) netip.AddrPort {
	a, port := c.endpoint(r)
	return netip.AddrPortFrom(capture.AddrOf(a, c.family), port)
}

func (c *tracked) lastSeen() int64 { return c.ends[roleIf(c.has(cfLastFromServer))].lastTime }

func (c *tracked) firstSeen() int64 {
	if c.has(cfFirstSeenZero) {
		return 0
	}
	return c.ends[roleIf(c.has(cfFirstFromServer))].firstTime
}

// firstRTT is Wireshark's ts_first_rtt, 0 when unknown.
func (c *tracked) firstRTT() int64 {
	if c.has(cfFirstRTTKnown) {
		return c.wsTime
	}
	return 0
}

// init starts c, a zeroed slot, as a new connection with key k and its
// first segment p; srcLo reports whether p's sender is k's lower endpoint.
func (c *tracked) init(k *Key, p *capture.Packet, srcLo bool, id uint64) {
	c.lo, c.hi, c.loPort, c.hiPort, c.vlanKey, c.family = k.LoAddr, k.HiAddr, k.LoPort, k.HiPort, k.VLAN, k.Family
	c.vniKey = k.VNI
	c.id, c.vlanCount, c.vlan, c.iface = id, p.VLANCount, p.VLAN, p.Interface
	sender := Client
	switch {
	case p.Flags.Has(capture.FlagSYN) && !p.Flags.Has(capture.FlagACK):
		// The SYN's sender is the client.
	case p.Flags.Has(capture.FlagSYN | capture.FlagACK):
		sender = Server // the SYN-ACK's sender is the server
	default:
		c.flags |= cfMidstream
		if !senderLooksLikeClient(p.SrcPort, p.DstPort) {
			sender = Server
		}
	}
	c.set(cfClientIsLo, (sender == Client) == srcLo)
	// The role update gives the first segment (a self-connection's
	// segments are all the client's, whatever the heuristics said).
	c.set(cfFirstFromServer, c.dirOf(srcLo) == Server)
	c.set(cfFirstSeenZero, p.Timestamp == 0)
	for i := range c.ends {
		c.ends[i].wscale = -1
		c.ends[i].winScale = wscaleUnknown
	}
	if c.has(cfMidstream) {
		c.ends[Client].state, c.ends[Server].state = StateEstablished, StateEstablished
	} else {
		c.ends[Client].state, c.ends[Server].state = StateClosed, StateListen
	}
}

// dirOf returns the role of p's sender; srcLo reports whether it is the
// key's lower endpoint.
func (c *tracked) dirOf(srcLo bool) Role {
	if c.lo == c.hi && c.loPort == c.hiPort {
		return Client // a self-connection: both ends are one address and port
	}
	if srcLo == c.has(cfClientIsLo) {
		return Client
	}
	return Server
}

// update applies segment p to connection c and returns its sender's role and
// the segment's analysis flags.
func (t *Table) update(c *tracked, p *capture.Packet, srcLo bool) (Role, Analysis) {
	from := c.dirOf(srcLo)
	s, r := &c.ends[from], &c.ends[from.Other()]
	ts := p.Timestamp
	f := p.Flags
	c.set(cfLastFromServer, from == Server)

	// LastNonRST is lastTime unless the latest segments were RSTs; the
	// time before them is kept aside then.
	if f.Has(capture.FlagRST) {
		if !s.has(efLastWasRST) {
			t.closeExt(c).lastNonRST[from] = s.lastTime
			s.flags |= efLastWasRST
		}
	} else {
		s.flags &^= efLastWasRST
	}

	// Counters; a carry goes to the high half.
	w := &s.wide
	if w[wPackets]++; w[wPackets] == 0 {
		t.carry(c, from, wPackets)
	}
	if w[wPayloadBytes] += p.PayloadLen; w[wPayloadBytes] < p.PayloadLen {
		t.carry(c, from, wPayloadBytes)
	}
	if w[wIPBytes] += p.IPLen; w[wIPBytes] < p.IPLen {
		t.carry(c, from, wIPBytes)
	}
	if s.firstTime == 0 {
		s.firstTime = ts
		s.firstSeq = p.Seq
	}
	s.lastTime = ts

	if f.Has(capture.FlagRST) && staleACKReset(s, r, p) {
		// Counted as sent (packets, resets), but it is no part of the
		// connection: its sequence number is the stale ACK's, not data
		// the sender sent, and the sender stays in SYN_SENT and will
		// send its SYN again.
		t.bumpSmall(c, from, scRSTs)
		if f.Has(capture.FlagFIN) {
			t.bumpSmall(c, from, scFINs) // as sent, as the live counts have it
		}
		o := zeekOp{z: &c.zeek, t: t, c: c}
		o.update(p, c.zeekFromFirst(from))
		return from, 0
	}

	a := analyze(s, r, p, c.firstRTT())
	a |= interpretProbe(s, r, p, a)
	t.count(c, from, a)

	// Handshake. Wireshark reads the SYN's options after its sequence
	// analysis, so the window-scale state changes only now.
	if f.Has(capture.FlagSYN) {
		if f.Has(capture.FlagACK) {
			t.bumpSmall(c, from, scSYNACKs)
			if !c.has(cfSYNACKSeen) {
				c.set(cfSYNACKSeen, ts != 0)
				c.synAckAck = p.Ack
			}
		} else {
			t.bumpSmall(c, from, scSYNs)
			if !c.has(cfEstablished) && c.synTime == 0 {
				c.synTime = ts
			}
		}
		first := !s.has(efSawSYN)
		if first {
			s.flags |= efSawSYN
			s.isn = p.Seq
			s.mss = p.Options.MSS
			s.wscale = p.Options.WScale
			s.set(efSACKPermitted, p.Options.SACKPermitted)
			s.set(efTimestamps, p.Options.HasTimestamp)
		}
		noteSYN(s, r, p)
		t.addSYN(c, from, first, ts, p.Seq)
	} else if f.Has(capture.FlagACK) {
		s.flags &^= efIsFirstAck
	}
	// Wireshark's ts_first_rtt: the most recent SYN to the first pure ACK.
	if !c.has(cfFirstRTTKnown) {
		switch {
		case f.Has(capture.FlagSYN) && !f.Has(capture.FlagACK):
			c.wsTime = ts
		case f.Has(capture.FlagACK) && !f.Has(capture.FlagSYN) && c.wsTime != 0:
			if rtt := ts - c.wsTime; rtt != 0 { // 0 leaves it unknown, as in Wireshark
				c.wsTime = rtt
				c.flags |= cfFirstRTTKnown
			}
		}
	}

	// Handshake completion: the client's ACK of the server's SYN.
	if !c.has(cfEstablished) && f.Has(capture.FlagACK) && !f.Any(capture.FlagSYN|capture.FlagRST) {
		if from == Client && acksSYN(r, p.Ack) && c.has(cfSYNACKSeen) {
			c.flags |= cfEstablished
			if c.synTime != 0 {
				c.synTime = ts - c.synTime // now HandshakeRTT
			}
		} else if c.has(cfMidstream) {
			c.flags |= cfEstablished
			c.synTime = 0 // HandshakeRTT: none
		}
	}

	// Sequence and acknowledgment high-water marks.
	end := p.Seq + segLen(p)
	if !s.has(efSentAny) || seqGT(end, s.highSeq) {
		s.highSeq = end
		s.flags |= efSentAny
	}
	ackAdvanced := false
	if f.Has(capture.FlagACK) {
		if !s.has(efAckedAny) || seqGT(p.Ack, s.highAck) {
			ackAdvanced = s.has(efAckedAny)
			s.highAck = p.Ack
			s.flags |= efAckedAny
		}
	}
	if !f.Any(capture.FlagSYN | capture.FlagFIN | capture.FlagRST) {
		s.set(efWindowZero, p.Window == 0)
	}
	s.window = p.Window
	s.set(efWindowFromSYN, f.Has(capture.FlagSYN))

	t.trackRTT(c, s, r, from, p, a)
	t.trackRuns(c, r, from, p, a, ackAdvanced)
	t.trackClose(c, s, r, from, p)

	o := zeekOp{z: &c.zeek, t: t, c: c} // it looks up the extensions only when it needs them
	o.update(p, c.zeekFromFirst(from))
	return from, a
}

// acksSYN reports whether ack acknowledges e's SYN: it covers the SYN and
// at most what e sent (RFC 9293's acceptable ACK in SYN-RECEIVED, SND.UNA <
// SEG.ACK =< SND.NXT). A server that sends data, or data and its FIN, right
// after its SYN-ACK gets a first ACK beyond ISN+1, which still completes
// the handshake.
func acksSYN(e *trackedEnd, ack uint32) bool {
	return e.has(efSawSYN) && seqGT(ack, e.isn) && seqLE(ack, e.highSeq)
}

// staleACKReset reports whether p, a RST from s, is RFC 9293's answer from
// SYN_SENT to an unacceptable ACK (section 3.10.7.3: <SEQ=SEG.ACK><CTL=RST>):
// s sent its SYN, the peer r answered with a plain ACK that does not
// acknowledge it — typically the peer still holds a half-open connection on
// the 4-tuple from before — and the RST carries that ACK's number as its
// sequence number, without ACK. The RST resets the peer's stale connection,
// not s's attempt, which goes on with a retransmitted SYN.
func staleACKReset(s, r *trackedEnd, p *capture.Packet) bool {
	return !p.Flags.Has(capture.FlagACK) && s.state == StateSynSent && s.has(efSawSYN) &&
		!r.has(efSawSYN) && r.has(efAckedAny) && p.Seq == r.highAck && r.highAck != s.isn+1
}

// addSYN records a SYN (or SYN-ACK) from role r in its SYN run; first
// reports whether it is r's first.
func (t *Table) addSYN(c *tracked, r Role, first bool, ts int64, seq uint32) {
	e := &c.ends[r]
	switch {
	case first && ts != 0 && ts == e.firstTime:
		e.flags |= efSynRunInline // the usual case: nothing to store
	case e.has(efSynRunInline):
		c.flags |= cfRunGrew
		x := &t.rareExt(c).ends[r]
		x.synRun = Run{Count: 1, Unanswered: 1, Seq: e.isn, First: e.firstTime, Last: e.firstTime}
		e.flags &^= efSynRunInline
		x.synRun.add(ts, seq)
	default:
		c.flags |= cfRunGrew
		t.rareExt(c).ends[r].synRun.add(ts, seq)
	}
}

// synRun returns role r's SYN run; x is c's rare extension or nil.
func (c *tracked) synRun(r Role, x *rareExt) Run {
	e := &c.ends[r]
	if e.has(efSynRunInline) {
		return Run{Count: 1, Unanswered: 1, Seq: e.isn, First: e.firstTime, Last: e.firstTime}
	}
	if x == nil {
		return Run{}
	}
	return x.ends[r].synRun
}

// zeekFromFirst reports whether a segment from role came from the endpoint
// that sent the connection's first segment.
func (c *tracked) zeekFromFirst(from Role) bool {
	first := Client
	cl, sv := c.ends[Client].firstTime, c.ends[Server].firstTime
	if sv != 0 && (cl == 0 || sv < cl) {
		first = Server
	}
	return from == first
}

// interpretProbe reads a probe-shaped segment from s to r by context
// (docs/wire.md).
func interpretProbe(s, r *trackedEnd, p *capture.Packet, a Analysis) Analysis {
	if a&ZeroWindowProbe != 0 {
		return PersistProbe // BSD/Windows: one byte at the next sequence number
	}
	if a&KeepAlive == 0 {
		return 0
	}
	// Wireshark's keep-alive: 0 or 1 byte at nextseq-1.
	outstanding := r.has(efAckedAny) && seqLT(r.highAck, s.highSeq) && !(p.PayloadLen == 0 && r.highAck == s.highSeq)
	switch {
	case r.has(efWindowZero):
		return PersistProbe
	case p.PayloadLen == 1 && outstanding && p.Seq == r.highAck:
		// The last byte sent, sent again: the peer has not acknowledged it.
		return ProbeRetransmission
	default:
		return KeepaliveProbe
	}
}

// count adds a segment's analysis flags to its sender's counts.
func (t *Table) count(c *tracked, from Role, a Analysis) {
	if a == 0 {
		return
	}
	s := &t.rareExt(c).ends[from].counts
	if a&countedRetransmission != 0 {
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
// s and r are c's endpoints from and from.Other().
func (t *Table) trackRTT(c *tracked, s, r *trackedEnd, from Role, p *capture.Packet, a Analysis) {
	const retransmitted = Retransmission | FastRetransmission | SpuriousRetransmission | OutOfOrder | ProbeRetransmission
	if a&retransmitted != 0 {
		s.flags &^= efTiming
	} else if !s.has(efTiming) && p.PayloadLen > 0 && a&(PersistProbe|KeepaliveProbe) == 0 {
		s.flags |= efTiming
		s.timedEnd = p.Seq + p.PayloadLen
		s.timedAt = p.Timestamp
	}
	if r.has(efTiming) && p.Flags.Has(capture.FlagACK) && seqGE(p.Ack, r.timedEnd) {
		r.flags &^= efTiming
		sample := p.Timestamp - r.timedAt
		if sample < 0 {
			return
		}
		srtt := sample
		if r.rttSamples != 0 {
			srtt = (7*int64(t.wideValue(c, from.Other(), wSRTT)) + sample) / 8
		}
		if r.wide[wSRTT] = uint32(srtt); srtt>>32 != 0 || r.has(efHigh) {
			t.setWide(c, from.Other(), wSRTT, uint64(srtt))
		}
		r.rttSamples++
	}
}

// trackRuns maintains the retransmission and probe runs the timeout rules
// read (classifier package, docs/reasons.md). Runs live in the rare extension:
// a connection without one has none, and then there is nothing to answer.
// r is c's endpoint from.Other().
func (t *Table) trackRuns(c *tracked, r *trackedEnd, from Role, p *capture.Packet, a Analysis, ackAdvanced bool) {
	f := p.Flags

	// Anything from s answers r's probes and retransmissions.
	if c.has(cfRuns) {
		x := t.rares.at(c.rareX)
		rr := &x.ends[from.Other()]
		rr.retransmits.Unanswered = 0
		rr.persist.Unanswered = 0
		rr.keepalive.Unanswered = 0
		rr.keepalive.Count = 0 // a keepalive run is broken by any reply
		if f.Has(capture.FlagACK) && ackAdvanced && rr.retransmits.Count > 0 && seqGT(p.Ack, rr.retransmits.Seq) {
			rr.retransmits.reset()
		}
		if !f.Any(capture.FlagSYN|capture.FlagFIN|capture.FlagRST) && p.Window != 0 {
			rr.persist.reset() // s's window opened
		}
	}
	if f.Has(capture.FlagRST) {
		return
	}

	// s's own runs.
	const retransmitted = Retransmission | FastRetransmission | SpuriousRetransmission | ProbeRetransmission | OutOfOrder
	if a&retransmitted != 0 && (p.PayloadLen > 0 || f.Has(capture.FlagFIN)) && c.has(cfEstablished) {
		// Only retransmissions of the oldest unacknowledged data (what an
		// RTO retransmits) extend the run; a tail-loss probe or a SACK
		// repair of a later hole does not.
		head := !r.has(efAckedAny) || seqLE(p.Seq, r.highAck)
		if head {
			c.flags |= cfRuns | cfRunGrew
			t.rareExt(c).ends[from].retransmits.add(p.Timestamp, p.Seq)
		}
	}
	if p.PayloadLen > 0 && a&(retransmitted|PersistProbe|KeepaliveProbe) == 0 && c.has(cfRuns) {
		// New data: any keepalive run is over (there was no idle).
		t.rares.at(c.rareX).ends[from].keepalive.reset()
	}
	if a&PersistProbe != 0 {
		c.flags |= cfRuns | cfRunGrew
		t.rareExt(c).ends[from].persist.add(p.Timestamp, p.Seq)
	}
	if a&KeepaliveProbe != 0 {
		c.flags |= cfRuns | cfRunGrew
		t.rareExt(c).ends[from].keepalive.add(p.Timestamp, p.Seq)
	}
}

// trackClose follows FINs and RSTs and the endpoints' states; s and r are
// c's endpoints from and from.Other().
func (t *Table) trackClose(c *tracked, s, r *trackedEnd, from Role, p *capture.Packet) {
	f := p.Flags
	ts := p.Timestamp

	if f.Has(capture.FlagFIN) {
		t.bumpSmall(c, from, scFINs)
	}
	if f.Has(capture.FlagRST) {
		t.bumpSmall(c, from, scRSTs)
		if !s.has(efRSTSent) {
			s.flags |= efRSTSent
			t.closeExt(c).rstTime[from] = ts
			s.set(efRSTHasACK, f.Has(capture.FlagACK))
			s.set(efRSTAfterFIN, s.has(efFINSent))
		}
		if !c.has(cfAnyRST) && !c.has(cfCloseDone) {
			c.flags |= cfAnyRST
			c.set(cfFirstRSTServer, from == Server)
			c.set(cfRSTInHandshake, !c.has(cfEstablished))
		}
		s.state, r.state = StateClosed, StateClosed
		return
	}

	// The handshake's states.
	switch {
	case f.Has(capture.FlagSYN) && !f.Has(capture.FlagACK):
		if s.state == StateClosed || s.state == StateUnknown {
			s.state = StateSynSent
		}
	case f.Has(capture.FlagSYN | capture.FlagACK):
		if s.state == StateListen || s.state == StateUnknown || s.state == StateClosed {
			s.state = StateSynReceived
		}
	}
	if f.Has(capture.FlagACK) {
		if s.state == StateSynSent && acksSYN(r, p.Ack) {
			s.state = StateEstablished
		}
		if r.state == StateSynReceived && acksSYN(r, p.Ack) {
			r.state = StateEstablished
		}
		if s.state == StateSynReceived && c.has(cfEstablished) {
			s.state = StateEstablished
		}
	}
	if p.PayloadLen > 0 && r.has(efFINSent) {
		r.flags |= efDataAfterFIN
	}

	// The peer's FIN acknowledged by s (before s's own FIN in the same
	// segment changes the states).
	if f.Has(capture.FlagACK) && r.has(efFINSent) && !r.has(efFINAcked) && seqGE(p.Ack, r.finSeq+1) {
		r.flags |= efFINAcked
		switch r.state {
		case StateFinWait1:
			r.state = StateFinWait2
		case StateClosing:
			r.state = StateTimeWait
		case StateLastAck:
			r.state = StateClosed
		}
	}

	if f.Has(capture.FlagFIN) {
		if !s.has(efFINSent) {
			s.flags |= efFINSent
			t.closeExt(c).finTime[from] = ts
			s.finSeq = p.Seq + p.PayloadLen
			if !c.has(cfAnyFIN) {
				c.flags |= cfAnyFIN
				c.set(cfFirstFINServer, from == Server)
			}
			switch s.state {
			case StateCloseWait:
				s.state = StateLastAck
			case StateFinWait1, StateFinWait2, StateClosing, StateLastAck, StateTimeWait:
			default:
				s.state = StateFinWait1
			}
			switch r.state {
			case StateFinWait1:
				r.state = StateClosing
			case StateFinWait2:
				r.state = StateTimeWait
			case StateCloseWait, StateLastAck, StateClosing, StateTimeWait:
			default:
				r.state = StateCloseWait
			}
		}
	}
	if s.has(efFINSent) && r.has(efFINSent) && !c.has(cfAnyRST) && !c.has(cfCloseDone) {
		// Both FINs: the close completes when the second is acknowledged;
		// a missing final ACK (lost, or past the capture) still counts.
		c.flags |= cfCloseDone
	}
}

// Bounds of a retransmission timer as the table estimates it (Linux's
// TCP_RTO_MAX, and the least slack allowed for jitter).
const (
	maxRetransmissionGap = 120 * time.Second
	minRetransmitSlack   = time.Second
)

// stillRetransmitting reports whether c, which ended with both FINs and no
// RST, has an endpoint whose unanswered retransmissions of its oldest
// unacknowledged data (its FIN included) may still go on at now: the next
// one is due within twice the last gap (at most maxRetransmissionGap), plus
// a quarter of that or minRetransmitSlack for jitter. Such a connection is
// dying, not closed: its close linger is started again, so the
// retransmissions and the RST that ends them stay in the one connection
// rather than forming a mid-stream one after the linger.
func (t *Table) stillRetransmitting(c *tracked, now int64) bool {
	if !c.has(cfRuns) || c.has(cfAnyRST) {
		return false
	}
	x := t.rares.at(c.rareX)
	for i := range x.ends {
		run := &x.ends[i].retransmits
		if run.Count < 2 || run.Unanswered == 0 {
			continue
		}
		due := min(2*run.LastGap, int64(maxRetransmissionGap))
		due = max(due, run.LastGap)
		if now < run.Last+due+max(int64(minRetransmitSlack), due/4) {
			return true
		}
	}
	return false
}

// inProgress reports whether a timer of either end could still be running:
// unanswered retransmissions or probes, or a handshake that never
// completed. Only such connections can be judged dead by their silence.
func (t *Table) inProgress(c *tracked) bool {
	if c.has(cfRuns) {
		x := t.rares.at(c.rareX)
		for i := range x.ends {
			e := &x.ends[i]
			if e.retransmits.Count > 0 || e.persist.Count > 0 || e.keepalive.Count > 0 {
				return true
			}
		}
	}
	return !c.has(cfEstablished) && !c.has(cfMidstream)
}

// snapshot returns the endpoint's sequence space for the flight recorder.
func (e *trackedEnd) snapshot() flightrec.SeqSnapshot {
	w := uint32(e.window)
	// A SYN's window is never scaled (RFC 7323 §2.2); later ones are when
	// both SYNs offered scaling (winScale is then the shift, else negative).
	if !e.has(efWindowFromSYN) && e.winScale > 0 {
		w <<= uint(e.winScale)
	}
	// The ISN, or one before the first sequence number seen when the SYN
	// was not; 0 when nothing was seen from it yet (Endpoint.BaseSeq).
	base := e.isn
	if e.flags&efSawSYN == 0 {
		base = e.firstSeq - 1
	}
	if e.flags&efSentAny == 0 {
		base = 0
	}
	return flightrec.SeqSnapshot{ISN: base, HighSeq: e.highSeq, HighAck: e.highAck, Window: w}
}
