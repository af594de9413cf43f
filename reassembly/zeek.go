package reassembly

// This file reproduces, packet by packet, the part of Zeek's TCP analysis that
// produces conn.log's conn_state, history, orig/resp_pkts and
// orig/resp_ip_bytes. Every rule cites the Zeek source it was ported from
// (zeek/zeek, Zeek 6-8 era sources; the baselines it is tested against come
// from commit a13de64f):
//
//   - src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc: Process,
//     init_endpoint, get_relative_seq, update_history, update_window,
//     init_peer, update_ack_seq, update_last_seq, UpdateStateMachine and the
//     Update*State functions, ConnectionClosed, IsReuse, SetPartialStatus and
//     the timers (AttemptTimer, ExpireTimer).
//   - src/packet_analysis/protocol/tcp/TCP.cc: TCPAnalyzer::WantConnection
//     (port-based role flip for connections that do not start with a SYN),
//     DeliverPacket and ValidateChecksum.
//   - src/analyzer/protocol/tcp/TCP_Endpoint.cc and .h: SetState, Size,
//     NoDataAcked, CheckHistory, ChecksumError, DidRxmit, ZeroWindow, Gap.
//   - src/analyzer/protocol/tcp/TCP_Reassembler.cc, src/Reassem.cc:
//     AckReceived, Undelivered, Gap, DataSent, BlockInserted, TrimToSeq
//     (the source of the 'g' letter).
//   - src/session/Session.cc and .h: CheckHistory, ScaledHistoryEntry,
//     InactivityTimer.
//   - src/Conn.cc: Connection::FlipRoles ('^').
//   - scripts/base/protocols/conn/main.zeek: conn_state().
//   - scripts/base/init-bare.zeek: the tcp_* timer and reassembly defaults.
//
// What is not modelled, and why, is listed on ZeekTracker.

import (
	"time"

	"github.com/tcptap/tcptap/capture"
)

// ZeekEndpointState is Zeek's per-endpoint TCP state (EndpointState in
// src/analyzer/protocol/tcp/TCP_Endpoint.h; the TCP_* constants of
// scripts/base/init-bare.zeek). The numeric values are Zeek's.
type ZeekEndpointState uint8

// Zeek endpoint states.
const (
	ZeekInactive    ZeekEndpointState = iota // TCP_INACTIVE: nothing seen
	ZeekSynSent                              // TCP_SYN_SENT: SYN seen
	ZeekSynAckSent                           // TCP_SYN_ACK_SENT: SYN-ACK seen as the first thing from the originator
	ZeekPartial                              // TCP_PARTIAL: traffic seen without a SYN
	ZeekEstablished                          // TCP_ESTABLISHED
	ZeekClosed                               // TCP_CLOSED: FIN seen
	ZeekReset                                // TCP_RESET: RST seen
)

var zeekStateNames = [...]string{"TCP_INACTIVE", "TCP_SYN_SENT", "TCP_SYN_ACK_SENT", "TCP_PARTIAL", "TCP_ESTABLISHED", "TCP_CLOSED", "TCP_RESET"}

func (s ZeekEndpointState) String() string {
	if int(s) < len(zeekStateNames) {
		return zeekStateNames[s]
	}
	return "TCP_UNKNOWN"
}

// Zeek constants. TOO_LARGE_SEQ_DELTA is in TCPSessionAdapter.cc; the others
// are the &redef defaults of scripts/base/init-bare.zeek.
const (
	zeekTooLargeSeqDelta = 1048576

	zeekAttemptDelay         = int64(5 * time.Second) // tcp_attempt_delay
	zeekSYNTimeout           = int64(5 * time.Second) // tcp_SYN_timeout
	zeekSessionTimer         = int64(6 * time.Second) // tcp_session_timer
	zeekConnectionLinger     = int64(5 * time.Second) // tcp_connection_linger
	zeekCloseDelay           = int64(5 * time.Second) // tcp_close_delay
	zeekTCPInactivityTimeout = int64(5 * time.Minute) // tcp_inactivity_timeout
	zeekUDPInactivityTimeout = int64(1 * time.Minute) // udp_inactivity_timeout (sic, see start)
	zeekMaxInitialWindow     = 16384                  // tcp_max_initial_window
	zeekMaxAboveHoleNoAcks   = 16384                  // tcp_max_above_hole_without_any_acks
	zeekExcessiveDataNoAcks  = 10 * 1024 * 1024       // tcp_excessive_data_without_further_acks
	zeekScaledHistoryBase    = 10                     // Session::ScaledHistoryEntry's scaling_base
	zeekHistoryCap           = 40                     // history letters kept (Zeek's string is unbounded)
	zeekMaxBlocks            = 4                      // out-of-order ranges kept per direction
	zeekRespMaskShift        = 16                     // TCP_Endpoint::CheckHistory: mask <<= 16 for the responder
	zeekNoTimer              = int64(-1 << 63)        // an unset timer
	zeekRelSeqStart          = 1                      // Reassembler(1, ...): relative data starts at 1
)

// History masks (HIST_* in src/analyzer/protocol/tcp/TCP_Endpoint.h). Only
// their distinctness matters.
const (
	histSYN uint32 = 1 << iota
	histFIN
	histRST
	histFINRST
	histData
	histAck
	histMultiFlag
)

// zeekRange is a half-open range [lo, hi) of relative sequence numbers.
type zeekRange struct{ lo, hi uint64 }

// zeekEndpoint is the state Zeek keeps in one TCP_Endpoint plus its
// TCP_Reassembler.
type zeekEndpoint struct {
	state, prevState ZeekEndpointState
	didClose         bool
	firstSeen        bool // first_packet_seen bit of this endpoint (SetFirstPacketSeen)

	startSeq, lastSeq, ackSeq uint32
	seqWraps, ackWraps        uint32

	histLastSYN, histLastFIN, histLastRST uint64
	finSeq                                uint64 // FIN_seq: relative seq just past the FIN
	finCnt, rstCnt                        uint32

	// Scaled history counters (TCP_Endpoint: chk_cnt/chk_thresh, ...). A
	// zero threshold means 1, the constructor's value.
	chkCnt, chkThresh   uint32
	rxmtCnt, rxmtThresh uint32
	win0Cnt, win0Thresh uint32
	gapCnt, gapThresh   uint32

	// ConnSize_Analyzer counters.
	pkts, ipBytes uint64

	// TCP_Reassembler state, in relative sequence numbers. Data below
	// lastReassem has been delivered (or declared missing); blocks holds
	// out-of-order data above it, sorted and disjoint.
	lastReassem, trimSeq uint64
	blocks               [zeekMaxBlocks]zeekRange
	nblocks              uint8
	skip                 bool // skip_deliveries
}

// ZeekTracker follows one TCP connection the way Zeek's TCP analyzer does and
// yields Zeek's conn_state, history and ConnSize counters for it. It is
// fixed-size (no slices, maps or pointers) and Update does not allocate.
//
// The zero value is ready to use and mimics Zeek run with its default scripts
// loaded; set Bare before the first Update to mimic `zeek -b` (see Bare).
// The first packet given to Update (or UpdateBadChecksum) creates the
// connection, as in Zeek: its sender is the "first" endpoint.
//
// Not modelled, with the effect on the output:
//   - Zeek drops packets with bad TCP checksums unless run with -C
//     (TCPAnalyzer::ValidateChecksum). The tracker cannot see checksums; a
//     caller that verifies them can feed bad packets to UpdateBadChecksum,
//     which reproduces Zeek's path exactly ('C'/'c', nothing else).
//   - Reassembly is reduced to what decides the 'g' letter: the contiguous
//     delivery point and up to four out-of-order ranges per direction (with
//     more, the two closest ranges are merged, hiding the hole between them).
//     Deferred closes while data is pending (ConnectionClosed's DataPending)
//     and analyzer-driven skipping are not modelled.
//   - Timers that need script event handlers (PartialCloseTimer, ResetTimer)
//     are not modelled; Expired models the others. Script-level changes to
//     the inactivity timeout (base/protocols/conn/inactivity.zeek gives
//     FTP, SSH, Telnet and rlogin one hour) are not applied.
//   - The history keeps at most 40 letters (Zeek's string is unbounded).
//   - The role flip of a connection that starts with a SYN-ACK and then sees
//     an ACK or data from the other side (zeek/zeek#2191) is modelled from its
//     observable behaviour in Zeek's baselines: the flip happens before that
//     packet is processed, the history so far changes case and gets a leading
//     '^', and the SYN-ACK's sender becomes an established responder.
type ZeekTracker struct {
	// Bare mimics `zeek -b` with no protocol scripts loaded, where
	// likely_server_ports is empty and a connection that does not start with
	// a SYN is never flipped by port number (TCPAnalyzer::WantConnection).
	// Without it, the ports of Zeek's default scripts are used. Set it
	// before the first Update.
	Bare bool

	started  bool
	flipped  bool // the originator is the second endpoint
	isActive bool // TCPSessionAdapter::is_active
	partial  bool // TCPSessionAdapter::is_partial

	ep [2]zeekEndpoint // [0] sent the first packet

	histSeen uint32 // Session::hist_seen
	histLen  uint8
	hist     [zeekHistoryCap]byte

	// Timers, in nanoseconds since the epoch (zeekNoTimer when unset).
	lastTime    int64 // Session::last_time
	inactivity  int64 // Session::inactivity_timeout
	attemptAt   int64 // AttemptTimer
	deleteAt    int64 // ConnDeleteTimer
	expireAt    [2]int64
	timersEnded bool // Analyzer::CancelTimers ran
}

// start creates the connection from its first packet (IPBasedAnalyzer::NewConn
// and the TCPSessionAdapter constructor).
func (z *ZeekTracker) start(p *capture.Packet) {
	z.started = true
	z.isActive = true
	for i := range z.ep {
		z.ep[i].lastReassem = zeekRelSeqStart
		z.ep[i].trimSeq = zeekRelSeqStart
	}
	t := p.Timestamp
	z.lastTime = t
	// TCPAnalyzer::MakeSessionAdapter sets udp_inactivity_timeout (sic);
	// TCP_Endpoint::SetState raises it to tcp_inactivity_timeout once the
	// handshake is over.
	z.inactivity = zeekUDPInactivityTimeout
	z.attemptAt = zeekNoTimer
	z.deleteAt = zeekNoTimer
	z.expireAt = [2]int64{t + zeekSYNTimeout, zeekNoTimer}

	// TCPAnalyzer::WantConnection: a connection starting without a SYN, or
	// with a SYN-ACK, is flipped when its source port is a likely server port.
	f := p.Flags
	if !z.Bare && (!f.Has(capture.FlagSYN) || f.Has(capture.FlagACK)) && zeekLikelyServerPort(p.SrcPort) {
		if zeekLikelyServerPort(p.DstPort) {
			z.flipped = !f.Has(capture.FlagSYN) && p.SrcPort < p.DstPort
		} else {
			z.flipped = true
		}
		if z.flipped {
			z.addRaw('^') // Connection::FlipRoles
		}
	}
}

// Update feeds one packet. fromFirst reports whether p was sent by the
// endpoint that sent the connection's first packet seen. Packets must come in
// capture order. Update does not allocate.
func (z *ZeekTracker) Update(p *capture.Packet, fromFirst bool) {
	if !z.started {
		z.start(p)
	}
	z.advance(p.Timestamp)
	i := 1
	if fromFirst {
		i = 0
	}
	z.checkSynAckFlip(i, p)
	z.process(i, p)
}

// UpdateBadChecksum feeds a packet whose TCP checksum is bad, for a caller
// that verifies checksums and wants Zeek's default behaviour (no -C). Zeek
// creates the connection from such a packet but then only records 'C' or 'c'
// on a logarithmic scale (TCPAnalyzer::ValidateChecksum,
// TCP_Endpoint::ChecksumError); the packet is not counted.
func (z *ZeekTracker) UpdateBadChecksum(p *capture.Packet, fromFirst bool) {
	if !z.started {
		z.start(p)
	}
	z.advance(p.Timestamp)
	i := 1
	if fromFirst {
		i = 0
	}
	e := &z.ep[i]
	z.scaled(i, 'C', &e.chkCnt, &e.chkThresh)
}

// IsReuse reports whether Zeek would end this connection and start a new one
// with p (TCPSessionAdapter::IsReuse): p is a SYN (or, for a connection whose
// originator sent nothing, a SYN-ACK) whose sequence number is not the one the
// connection started with, or the connection has closed. Zeek asks this
// before it validates p's checksum.
func (z *ZeekTracker) IsReuse(p *capture.Packet) bool {
	if !z.started {
		return false
	}
	if p.TCPHdrLen != 0 && p.TCPHdrLen < 20 {
		return false // bogus header, not interpreted further
	}
	f := p.Flags
	if !f.Has(capture.FlagSYN) {
		return false
	}
	orig, resp := z.origEP(), z.respEP()
	connOrig := orig
	if f.Has(capture.FlagACK) {
		if orig.state != ZeekInactive {
			return false // not a half connection
		}
		connOrig = resp
	}
	if !z.isClosed() {
		if p.Seq == connOrig.startSeq {
			return false
		}
		if !f.Has(capture.FlagACK) && connOrig.state == ZeekSynAckSent && resp.state == ZeekInactive && p.Seq == resp.startSeq {
			return false // SYN and SYN-ACK seen in the wrong order
		}
	}
	return true
}

// Expired reports whether Zeek's timers would have removed the connection by
// time now (nanoseconds since the epoch), so that a packet at now starts a new
// connection (and a new conn.log row). It models ConnDeleteTimer
// (tcp_close_delay after a complete close), AttemptTimer (tcp_attempt_delay
// after an unanswered SYN), ExpireTimer (tcp_session_timer /
// tcp_connection_linger) and the session inactivity timer
// (tcp_inactivity_timeout; before the handshake completes, Zeek uses
// udp_inactivity_timeout for TCP). Check it before each Update.
func (z *ZeekTracker) Expired(now int64) bool {
	if !z.started {
		return false
	}
	c := *z
	return c.advance(now)
}

// advance runs the timers due by now in time order and reports whether one of
// them removed the connection.
func (z *ZeekTracker) advance(now int64) bool {
	removed := false
	for {
		// Pick the earliest due timer.
		kind, at := -1, int64(0)
		consider := func(k int, t int64) {
			if t != zeekNoTimer && t <= now && (kind < 0 || t < at) {
				kind, at = k, t
			}
		}
		consider(0, z.deleteAt)
		if z.inactivity > 0 {
			consider(1, z.lastTime+z.inactivity)
		}
		consider(2, z.attemptAt)
		consider(3, z.expireAt[0])
		consider(4, z.expireAt[1])
		if kind < 0 {
			return removed
		}
		switch kind {
		case 0: // TCPSessionAdapter::ConnDeleteTimer
			z.deleteAt = zeekNoTimer
			removed = true
		case 1: // Session::InactivityTimer
			z.inactivity = 0
			removed = true
		case 2: // TCPSessionAdapter::AttemptTimer
			z.attemptAt = zeekNoTimer
			o, r := z.origEP(), z.respEP()
			if z.isActive && (o.state == ZeekSynSent || o.state == ZeekSynAckSent) && r.state == ZeekInactive {
				z.isActive = false
				removed = true
			}
		default: // TCPSessionAdapter::ExpireTimer
			k := kind - 3
			if !z.isActive {
				z.expireAt[k] = zeekNoTimer
				break
			}
			o, r := z.origEP(), z.respEP()
			if z.lastTime+zeekConnectionLinger < at {
				if (o.didClose || r.didClose) &&
					((o.didClose && r.didClose) || o.state == ZeekReset || r.state == ZeekReset ||
						o.state == ZeekInactive || r.state == ZeekInactive) {
					z.isActive = false
					removed = true
				} else if r.state == ZeekInactive && o.state == ZeekInactive {
					removed = true
				}
			}
			z.expireAt[k] = at + zeekSessionTimer
		}
		if removed {
			// Nothing fires after removal.
			z.deleteAt, z.attemptAt, z.inactivity = zeekNoTimer, zeekNoTimer, 0
			z.expireAt = [2]int64{zeekNoTimer, zeekNoTimer}
		}
	}
}

// cancelTimers is Analyzer::CancelTimers on the TCP session adapter: the
// attempt and expire timers go; the session's inactivity timer stays.
func (z *ZeekTracker) cancelTimers() {
	z.attemptAt = zeekNoTimer
	z.expireAt = [2]int64{zeekNoTimer, zeekNoTimer}
	z.timersEnded = true
}

func (z *ZeekTracker) origIdx() int {
	if z.flipped {
		return 1
	}
	return 0
}

func (z *ZeekTracker) origEP() *zeekEndpoint { return &z.ep[z.origIdx()] }
func (z *ZeekTracker) respEP() *zeekEndpoint { return &z.ep[1-z.origIdx()] }
func (z *ZeekTracker) isOrig(i int) bool     { return i == z.origIdx() }

// roleIdx returns the index of the endpoint that currently plays the
// originator (isOrig) or responder role.
func (z *ZeekTracker) roleIdx(isOrig bool) int {
	if isOrig {
		return z.origIdx()
	}
	return 1 - z.origIdx()
}

// isClosed is TCPSessionAdapter::IsClosed.
func (z *ZeekTracker) isClosed() bool { return z.ep[0].didClose || z.ep[1].didClose }

// setState is TCP_Endpoint::SetState: finishing the handshake switches the
// session to tcp_inactivity_timeout.
func (z *ZeekTracker) setState(i int, s ZeekEndpointState) {
	e, peer := &z.ep[i], &z.ep[1-i]
	if s == e.state {
		return
	}
	if !zeekIsHandshake(s) && zeekIsHandshake(e.state) && zeekIsHandshake(peer.state) {
		z.inactivity = zeekTCPInactivityTimeout
	}
	e.prevState = e.state
	e.state = s
}

func zeekIsHandshake(s ZeekEndpointState) bool {
	return s == ZeekInactive || s == ZeekSynSent || s == ZeekSynAckSent
}

// checkSynAckFlip flips a connection that started with a SYN-ACK once the
// other side sends an ACK or data (zeek/zeek#2191; see ZeekTracker).
func (z *ZeekTracker) checkSynAckFlip(i int, p *capture.Packet) {
	if z.isOrig(i) {
		return
	}
	o, r := z.origEP(), z.respEP()
	f := p.Flags
	if o.state != ZeekSynAckSent || r.state != ZeekInactive || f.Any(capture.FlagSYN|capture.FlagFIN|capture.FlagRST) {
		return
	}
	if !f.Has(capture.FlagACK) && p.PayloadLen == 0 {
		return
	}
	server := z.origIdx()
	z.flipped = !z.flipped
	// The history so far changes case, and '^' leads.
	n := int(z.histLen)
	if n >= zeekHistoryCap {
		n = zeekHistoryCap - 1
	}
	copy(z.hist[1:n+1], z.hist[:n])
	for j := 1; j <= n; j++ {
		c := z.hist[j]
		switch {
		case c >= 'a' && c <= 'z':
			z.hist[j] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z':
			z.hist[j] = c - 'A' + 'a'
		}
	}
	z.hist[0] = '^'
	z.histLen = uint8(n + 1)
	z.histSeen = z.histSeen>>zeekRespMaskShift | z.histSeen<<zeekRespMaskShift
	z.partial = false // TCPSessionAdapter::FlipRoles
	z.setState(server, ZeekEstablished)
}

// flipRoles is Connection::FlipRoles with TCPSessionAdapter::FlipRoles, as
// called from UpdateInactiveState for a SYN/SYN-ACK reversal.
func (z *ZeekTracker) flipRoles() {
	z.flipped = !z.flipped
	z.partial = false
	z.addRaw('^')
}

// process is TCPSessionAdapter::Process followed by the ConnSize analyzer.
func (z *ZeekTracker) process(i int, p *capture.Packet) {
	e, peer := &z.ep[i], &z.ep[1-i]
	t := p.Timestamp
	isOrig := z.isOrig(i)
	f := p.Flags
	syn, fin, rst, ack := f.Has(capture.FlagSYN), f.Has(capture.FlagFIN), f.Has(capture.FlagRST), f.Has(capture.FlagACK)
	length := int64(p.PayloadLen)
	baseSeq, ackSeq := p.Seq, p.Ack

	z.setPartialStatus(f, isOrig)

	// get_segment_len
	segLen := length
	if syn {
		segLen++
	}
	if fin {
		segLen++
	}
	if rst {
		segLen -= length
	}
	seqOnePast := baseSeq + uint32(segLen)

	e.initEndpoint(syn, baseSeq, seqOnePast)

	relSeq, seqUnderflow := e.relativeSeq(baseSeq, e.lastSeq, e.seqWraps)

	z.updateHistory(i, f, relSeq, length)
	z.updateWindow(i, p.Window, rst)

	if !z.ep[0].didClose || !z.ep[1].didClose {
		z.lastTime = t
	}

	if fin {
		e.finCnt++
		e.finSeq = relSeq + uint64(segLen)
	}
	if rst {
		e.rstCnt++
	}

	var relAck uint64
	if ack {
		if peer.state == ZeekInactive {
			relAck = 1
			peer.initPeer(ackSeq)
		} else {
			ra, ackUnderflow := peer.relativeSeq(ackSeq, peer.ackSeq, peer.ackWraps)
			if ackUnderflow {
				relAck = 0
			} else {
				relAck = ra
				if !rst { // don't trust acks in RST packets
					peer.updateAckSeq(ackSeq)
				}
			}
		}
	}

	deltaLast := z.updateLastSeq(i, seqOnePast, f, length)

	doClose, genEvent := z.updateStateMachine(i, t, baseSeq, length, deltaLast, isOrig, f)

	if ack {
		// After the state machine, so that gaps revealed by a FIN or
		// RST are judged in the new state.
		z.ackReceived(1-i, relAck)
	}

	// CheckPIA_FirstPacket, with the is_orig computed before any flip.
	z.ep[z.roleIdx(isOrig)].firstSeen = true

	relDataSeq := relSeq
	if syn {
		relDataSeq++
	}
	if length > 0 && !rst && !seqUnderflow {
		z.dataSent(i, relDataSeq, uint64(length), zeekPayloadCaptured(p))
	}

	if doClose {
		z.connectionClosed(i, genEvent)
	}

	// ConnSize_Analyzer::DeliverPacket.
	e.pkts++
	e.ipBytes += uint64(p.IPLen)
}

// zeekPayloadCaptured reports whether the whole TCP payload was captured
// (Zeek's caplen >= len). A frame cut by the snap length is taken to have
// lost payload.
func zeekPayloadCaptured(p *capture.Packet) bool {
	return p.CapLen == 0 || p.CapLen >= p.WireLen
}

// setPartialStatus is TCPSessionAdapter::SetPartialStatus.
func (z *ZeekTracker) setPartialStatus(f capture.Flags, isOrig bool) {
	syn, ack := f.Has(capture.FlagSYN), f.Has(capture.FlagACK)
	if isOrig {
		if !z.origEP().firstSeen {
			z.partial = !syn || ack
		}
	} else if !z.respEP().firstSeen && !z.partial {
		z.partial = !syn
	}
}

// initEndpoint is init_endpoint.
func (e *zeekEndpoint) initEndpoint(syn bool, firstSeq, lastSeq uint32) {
	switch e.state {
	case ZeekInactive:
		if syn {
			e.ackSeq, e.startSeq = firstSeq, firstSeq
		} else {
			// A partial connection: number as though a SYN was seen,
			// but don't mark the first packet as a duplicate.
			e.ackSeq, e.startSeq = firstSeq-1, firstSeq-1
			lastSeq = firstSeq
		}
		e.lastSeq = lastSeq
	case ZeekSynSent, ZeekSynAckSent:
		if syn && firstSeq != e.startSeq { // SYN_seq_jump
			e.startSeq, e.ackSeq, e.lastSeq = firstSeq, firstSeq, lastSeq
		}
	case ZeekEstablished, ZeekPartial:
		if syn {
			e.startSeq, e.ackSeq, e.lastSeq = firstSeq, firstSeq, lastSeq
		}
	case ZeekReset:
		if syn && e.prevState == ZeekInactive {
			e.startSeq, e.ackSeq, e.lastSeq = firstSeq, firstSeq, lastSeq
		}
	}
}

// initPeer is init_peer: number the silent peer as though its SYN was seen.
func (e *zeekEndpoint) initPeer(ackSeq uint32) {
	e.startSeq, e.ackSeq, e.lastSeq = ackSeq-1, ackSeq-1, ackSeq-1
}

// relativeSeq is get_relative_seq. A negative offset comes back
// sign-extended, as in Zeek, with underflow set.
func (e *zeekEndpoint) relativeSeq(cur, last, wraps uint32) (uint64, bool) {
	delta := int32(cur - last)
	if delta < 0 {
		if wraps != 0 && cur > last {
			wraps-- // part of a previous 32-bit sequence space
		}
	} else if delta > 0 && cur < last {
		wraps++ // the sequence space wrapped
	}
	if wraps == 0 {
		d := int32(cur - e.startSeq)
		return uint64(int64(d)), d < 0
	}
	return (uint64(wraps)<<32 | uint64(cur)) - uint64(e.startSeq), false
}

// updateAckSeq is update_ack_seq with TCP_Endpoint::UpdateAckSeq.
func (e *zeekEndpoint) updateAckSeq(ackSeq uint32) {
	delta := int32(ackSeq - e.ackSeq)
	if ackSeq == 0 && delta > zeekTooLargeSeqDelta {
		return // more likely a broken ack than a wrap onto 0
	}
	if delta > 0 {
		if ackSeq < e.ackSeq {
			e.ackWraps++
		}
		e.ackSeq = ackSeq
	}
}

// setLastSeq is TCP_Endpoint::UpdateLastSeq.
func (e *zeekEndpoint) setLastSeq(seq uint32) {
	if seq < e.lastSeq {
		e.seqWraps++
	}
	e.lastSeq = seq
}

// updateLastSeq is update_last_seq, the source of the 't' letter.
func (z *ZeekTracker) updateLastSeq(i int, lastSeq uint32, f capture.Flags, length int64) int32 {
	e := &z.ep[i]
	delta := int32(lastSeq - e.lastSeq)
	switch {
	case f.Any(capture.FlagSYN|capture.FlagRST) && (delta > zeekTooLargeSeqDelta || delta < -zeekTooLargeSeqDelta):
		// Outlandish SYN/RST sequence numbers are not trusted.
	case f.Has(capture.FlagFIN) && e.lastSeq == e.startSeq+1:
		// Only the SYN and the FIN seen (perhaps a > 2 GB connection):
		// trust the FIN even if it goes backwards.
		e.setLastSeq(lastSeq)
	case e.state == ZeekReset:
		// Sequence numbers after a RST are not trusted.
	case delta > 0:
		e.setLastSeq(lastSeq)
	case length > 0:
		// delta <= 0 with payload: TCP_Endpoint::DidRxmit.
		z.scaled(i, 'T', &e.rxmtCnt, &e.rxmtThresh)
	}
	return delta
}

// size is TCP_Endpoint::Size, the payload size conn.log reports.
func (e *zeekEndpoint) size(peer *zeekEndpoint) uint64 {
	if e.prevState == ZeekSynSent && e.state == ZeekReset && peer.state == ZeekInactive && !e.noDataAcked() {
		return 0 // a half-open connection discovered and aborted
	}
	last := uint64(e.seqWraps)<<32 | uint64(e.lastSeq)
	ack := uint64(e.ackWraps)<<32 | uint64(e.ackSeq)
	top := ack
	if last > ack {
		top = last
	}
	size := top - uint64(e.startSeq)
	if size != 0 {
		size-- // the SYN
	}
	if e.finCnt > 0 && size != 0 {
		size-- // the FIN
	}
	return size
}

// noDataAcked is TCP_Endpoint::NoDataAcked.
func (e *zeekEndpoint) noDataAcked() bool {
	ack := uint64(e.ackWraps)<<32 | uint64(e.ackSeq)
	start := uint64(e.startSeq)
	return ack == start || ack == start+1
}

// updateHistory is update_history.
func (z *ZeekTracker) updateHistory(i int, f capture.Flags, relSeq uint64, length int64) {
	e := &z.ep[i]
	syn, fin, rst := f.Has(capture.FlagSYN), f.Has(capture.FlagFIN), f.Has(capture.FlagRST)
	bits := 0
	for _, b := range [...]bool{syn, fin, rst} {
		if b {
			bits++
		}
	}
	switch {
	case bits > 1:
		if fin && rst {
			z.checkHistory(i, histFINRST, 'I')
		} else {
			z.checkHistory(i, histMultiFlag, 'Q')
		}
	case bits == 1:
		// Only one of these holds; the letter is added again only when
		// the sequence number differs from the last one of its kind.
		if syn {
			code := byte('S')
			if f.Has(capture.FlagACK) {
				code = 'H'
			}
			if z.checkHistory(i, histSYN, code) && relSeq != e.histLastSYN {
				z.addHistory(i, code)
			}
			e.histLastSYN = relSeq
		}
		if fin {
			// A FIN's sequence number is at the end of its data.
			end := relSeq + uint64(length)
			if z.checkHistory(i, histFIN, 'F') && end != e.histLastFIN {
				z.addHistory(i, 'F')
			}
			e.histLastFIN = end
		}
		if rst {
			if z.checkHistory(i, histRST, 'R') && relSeq != e.histLastRST {
				z.addHistory(i, 'R')
			}
			e.histLastRST = relSeq
		}
	default:
		if length > 0 {
			z.checkHistory(i, histData, 'D')
		} else if f.Has(capture.FlagACK) {
			z.checkHistory(i, histAck, 'A')
		}
	}
}

// updateWindow is the zero-window part of update_window: a zero window is not
// counted when it comes with or after a RST, or after the peer's FIN. (The
// window scale cannot turn a non-zero window into zero, so it is ignored.)
func (z *ZeekTracker) updateWindow(i int, window uint16, rst bool) {
	e, peer := &z.ep[i], &z.ep[1-i]
	if window == 0 && !rst && peer.state != ZeekClosed && e.state != ZeekReset {
		z.scaled(i, 'W', &e.win0Cnt, &e.win0Thresh)
	}
}

// updateStateMachine is TCPSessionAdapter::UpdateStateMachine.
func (z *ZeekTracker) updateStateMachine(i int, t int64, baseSeq uint32, length int64, deltaLast int32, isOrig bool, f capture.Flags) (doClose, genEvent bool) {
	switch z.ep[i].state {
	case ZeekInactive:
		return z.updateInactiveState(i, t, baseSeq, length, isOrig, f)
	case ZeekSynSent, ZeekSynAckSent:
		return z.updateSYNSentState(i, f)
	case ZeekEstablished, ZeekPartial:
		return z.updateEstablishedState(i, f)
	case ZeekClosed:
		return z.updateClosedState(i, f), false
	}
	return false, false // TCP_RESET: weirds only
}

// updateInactiveState is TCPSessionAdapter::UpdateInactiveState.
func (z *ZeekTracker) updateInactiveState(i int, t int64, baseSeq uint32, length int64, isOrig bool, f capture.Flags) (doClose, genEvent bool) {
	e, peer := &z.ep[i], &z.ep[1-i]
	syn, ack := f.Has(capture.FlagSYN), f.Has(capture.FlagACK)
	if syn {
		if isOrig {
			if ack {
				z.setState(i, ZeekSynAckSent) // connection_originator_SYN_ack
			} else {
				z.setState(i, ZeekSynSent)
			}
			z.addTimer(&z.attemptAt, t+zeekAttemptDelay)
		} else {
			if !ack && peer.state == ZeekSynAckSent && baseSeq == e.startSeq {
				// A SYN/SYN-ACK reversal: flip and establish.
				z.flipRoles()
				z.setState(1-i, ZeekEstablished)
				z.ep[z.roleIdx(true)].firstSeen = true // SetFirstPacketSeen(true)
			}
			if peer.state == ZeekSynSent {
				z.setState(1-i, ZeekEstablished)
			}
			z.setState(i, ZeekEstablished)
		}
	}
	if f.Has(capture.FlagFIN) {
		z.setState(i, ZeekClosed)
		doClose, genEvent = true, true
	}
	if f.Has(capture.FlagRST) {
		z.setState(i, ZeekReset)
		isReject := false
		if isOrig {
			// A SYN-ACK but no SYN seen: a reverse scan, a reject.
			isReject = peer.state == ZeekEstablished
		} else {
			isReject = peer.state == ZeekSynSent || peer.state == ZeekSynAckSent
		}
		doClose, genEvent = true, !isReject
	}
	if e.state == ZeekInactive { // no control flags changed the state
		switch {
		case !isOrig && length == 0 && z.origEP().state == ZeekSynSent:
			// An ACK of the initial SYN ahead of the SYN-ACK: not partial.
		case ack && peer.state == ZeekEstablished:
			// The SYN was missed after a SYN-ACK: establish.
			z.setState(i, ZeekEstablished)
			z.partial = false
			z.ep[z.roleIdx(isOrig)].firstSeen = true
		default:
			z.setState(i, ZeekPartial)
		}
	}
	return doClose, genEvent
}

// updateSYNSentState is TCPSessionAdapter::UpdateSYN_SentState.
func (z *ZeekTracker) updateSYNSentState(i int, f capture.Flags) (doClose, genEvent bool) {
	if f.Has(capture.FlagFIN) {
		z.setState(i, ZeekClosed)
		doClose, genEvent = true, true
	}
	if f.Has(capture.FlagRST) {
		z.setState(i, ZeekReset)
		z.isActive = false // ConnectionReset
		doClose = true
	}
	return doClose, genEvent
}

// updateEstablishedState is TCPSessionAdapter::UpdateEstablishedState.
func (z *ZeekTracker) updateEstablishedState(i int, f capture.Flags) (doClose, genEvent bool) {
	e, peer := &z.ep[i], &z.ep[1-i]
	if f.Has(capture.FlagSYN) && e.state == ZeekPartial && peer.state == ZeekInactive && !f.Has(capture.FlagACK) {
		z.setState(i, ZeekSynSent) // SYN_after_partial
	}
	if f.Has(capture.FlagFIN) && !f.Has(capture.FlagRST) {
		z.setState(i, ZeekClosed)
		if peer.state == ZeekReset && peer.prevState == ZeekClosed {
			// The peer sent a FIN and then a RST: a normal close.
			z.setState(1-i, ZeekClosed)
		}
		doClose, genEvent = true, true
	}
	if f.Has(capture.FlagRST) {
		z.setState(i, ZeekReset)
		doClose = true
		if peer.state != ZeekReset || peer.prevState != ZeekEstablished {
			z.isActive = false // ConnectionReset
		}
	}
	return doClose, genEvent
}

// updateClosedState is TCPSessionAdapter::UpdateClosedState: a RST after our
// FIN counts unless the peer has closed too. (The ResetTimer it may start
// needs a connection_reset handler and is not modelled.)
func (z *ZeekTracker) updateClosedState(i int, f capture.Flags) (doClose bool) {
	e, peer := &z.ep[i], &z.ep[1-i]
	if f.Has(capture.FlagRST) && peer.state != ZeekClosed {
		z.setState(i, ZeekReset)
		if !e.didClose {
			doClose = true
		}
	}
	return doClose
}

// connectionClosed is TCPSessionAdapter::ConnectionClosed (without the
// deferral while reassembled data is pending).
func (z *ZeekTracker) connectionClosed(i int, genEvent bool) {
	e, peer := &z.ep[i], &z.ep[1-i]
	if e.didClose {
		return
	}
	e.didClose = true
	if e.state == ZeekReset || peer.didClose || peer.state == ZeekInactive {
		if (e.prevState != ZeekInactive || peer.state != ZeekInactive) && genEvent {
			z.isActive = false // ConnectionFinished
		}
		z.cancelTimers()
		z.deleteAt = z.lastTime + zeekCloseDelay // ConnDeleteTimer
		return
	}
	if e.prevState != ZeekInactive {
		// Look for the other side closing too.
		z.addTimer(&z.expireAt[1], z.lastTime+zeekSessionTimer)
	}
}

// addTimer sets a timer unless the adapter's timers were cancelled.
func (z *ZeekTracker) addTimer(slot *int64, at int64) {
	if z.timersEnded {
		return
	}
	if *slot == zeekNoTimer || at < *slot {
		*slot = at
	}
}

// ackReceived is TCP_Reassembler::AckReceived for endpoint j, whose data the
// peer acknowledged up to relative sequence seq.
func (z *ZeekTracker) ackReceived(j int, seq uint64) {
	e := &z.ep[j]
	if e.finCnt > 0 && seq >= e.finSeq {
		seq = e.finSeq - 1 // don't count the FIN octet
	}
	if seq <= e.trimSeq {
		return
	}
	z.trimToSeq(j, seq)
}

// trimToSeq is Reassembler::TrimToSeq (DataBlockList::Trim): acked data that
// was never delivered is undelivered, i.e. a gap.
func (z *ZeekTracker) trimToSeq(j int, seq uint64) {
	e := &z.ep[j]
	if seq > e.lastReassem {
		z.undelivered(j, seq)
	}
	if seq > e.trimSeq {
		e.trimSeq = seq
	}
}

// undelivered is TCP_Reassembler::Undelivered.
func (z *ZeekTracker) undelivered(j int, upTo uint64) {
	e := &z.ep[j]
	if upTo <= 2 && z.partial {
		// The faked initial sequence of a partial connection.
		return
	}
	if !e.skip {
		// Deliver the buffered blocks that start at or below upTo,
		// reporting the hole before each. (A block that starts exactly at
		// upTo is delivered here rather than left for a later call, which
		// would report an empty hole: Zeek's ftp/bigtransfer baseline
		// counts fewer than ten gaps where that reading gives eleven.)
		for e.nblocks > 0 && e.blocks[0].lo <= upTo {
			b := e.blocks[0]
			if b.lo > e.lastReassem {
				z.gap(j)
			}
			e.popBlock()
			if b.hi > e.lastReassem {
				e.lastReassem = b.hi
			}
			e.mergeDelivered()
		}
		if upTo > e.lastReassem {
			z.gap(j)
		}
	}
	if upTo > e.lastReassem {
		e.lastReassem = upTo
	}
}

// gap is TCP_Reassembler::Gap: the 'g' letter counts only while both sides are
// established or closing cleanly.
func (z *ZeekTracker) gap(j int) {
	e, peer := &z.ep[j], &z.ep[1-j]
	if zeekIsClean(e) && zeekIsClean(peer) {
		z.scaled(j, 'G', &e.gapCnt, &e.gapThresh)
	}
}

func zeekIsClean(e *zeekEndpoint) bool {
	return e.state == ZeekEstablished || (e.state == ZeekClosed && e.prevState == ZeekEstablished)
}

// dataSent is TCP_Endpoint::DataSent with TCP_Reassembler::DataSent.
func (z *ZeekTracker) dataSent(i int, seq, length uint64, captured bool) {
	e := &z.ep[i]
	if !captured || e.skip {
		return // truncated_tcp_payload, or skip_deliveries
	}
	ack := (uint64(e.ackWraps)<<32 | uint64(e.ackSeq)) - uint64(e.startSeq)
	upper := seq + length
	if seq < ack {
		if upper <= ack {
			return // already delivered and acked
		}
		seq = ack
	}
	z.newBlock(i, seq, upper)

	if e.noDataAcked() && e.undeliveredBytes() > zeekMaxAboveHoleNoAcks {
		e.nblocks, e.skip = 0, true // above_hole_data_without_any_acks
	}
	if e.dataSize() > zeekExcessiveDataNoAcks {
		e.nblocks, e.skip = 0, true // excessive_data_without_further_acks
	}
}

// newBlock is Reassembler::NewBlock with TCP_Reassembler::BlockInserted.
func (z *ZeekTracker) newBlock(i int, lo, hi uint64) {
	e, peer := &z.ep[i], &z.ep[1-i]
	if hi <= e.trimSeq {
		return // old data
	}
	if lo < e.trimSeq {
		lo = e.trimSeq
	}
	if lo > e.lastReassem {
		e.insertBlock(lo, hi)
		return
	}
	if hi <= e.lastReassem {
		return // already delivered
	}
	e.lastReassem = hi
	e.mergeDelivered()
	if e.noDataAcked() && e.size(peer) > zeekMaxInitialWindow {
		// Much data and no acks: presume the acks are not visible and
		// stop holding delivered data.
		z.trimToSeq(i, e.lastReassem)
	}
}

// mergeDelivered delivers buffered blocks that now touch lastReassem.
func (e *zeekEndpoint) mergeDelivered() {
	for e.nblocks > 0 && e.blocks[0].lo <= e.lastReassem {
		if e.blocks[0].hi > e.lastReassem {
			e.lastReassem = e.blocks[0].hi
		}
		e.popBlock()
	}
}

func (e *zeekEndpoint) popBlock() {
	copy(e.blocks[:], e.blocks[1:e.nblocks])
	e.nblocks--
}

// insertBlock adds [lo, hi) to the sorted, disjoint out-of-order ranges,
// merging overlapping or adjacent ones. When full, the two ranges with the
// smallest hole between them are merged.
func (e *zeekEndpoint) insertBlock(lo, hi uint64) {
	n := int(e.nblocks)
	// Find the insertion point and merge overlaps.
	k := 0
	for k < n && e.blocks[k].hi < lo {
		k++
	}
	j := k
	for j < n && e.blocks[j].lo <= hi {
		if e.blocks[j].lo < lo {
			lo = e.blocks[j].lo
		}
		if e.blocks[j].hi > hi {
			hi = e.blocks[j].hi
		}
		j++
	}
	// Replace blocks[k:j] with the merged range.
	merged := j - k
	switch {
	case merged == 0:
		if n == zeekMaxBlocks {
			e.squeeze()
			e.insertBlock(lo, hi)
			return
		}
		copy(e.blocks[k+1:n+1], e.blocks[k:n])
		n++
	case merged > 1:
		copy(e.blocks[k+1:], e.blocks[j:n])
		n -= merged - 1
	}
	e.blocks[k] = zeekRange{lo, hi}
	e.nblocks = uint8(n)
}

// squeeze merges the two adjacent ranges with the smallest hole.
func (e *zeekEndpoint) squeeze() {
	n := int(e.nblocks)
	best := 0
	for k := 1; k < n-1; k++ {
		if e.blocks[k+1].lo-e.blocks[k].hi < e.blocks[best+1].lo-e.blocks[best].hi {
			best = k
		}
	}
	e.blocks[best].hi = e.blocks[best+1].hi
	copy(e.blocks[best+1:], e.blocks[best+2:n])
	e.nblocks--
}

// undeliveredBytes is TCP_Reassembler::NumUndeliveredBytes.
func (e *zeekEndpoint) undeliveredBytes() uint64 {
	if e.nblocks == 0 {
		return 0
	}
	return e.blocks[e.nblocks-1].hi - e.lastReassem
}

// dataSize approximates DataBlockList::DataSize: delivered but unacked data
// plus the buffered ranges.
func (e *zeekEndpoint) dataSize() uint64 {
	var s uint64
	if e.lastReassem > e.trimSeq {
		s = e.lastReassem - e.trimSeq
	}
	for k := 0; k < int(e.nblocks); k++ {
		s += e.blocks[k].hi - e.blocks[k].lo
	}
	return s
}

// checkHistory is TCP_Endpoint::CheckHistory with Session::CheckHistory: the
// letter is added the first time its mask is seen in its direction. It
// reports whether the mask had been seen before.
func (z *ZeekTracker) checkHistory(i int, mask uint32, code byte) bool {
	if !z.isOrig(i) {
		mask <<= zeekRespMaskShift
		code = zeekLower(code)
	}
	if z.histSeen&mask == 0 {
		z.histSeen |= mask
		z.addRaw(code)
		return false
	}
	return true
}

// addHistory is TCP_Endpoint::AddHistory.
func (z *ZeekTracker) addHistory(i int, code byte) {
	if !z.isOrig(i) {
		code = zeekLower(code)
	}
	z.addRaw(code)
}

// scaled is Session::ScaledHistoryEntry: the letter is added when the counter
// reaches the threshold, which then grows tenfold.
func (z *ZeekTracker) scaled(i int, code byte, cnt, thresh *uint32) {
	if *thresh == 0 {
		*thresh = 1
	}
	*cnt++
	if *cnt != *thresh {
		return
	}
	z.addHistory(i, code)
	next := *thresh * zeekScaledHistoryBase
	if next <= *thresh {
		*cnt = 0 // wrapped: restart the count, keep the threshold
	} else {
		*thresh = next
	}
}

func (z *ZeekTracker) addRaw(c byte) {
	if int(z.histLen) < len(z.hist) {
		z.hist[z.histLen] = c
		z.histLen++
	}
}

func zeekLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c - 'A' + 'a'
	}
	return c
}

// History returns Zeek's history string (e.g. "ShADadFf"; "^" when Zeek
// flipped the roles). It allocates; see AppendHistory.
func (z *ZeekTracker) History() string { return string(z.hist[:z.histLen]) }

// AppendHistory appends the history to dst.
func (z *ZeekTracker) AppendHistory(dst []byte) []byte { return append(dst, z.hist[:z.histLen]...) }

// OrigIsFirst reports whether Zeek's originator is the endpoint that sent the
// first packet (false after a role flip).
func (z *ZeekTracker) OrigIsFirst() bool { return !z.flipped }

// OrigState returns the originator's endpoint state.
func (z *ZeekTracker) OrigState() ZeekEndpointState { return z.origEP().state }

// RespState returns the responder's endpoint state.
func (z *ZeekTracker) RespState() ZeekEndpointState { return z.respEP().state }

// OrigPkts returns conn.log's orig_pkts: packets from the originator that
// passed Zeek's checks (ConnSize analyzer).
func (z *ZeekTracker) OrigPkts() uint64 { return z.origEP().pkts }

// RespPkts returns conn.log's resp_pkts.
func (z *ZeekTracker) RespPkts() uint64 { return z.respEP().pkts }

// OrigIPBytes returns conn.log's orig_ip_bytes (IP total lengths).
func (z *ZeekTracker) OrigIPBytes() uint64 { return z.origEP().ipBytes }

// RespIPBytes returns conn.log's resp_ip_bytes.
func (z *ZeekTracker) RespIPBytes() uint64 { return z.respEP().ipBytes }

// OrigBytes returns conn.log's orig_bytes: the originator's payload size
// from sequence numbers (TCP_Endpoint::Size).
func (z *ZeekTracker) OrigBytes() uint64 { return z.origEP().size(z.respEP()) }

// RespBytes returns conn.log's resp_bytes.
func (z *ZeekTracker) RespBytes() uint64 { return z.respEP().size(z.origEP()) }

// ConnState returns Zeek's conn_state: S0, S1, SF, REJ, S2, S3, RSTO, RSTOS0,
// RSTR, RSTRH, SH, SHR or OTH (conn_state() in
// scripts/base/protocols/conn/main.zeek).
func (z *ZeekTracker) ConnState() string {
	o, r := z.origEP(), z.respEP()
	os, rs := o.state, r.state
	oInactive := os == ZeekInactive || os == ZeekPartial
	rInactive := rs == ZeekInactive || rs == ZeekPartial
	switch {
	case rs == ZeekReset:
		if os == ZeekSynSent || os == ZeekSynAckSent || (os == ZeekReset && o.size(r) == 0 && r.size(o) == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == ZeekReset:
		if rInactive {
			if zeekMatchRSTOS0(z.hist[:z.histLen]) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == ZeekClosed && os == ZeekClosed:
		return "SF"
	case os == ZeekClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == ZeekClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == ZeekSynSent && rs == ZeekInactive:
		return "S0"
	case os == ZeekEstablished && rs == ZeekEstablished:
		return "S1"
	}
	return "OTH"
}

// zeekMatchRSTOS0 reports whether h matches /\^?S[^HAFGIQ]*R.*/ as a whole,
// as conn_state() tests the history for RSTOS0.
func zeekMatchRSTOS0(h []byte) bool {
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for _, c := range h[1:] {
		switch c {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}

// zeekLikelyServerPort reports whether port/tcp is in likely_server_ports as
// Zeek's default scripts populate it (the `redef likely_server_ports += ...`
// of scripts/base/protocols/*/main.zeek: dce-rpc, dnp3, dns, ftp, http, imap,
// irc, krb, ldap, modbus, mysql, pop3, postgresql, rdp, smb, smtp, socks,
// ssh, ssl, xmpp). Only TCP entries matter here.
func zeekLikelyServerPort(port uint16) bool {
	switch port {
	case 21, 22, 25, 53, 80, 81, 88, 110, 135, 139, 143, 389, 443, 445,
		502, 563, 585, 587, 614, 631, 636, 989, 990, 992, 993, 995,
		1080, 1434, 2811, 3128, 3268, 3306, 3389, 5222, 5223, 5269, 5432,
		6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000:
		return true
	}
	return false
}
