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

// zeekHistInline is how many history letters a connection keeps inline; the
// rest (up to zeekHistoryCap) go into zeekRare. Most histories ("ShADadFf")
// fit.
const zeekHistInline = 10

// zeekEnd is the part of the state Zeek keeps in one TCP_Endpoint plus its
// TCP_Reassembler that every connection uses. The parts only some
// connections need are in zeekRareEnd (sequence wraps, retransmission and
// zero-window letters, out-of-order data) and zeekClose (FIN and RST
// bookkeeping).
type zeekEnd struct {
	// TCP_Reassembler state, in relative sequence numbers. Data below
	// lastReassem has been delivered (or declared missing); the
	// out-of-order blocks above it are in zeekRareEnd. (Every packet with
	// data or an ACK reads them several times: splitting them like the
	// counters of trackedEnd cost more time than their 8 bytes are worth.)
	lastReassem, trimSeq uint64

	startSeq, lastSeq, ackSeq uint32

	state, prevState ZeekEndpointState
	flags            uint8 // zeDidClose, ...
}

// zeekEnd flags.
const (
	zeDidClose  uint8 = 1 << iota
	zeFirstSeen       // first_packet_seen bit of this endpoint (SetFirstPacketSeen)
	zeSkip            // skip_deliveries
	zeFIN             // a FIN was seen (FIN_cnt > 0)
	// zeRare: the endpoint's sequence wraps or out-of-order blocks in
	// zeekRareEnd may be non-zero; without it they are zero and the
	// per-packet path need not look.
	zeRare
)

func (e *zeekEnd) has(f uint8) bool { return e.flags&f != 0 }

// zeekCore is the state of Zeek's TCP analysis of one connection that every
// connection needs: what a connection table keeps inline per connection.
type zeekCore struct {
	ep       [2]zeekEnd // [0] sent the first packet
	histSeen uint32     // Session::hist_seen
	histLen  uint8
	flags    uint8 // zcStarted, ...
	hist     [zeekHistInline]byte
}

// zeekCore flags.
const (
	zcStarted uint8 = 1 << iota
	zcFlipped       // the originator is the second endpoint
	zcPartial       // TCPSessionAdapter::is_partial
)

func (z *zeekCore) has(f uint8) bool { return z.flags&f != 0 }

func (z *zeekCore) set(f uint8, on bool) {
	if on {
		z.flags |= f
	} else {
		z.flags &^= f
	}
}

// zeekRareEnd is one endpoint's state that stays zero unless its sequence
// numbers wrap, it retransmits, advertises a zero window, leaves holes or
// repeats a SYN at another sequence number.
type zeekRareEnd struct {
	histLastSYN        uint64
	blocks             [zeekMaxBlocks]zeekRange // out-of-order data above lastReassem, sorted and disjoint
	seqWraps, ackWraps uint32

	// Scaled history counters (TCP_Endpoint: chk_cnt/chk_thresh, ...). A
	// zero threshold means 1, the constructor's value.
	chkCnt, chkThresh   uint32
	rxmtCnt, rxmtThresh uint32
	win0Cnt, win0Thresh uint32
	gapCnt, gapThresh   uint32

	nblocks uint8
}

// zeekRare is a connection's Zeek state beyond zeekCore that most
// connections never use (all zero until used).
type zeekRare struct {
	ep   [2]zeekRareEnd
	hist [zeekHistoryCap - zeekHistInline]byte // history letters past the inline ones
}

// zeekClose is the FIN and RST bookkeeping (zero until a FIN or RST).
type zeekClose struct {
	finSeq      [2]uint64 // FIN_seq: relative seq just past the FIN
	histLastFIN [2]uint64
	histLastRST [2]uint64
}

// zeekTimers are Zeek's timers and what only they read. A connection table
// does not run them: it has its own timers, and nothing the tracker reports
// for a connection depends on them.
type zeekTimers struct {
	// Times in nanoseconds since the epoch (zeekNoTimer when unset).
	lastTime    int64 // Session::last_time
	inactivity  int64 // Session::inactivity_timeout
	attemptAt   int64 // AttemptTimer
	deleteAt    int64 // ConnDeleteTimer
	expireAt    [2]int64
	isActive    bool // TCPSessionAdapter::is_active
	timersEnded bool // Analyzer::CancelTimers ran
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
// A connection table runs the same analysis on a compact copy of this state
// (see Table); Conn.Zeek is a tracker rebuilt from it, which runs no timers
// (Expired reports false) and counts no packets (OrigPkts, RespPkts,
// OrigIPBytes and RespIPBytes report 0: Conn.Ends has the counts).
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

	noTimers bool // rebuilt from a table's connection: no timers, no packet counts

	core  zeekCore
	rare  zeekRare
	close zeekClose
	tm    zeekTimers

	// ConnSize_Analyzer counters, by endpoint ([0] sent the first packet).
	pkts, ipBytes [2]uint64
}

// zeekOp is the analysis of one connection for the duration of one call: its
// compact state and where the rarely used parts live. A standalone tracker
// owns all of them; a table's connection keeps only the core inline and gets
// the other parts from the table's extensions when it first needs them, so
// that most connections never pay for them.
type zeekOp struct {
	z     *zeekCore
	rare  *zeekRare   // nil until needed (a table's connection)
	close *zeekClose  // nil until needed (a table's connection)
	tm    *zeekTimers // nil: timers are not run
	bare  bool

	// Where a table's connection gets its rare and close parts.
	t *Table
	c *tracked
}

// op returns the tracker's analysis.
func (z *ZeekTracker) op() zeekOp {
	o := zeekOp{z: &z.core, rare: &z.rare, close: &z.close, bare: z.Bare}
	if !z.noTimers {
		o.tm = &z.tm
	}
	return o
}

// rareIf returns the rarely used state, nil when a table's connection has
// none yet. A table's connection looks its extension up only when asked.
func (o *zeekOp) rareIf() *zeekRare {
	if o.rare == nil && o.c != nil && o.c.rareX != 0 {
		o.rare = &o.t.rares.at(o.c.rareX).zeek
	}
	return o.rare
}

// closeIf returns the FIN and RST bookkeeping, nil when a table's
// connection has none yet.
func (o *zeekOp) closeIf() *zeekClose {
	if o.close == nil && o.c != nil && o.c.closeX != 0 {
		o.close = &o.t.closes.at(o.c.closeX).zeek
	}
	return o.close
}

// rareEnd returns endpoint i's rarely used state, obtaining it first when
// needed.
func (o *zeekOp) rareEnd(i int) *zeekRareEnd {
	if o.rareIf() == nil {
		o.rare = &o.t.rareExt(o.c).zeek
	}
	return &o.rare.ep[i]
}

// rareLive returns endpoint i's rarely used state for a write of a value
// the per-packet path reads (see zeRare).
//
//go:noinline
func (o *zeekOp) rareLive(i int) *zeekRareEnd {
	o.z.ep[i].flags |= zeRare
	return o.rareEnd(i)
}

// closeState returns the FIN and RST bookkeeping, obtaining it first when
// needed.
func (o *zeekOp) closeState() *zeekClose {
	if o.closeIf() == nil {
		o.close = &o.t.closeExt(o.c).zeek
	}
	return o.close
}

// The accessors below test zeRare inline and leave the rest to a
// function of their own, so that the per-packet path inlines them.

func (o *zeekOp) seqWraps(i int) uint32 {
	if o.z.ep[i].flags&zeRare == 0 {
		return 0
	}
	return o.liveRare(i).seqWraps
}

func (o *zeekOp) ackWraps(i int) uint32 {
	if o.z.ep[i].flags&zeRare == 0 {
		return 0
	}
	return o.liveRare(i).ackWraps
}

func (o *zeekOp) nblocks(i int) int {
	if o.z.ep[i].flags&zeRare == 0 {
		return 0
	}
	return int(o.liveRare(i).nblocks)
}

// liveRare returns endpoint i's rarely used state, which zeRare says exists.
func (o *zeekOp) liveRare(i int) *zeekRareEnd { return &o.rareIf().ep[i] }

func (o *zeekOp) finSeq(i int) uint64 {
	if o.closeIf() == nil {
		return 0
	}
	return o.close.finSeq[i]
}

// start creates the connection from its first packet (IPBasedAnalyzer::NewConn
// and the TCPSessionAdapter constructor).
func (o *zeekOp) start(p *capture.Packet) {
	z := o.z
	z.flags |= zcStarted
	for i := range z.ep {
		z.ep[i].lastReassem = zeekRelSeqStart
		z.ep[i].trimSeq = zeekRelSeqStart
	}
	if tm := o.tm; tm != nil {
		t := p.Timestamp
		tm.isActive = true
		tm.lastTime = t
		// TCPAnalyzer::MakeSessionAdapter sets udp_inactivity_timeout (sic);
		// TCP_Endpoint::SetState raises it to tcp_inactivity_timeout once the
		// handshake is over.
		tm.inactivity = zeekUDPInactivityTimeout
		tm.attemptAt = zeekNoTimer
		tm.deleteAt = zeekNoTimer
		tm.expireAt = [2]int64{t + zeekSYNTimeout, zeekNoTimer}
	}

	// TCPAnalyzer::WantConnection: a connection starting without a SYN, or
	// with a SYN-ACK, is flipped when its source port is a likely server port.
	f := p.Flags
	if !o.bare && (!f.Has(capture.FlagSYN) || f.Has(capture.FlagACK)) && zeekLikelyServerPort(p.SrcPort) {
		flipped := true
		if zeekLikelyServerPort(p.DstPort) {
			flipped = !f.Has(capture.FlagSYN) && p.SrcPort < p.DstPort
		}
		z.set(zcFlipped, flipped)
		if flipped {
			o.addRaw('^') // Connection::FlipRoles
		}
	}
}

// Update feeds one packet. fromFirst reports whether p was sent by the
// endpoint that sent the connection's first packet seen. Packets must come in
// capture order. Update does not allocate.
func (z *ZeekTracker) Update(p *capture.Packet, fromFirst bool) {
	o := z.op()
	i := o.update(p, fromFirst)
	if !z.noTimers {
		// ConnSize_Analyzer::DeliverPacket.
		z.pkts[i]++
		z.ipBytes[i] += uint64(p.IPLen)
	}
}

// update feeds one packet and returns the index of its sender's endpoint.
func (o *zeekOp) update(p *capture.Packet, fromFirst bool) int {
	if !o.z.has(zcStarted) {
		o.start(p)
	}
	if o.tm != nil {
		o.advance(p.Timestamp)
	}
	i := 1
	if fromFirst {
		i = 0
	}
	o.checkSynAckFlip(i, p)
	o.process(i, p)
	return i
}

// UpdateBadChecksum feeds a packet whose TCP checksum is bad, for a caller
// that verifies checksums and wants Zeek's default behaviour (no -C). Zeek
// creates the connection from such a packet but then only records 'C' or 'c'
// on a logarithmic scale (TCPAnalyzer::ValidateChecksum,
// TCP_Endpoint::ChecksumError); the packet is not counted.
func (z *ZeekTracker) UpdateBadChecksum(p *capture.Packet, fromFirst bool) {
	o := z.op()
	if !o.z.has(zcStarted) {
		o.start(p)
	}
	if o.tm != nil {
		o.advance(p.Timestamp)
	}
	i := 1
	if fromFirst {
		i = 0
	}
	e := o.rareEnd(i)
	o.scaled(i, 'C', &e.chkCnt, &e.chkThresh)
}

// IsReuse reports whether Zeek would end this connection and start a new one
// with p (TCPSessionAdapter::IsReuse): p is a SYN (or, for a connection whose
// originator sent nothing, a SYN-ACK) whose sequence number is not the one the
// connection started with, or the connection has closed. Zeek asks this
// before it validates p's checksum.
func (z *ZeekTracker) IsReuse(p *capture.Packet) bool {
	o := z.op()
	return o.isReuse(p)
}

func (o *zeekOp) isReuse(p *capture.Packet) bool {
	if !o.z.has(zcStarted) {
		return false
	}
	if p.TCPHdrLen != 0 && p.TCPHdrLen < 20 {
		return false // bogus header, not interpreted further
	}
	f := p.Flags
	if !f.Has(capture.FlagSYN) {
		return false
	}
	orig, resp := o.origEP(), o.respEP()
	connOrig := orig
	if f.Has(capture.FlagACK) {
		if orig.state != ZeekInactive {
			return false // not a half connection
		}
		connOrig = resp
	}
	if !o.isClosed() {
		if p.Seq == connOrig.startSeq {
			return false
		}
		if !f.Has(capture.FlagACK) && connOrig.state == ZeekSynAckSent && resp.state == ZeekInactive && p.Seq == resp.startSeq {
			return false // SYN and SYN-ACK seen in the wrong order
		}
	}
	return true
}

func (z *zeekCore) origIdx() int {
	if z.has(zcFlipped) {
		return 1
	}
	return 0
}

func (o *zeekOp) origEP() *zeekEnd  { return &o.z.ep[o.z.origIdx()] }
func (o *zeekOp) respEP() *zeekEnd  { return &o.z.ep[1-o.z.origIdx()] }
func (o *zeekOp) isOrig(i int) bool { return i == o.z.origIdx() }

// roleIdx returns the index of the endpoint that currently plays the
// originator (isOrig) or responder role.
func (z *zeekCore) roleIdx(isOrig bool) int {
	if isOrig {
		return z.origIdx()
	}
	return 1 - z.origIdx()
}

// isClosed is TCPSessionAdapter::IsClosed.
func (o *zeekOp) isClosed() bool { return o.z.ep[0].has(zeDidClose) || o.z.ep[1].has(zeDidClose) }

// setState is TCP_Endpoint::SetState: finishing the handshake switches the
// session to tcp_inactivity_timeout.
func (o *zeekOp) setState(i int, s ZeekEndpointState) {
	e, peer := &o.z.ep[i], &o.z.ep[1-i]
	if s == e.state {
		return
	}
	if o.tm != nil && !zeekIsHandshake(s) && zeekIsHandshake(e.state) && zeekIsHandshake(peer.state) {
		o.tm.inactivity = zeekTCPInactivityTimeout
	}
	e.prevState = e.state
	e.state = s
}

func zeekIsHandshake(s ZeekEndpointState) bool {
	return s == ZeekInactive || s == ZeekSynSent || s == ZeekSynAckSent
}

// checkSynAckFlip flips a connection that started with a SYN-ACK once the
// other side sends an ACK or data (zeek/zeek#2191; see ZeekTracker).
func (o *zeekOp) checkSynAckFlip(i int, p *capture.Packet) {
	if o.isOrig(i) {
		return
	}
	orig, resp := o.origEP(), o.respEP()
	f := p.Flags
	if orig.state != ZeekSynAckSent || resp.state != ZeekInactive || f.Any(capture.FlagSYN|capture.FlagFIN|capture.FlagRST) {
		return
	}
	if !f.Has(capture.FlagACK) && p.PayloadLen == 0 {
		return
	}
	z := o.z
	server := z.origIdx()
	z.flags ^= zcFlipped
	// The history so far changes case, and '^' leads.
	n := int(z.histLen)
	if n >= zeekHistoryCap {
		n = zeekHistoryCap - 1
	}
	for j := n; j >= 1; j-- {
		c := o.histAt(j - 1)
		switch {
		case c >= 'a' && c <= 'z':
			c = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z':
			c = c - 'A' + 'a'
		}
		o.histSet(j, c)
	}
	o.histSet(0, '^')
	z.histLen = uint8(n + 1)
	z.histSeen = z.histSeen>>zeekRespMaskShift | z.histSeen<<zeekRespMaskShift
	z.set(zcPartial, false) // TCPSessionAdapter::FlipRoles
	o.setState(server, ZeekEstablished)
}

// flipRoles is Connection::FlipRoles with TCPSessionAdapter::FlipRoles, as
// called from UpdateInactiveState for a SYN/SYN-ACK reversal.
func (o *zeekOp) flipRoles() {
	o.z.flags ^= zcFlipped
	o.z.set(zcPartial, false)
	o.addRaw('^')
}

// process is TCPSessionAdapter::Process (the ConnSize analyzer's counting is
// left to the caller).
func (o *zeekOp) process(i int, p *capture.Packet) {
	z := o.z
	e, peer := &z.ep[i], &z.ep[1-i]
	t := p.Timestamp
	isOrig := o.isOrig(i)
	f := p.Flags
	syn, fin, rst, ack := f.Has(capture.FlagSYN), f.Has(capture.FlagFIN), f.Has(capture.FlagRST), f.Has(capture.FlagACK)
	length := int64(p.PayloadLen)
	baseSeq, ackSeq := p.Seq, p.Ack

	o.setPartialStatus(f, isOrig)

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

	relSeq, seqUnderflow := e.relativeSeq(baseSeq, e.lastSeq, o.seqWraps(i))

	o.updateHistory(i, f, relSeq, length)
	o.updateWindow(i, p.Window, rst)

	if tm := o.tm; tm != nil && (!z.ep[0].has(zeDidClose) || !z.ep[1].has(zeDidClose)) {
		tm.lastTime = t
	}

	if fin {
		e.flags |= zeFIN
		o.closeState().finSeq[i] = relSeq + uint64(segLen)
	}

	var relAck uint64
	if ack {
		if peer.state == ZeekInactive {
			relAck = 1
			peer.initPeer(ackSeq)
		} else {
			ra, ackUnderflow := peer.relativeSeq(ackSeq, peer.ackSeq, o.ackWraps(1-i))
			if ackUnderflow {
				relAck = 0
			} else {
				relAck = ra
				if !rst { // don't trust acks in RST packets
					o.updateAckSeq(1-i, ackSeq)
				}
			}
		}
	}

	deltaLast := o.updateLastSeq(i, seqOnePast, f, length)

	doClose, genEvent := o.updateStateMachine(i, t, baseSeq, length, deltaLast, isOrig, f)

	if ack {
		// After the state machine, so that gaps revealed by a FIN or
		// RST are judged in the new state.
		o.ackReceived(1-i, relAck)
	}

	// CheckPIA_FirstPacket, with the is_orig computed before any flip.
	z.ep[z.roleIdx(isOrig)].flags |= zeFirstSeen

	relDataSeq := relSeq
	if syn {
		relDataSeq++
	}
	if length > 0 && !rst && !seqUnderflow {
		o.dataSent(i, relDataSeq, uint64(length), zeekPayloadCaptured(p))
	}

	if doClose {
		o.connectionClosed(i, genEvent)
	}
}

// zeekPayloadCaptured reports whether the whole TCP payload was captured
// (Zeek's caplen >= len). A frame cut by the snap length is taken to have
// lost payload.
func zeekPayloadCaptured(p *capture.Packet) bool {
	return p.CapLen == 0 || p.CapLen >= p.WireLen
}

// setPartialStatus is TCPSessionAdapter::SetPartialStatus.
func (o *zeekOp) setPartialStatus(f capture.Flags, isOrig bool) {
	syn, ack := f.Has(capture.FlagSYN), f.Has(capture.FlagACK)
	if isOrig {
		if !o.origEP().has(zeFirstSeen) {
			o.z.set(zcPartial, !syn || ack)
		}
	} else if !o.respEP().has(zeFirstSeen) && !o.z.has(zcPartial) {
		o.z.set(zcPartial, !syn)
	}
}

// initEndpoint is init_endpoint.
func (e *zeekEnd) initEndpoint(syn bool, firstSeq, lastSeq uint32) {
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
func (e *zeekEnd) initPeer(ackSeq uint32) {
	e.startSeq, e.ackSeq, e.lastSeq = ackSeq-1, ackSeq-1, ackSeq-1
}

// relativeSeq is get_relative_seq. A negative offset comes back
// sign-extended, as in Zeek, with underflow set.
func (e *zeekEnd) relativeSeq(cur, last, wraps uint32) (uint64, bool) {
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

// updateAckSeq is update_ack_seq with TCP_Endpoint::UpdateAckSeq, for
// endpoint j.
func (o *zeekOp) updateAckSeq(j int, ackSeq uint32) {
	e := &o.z.ep[j]
	delta := int32(ackSeq - e.ackSeq)
	if ackSeq == 0 && delta > zeekTooLargeSeqDelta {
		return // more likely a broken ack than a wrap onto 0
	}
	if delta > 0 {
		if ackSeq < e.ackSeq {
			o.rareLive(j).ackWraps++
		}
		e.ackSeq = ackSeq
	}
}

// setLastSeq is TCP_Endpoint::UpdateLastSeq, for endpoint i.
func (o *zeekOp) setLastSeq(i int, seq uint32) {
	e := &o.z.ep[i]
	if seq < e.lastSeq {
		o.rareLive(i).seqWraps++
	}
	e.lastSeq = seq
}

// updateLastSeq is update_last_seq, the source of the 't' letter.
func (o *zeekOp) updateLastSeq(i int, lastSeq uint32, f capture.Flags, length int64) int32 {
	e := &o.z.ep[i]
	delta := int32(lastSeq - e.lastSeq)
	switch {
	case f.Any(capture.FlagSYN|capture.FlagRST) && (delta > zeekTooLargeSeqDelta || delta < -zeekTooLargeSeqDelta):
		// Outlandish SYN/RST sequence numbers are not trusted.
	case f.Has(capture.FlagFIN) && e.lastSeq == e.startSeq+1:
		// Only the SYN and the FIN seen (perhaps a > 2 GB connection):
		// trust the FIN even if it goes backwards.
		o.setLastSeq(i, lastSeq)
	case e.state == ZeekReset:
		// Sequence numbers after a RST are not trusted.
	case delta > 0:
		o.setLastSeq(i, lastSeq)
	case length > 0:
		// delta <= 0 with payload: TCP_Endpoint::DidRxmit.
		r := o.rareEnd(i)
		o.scaled(i, 'T', &r.rxmtCnt, &r.rxmtThresh)
	}
	return delta
}

// updateWindow is the zero-window part of update_window: a zero window is not
// counted when it comes with or after a RST, or after the peer's FIN. (The
// window scale cannot turn a non-zero window into zero, so it is ignored.)
func (o *zeekOp) updateWindow(i int, window uint16, rst bool) {
	e, peer := &o.z.ep[i], &o.z.ep[1-i]
	if window == 0 && !rst && peer.state != ZeekClosed && e.state != ZeekReset {
		r := o.rareEnd(i)
		o.scaled(i, 'W', &r.win0Cnt, &r.win0Thresh)
	}
}

// updateStateMachine is TCPSessionAdapter::UpdateStateMachine.
func (o *zeekOp) updateStateMachine(i int, t int64, baseSeq uint32, length int64, deltaLast int32, isOrig bool, f capture.Flags) (doClose, genEvent bool) {
	switch o.z.ep[i].state {
	case ZeekInactive:
		return o.updateInactiveState(i, t, baseSeq, length, isOrig, f)
	case ZeekSynSent, ZeekSynAckSent:
		return o.updateSYNSentState(i, f)
	case ZeekEstablished, ZeekPartial:
		return o.updateEstablishedState(i, f)
	case ZeekClosed:
		return o.updateClosedState(i, f), false
	}
	return false, false // TCP_RESET: weirds only
}

// updateInactiveState is TCPSessionAdapter::UpdateInactiveState.
func (o *zeekOp) updateInactiveState(i int, t int64, baseSeq uint32, length int64, isOrig bool, f capture.Flags) (doClose, genEvent bool) {
	z := o.z
	e, peer := &z.ep[i], &z.ep[1-i]
	syn, ack := f.Has(capture.FlagSYN), f.Has(capture.FlagACK)
	if syn {
		if isOrig {
			if ack {
				o.setState(i, ZeekSynAckSent) // connection_originator_SYN_ack
			} else {
				o.setState(i, ZeekSynSent)
			}
			if o.tm != nil {
				o.addTimer(&o.tm.attemptAt, t+zeekAttemptDelay)
			}
		} else {
			if !ack && peer.state == ZeekSynAckSent && baseSeq == e.startSeq {
				// A SYN/SYN-ACK reversal: flip and establish.
				o.flipRoles()
				o.setState(1-i, ZeekEstablished)
				z.ep[z.roleIdx(true)].flags |= zeFirstSeen // SetFirstPacketSeen(true)
			}
			if peer.state == ZeekSynSent {
				o.setState(1-i, ZeekEstablished)
			}
			o.setState(i, ZeekEstablished)
		}
	}
	if f.Has(capture.FlagFIN) {
		o.setState(i, ZeekClosed)
		doClose, genEvent = true, true
	}
	if f.Has(capture.FlagRST) {
		o.setState(i, ZeekReset)
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
		case !isOrig && length == 0 && o.origEP().state == ZeekSynSent:
			// An ACK of the initial SYN ahead of the SYN-ACK: not partial.
		case ack && peer.state == ZeekEstablished:
			// The SYN was missed after a SYN-ACK: establish.
			o.setState(i, ZeekEstablished)
			z.set(zcPartial, false)
			z.ep[z.roleIdx(isOrig)].flags |= zeFirstSeen
		default:
			o.setState(i, ZeekPartial)
		}
	}
	return doClose, genEvent
}

// updateSYNSentState is TCPSessionAdapter::UpdateSYN_SentState.
func (o *zeekOp) updateSYNSentState(i int, f capture.Flags) (doClose, genEvent bool) {
	if f.Has(capture.FlagFIN) {
		o.setState(i, ZeekClosed)
		doClose, genEvent = true, true
	}
	if f.Has(capture.FlagRST) {
		o.setState(i, ZeekReset)
		o.setActive(false) // ConnectionReset
		doClose = true
	}
	return doClose, genEvent
}

// updateEstablishedState is TCPSessionAdapter::UpdateEstablishedState.
func (o *zeekOp) updateEstablishedState(i int, f capture.Flags) (doClose, genEvent bool) {
	e, peer := &o.z.ep[i], &o.z.ep[1-i]
	if f.Has(capture.FlagSYN) && e.state == ZeekPartial && peer.state == ZeekInactive && !f.Has(capture.FlagACK) {
		o.setState(i, ZeekSynSent) // SYN_after_partial
	}
	if f.Has(capture.FlagFIN) && !f.Has(capture.FlagRST) {
		o.setState(i, ZeekClosed)
		if peer.state == ZeekReset && peer.prevState == ZeekClosed {
			// The peer sent a FIN and then a RST: a normal close.
			o.setState(1-i, ZeekClosed)
		}
		doClose, genEvent = true, true
	}
	if f.Has(capture.FlagRST) {
		o.setState(i, ZeekReset)
		doClose = true
		if peer.state != ZeekReset || peer.prevState != ZeekEstablished {
			o.setActive(false) // ConnectionReset
		}
	}
	return doClose, genEvent
}

// updateClosedState is TCPSessionAdapter::UpdateClosedState: a RST after our
// FIN counts unless the peer has closed too. (The ResetTimer it may start
// needs a connection_reset handler and is not modelled.)
func (o *zeekOp) updateClosedState(i int, f capture.Flags) (doClose bool) {
	e, peer := &o.z.ep[i], &o.z.ep[1-i]
	if f.Has(capture.FlagRST) && peer.state != ZeekClosed {
		o.setState(i, ZeekReset)
		if !e.has(zeDidClose) {
			doClose = true
		}
	}
	return doClose
}

// connectionClosed is TCPSessionAdapter::ConnectionClosed (without the
// deferral while reassembled data is pending).
func (o *zeekOp) connectionClosed(i int, genEvent bool) {
	e, peer := &o.z.ep[i], &o.z.ep[1-i]
	if e.has(zeDidClose) {
		return
	}
	e.flags |= zeDidClose
	if e.state == ZeekReset || peer.has(zeDidClose) || peer.state == ZeekInactive {
		if (e.prevState != ZeekInactive || peer.state != ZeekInactive) && genEvent {
			o.setActive(false) // ConnectionFinished
		}
		o.cancelTimers()
		if tm := o.tm; tm != nil {
			tm.deleteAt = tm.lastTime + zeekCloseDelay // ConnDeleteTimer
		}
		return
	}
	if tm := o.tm; tm != nil && e.prevState != ZeekInactive {
		// Look for the other side closing too.
		o.addTimer(&tm.expireAt[1], tm.lastTime+zeekSessionTimer)
	}
}
