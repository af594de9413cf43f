package reassembly

import "github.com/tcptap/tcptap/capture"

// Window-scale states, as Wireshark keeps them: a shift count >= 0, or one of these.
const (
	wscaleUnknown = -1 // no SYN seen yet
	wscaleNone    = -2 // the handshake showed that scaling is not used
)

// Wireshark's per-direction tcp_analyze_seq_info (plus the fields of
// tcp_flow_t the analysis reads) lives in trackedEnd: nextSeq, nextSeqTime,
// lastAck, maxSeqToBeAcked, dupAckNum, winScale, efIsFirstAck and the two
// flags of the last segment the analysis reads (efLastKeepAlive,
// efLastZWP). As in Wireshark, a nextSeq, lastAck or maxSeqToBeAcked of 0
// means "unknown". Wireshark's lastAckTime is the direction's lastTime and
// its window the endpoint's (see wsWindow).

// windowUnknown is Wireshark's G_MAXUINT32 initial window: no segment seen.
const windowUnknown = ^uint32(0)

// wsWindow is the raw window of e's last segment as Wireshark keeps it:
// windowUnknown before the first. (The endpoint's window is updated after
// the analysis, so during it this is the previous segment's.)
func wsWindow(e *trackedEnd) uint32 {
	if !e.has(efSentAny) {
		return windowUnknown
	}
	return uint32(e.window)
}

// Sequence-space comparisons with 32-bit wraparound (RFC 1982).
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }
func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }

// segLen is the sequence space a segment occupies.
func segLen(p *capture.Packet) uint32 {
	n := p.PayloadLen
	if p.Flags.Any(capture.FlagSYN | capture.FlagFIN) {
		n++
	}
	return n
}

const (
	fastRetransmitWindow = 20_000_000 // 20 ms, Wireshark's fast-retransmission window
	defaultOOOThreshold  = 3_000_000  // 3 ms when the handshake RTT is unknown
)

// analyze runs Wireshark's tcp_analyze_sequence_number for segment p sent in
// the fwd direction, updating fwd and rev, and returns the segment's flags.
// firstRTT is the handshake RTT (0 when unknown), Wireshark's ts_first_rtt.
// The order of the checks and their quirks are Wireshark's; see docs/wire.md.
func analyze(fwd, rev *trackedEnd, p *capture.Packet, firstRTT int64) Analysis {
	var a Analysis
	seq, ack, seglen, flags, ts := p.Seq, p.Ack, p.PayloadLen, p.Flags, p.Timestamp
	window := uint32(p.Window)
	fwdWindow, revWindow := wsWindow(fwd), wsWindow(rev)
	const synFinRst = capture.FlagSYN | capture.FlagFIN | capture.FlagRST

	if seglen == 1 && seq == fwd.nextSeq && revWindow == 0 {
		a |= ZeroWindowProbe
		goto finishedFwd
	}
	if window == 0 && !flags.Any(synFinRst) {
		a |= ZeroWindow
	}
	if fwd.nextSeq != 0 && seqGT(seq, fwd.nextSeq) && !flags.Any(capture.FlagRST) {
		a |= LostSegment
	}
	if (seglen == 0 || seglen == 1) && seq == fwd.nextSeq-1 && !flags.Any(synFinRst) {
		a |= KeepAlive
	}
	if seglen == 0 && window != 0 && window != fwdWindow && seq == fwd.nextSeq &&
		ack == fwd.lastAck && !flags.Any(synFinRst) {
		a |= WindowUpdate
	}
	if seglen > 0 && rev.winScale != wscaleUnknown && !flags.Any(synFinRst) {
		shift := uint(0)
		if !rev.has(efIsFirstAck) && rev.winScale > 0 {
			shift = uint(rev.winScale)
		}
		if seq+seglen == rev.lastAck+revWindow<<shift {
			a |= WindowFull
		}
	}
	if seglen == 0 && window != 0 && window == fwdWindow && seq == fwd.nextSeq &&
		ack == fwd.lastAck && rev.has(efLastKeepAlive) && !flags.Any(synFinRst) {
		a |= KeepAliveAck
		goto finishedFwd
	}
	if seglen == 0 && window == 0 && window == fwdWindow && seq == fwd.nextSeq &&
		ack == fwd.lastAck && rev.has(efLastZWP) && !flags.Any(synFinRst) {
		a |= ZeroWindowProbeAck
		goto finishedFwd
	}
	if seglen == 0 && window != 0 && window == fwdWindow && seq == fwd.nextSeq &&
		ack == fwd.lastAck && !flags.Any(synFinRst) {
		if fwd.dupAckNum == -1 {
			fwd.dupAckNum = 1
		} else {
			fwd.dupAckNum++
		}
		a |= DupAck
	}

finishedFwd:
	if ack != fwd.lastAck {
		fwd.dupAckNum = 0
	}
	if rev.maxSeqToBeAcked != 0 && seqGT(ack, rev.maxSeqToBeAcked) && flags.Has(capture.FlagACK) {
		if seqLT(rev.maxSeqToBeAcked, rev.nextSeq) {
			rev.maxSeqToBeAcked = rev.nextSeq
			a |= AckedUnseen
		} else {
			if rev.dupAckNum == 0 {
				a |= AckedUnseen
			}
			rev.dupAckNum = -1
		}
	}

	if (seglen > 0 || flags.Any(capture.FlagSYN|capture.FlagFIN)) && a&KeepAlive == 0 {
		seqNotAdvanced := fwd.nextSeq != 0 && seqLT(seq, fwd.nextSeq)
		if seglen > 1 && fwd.nextSeq-1 == seq {
			seqNotAdvanced = false
		}
		switch {
		case seglen > 0 && rev.lastAck != 0 && seqLE(seq+seglen, rev.lastAck):
			a |= SpuriousRetransmission
		case seqNotAdvanced && rev.dupAckNum >= 2 && rev.lastAck == seq && sinceUnsigned(ts, rev.lastTime) < fastRetransmitWindow:
			a |= FastRetransmission
		case seqNotAdvanced && sinceUnsigned(ts, fwd.nextSeqTime) < oooThreshold(firstRTT) &&
			fwd.nextSeq != seq+seglen+boolU32(flags.Any(capture.FlagSYN|capture.FlagFIN)):
			a |= OutOfOrder
		case seqNotAdvanced:
			a |= Retransmission
		}
	}

	{
		nextSeq := seq + seglen
		if flags.Any(capture.FlagSYN | capture.FlagFIN) {
			nextSeq++
		}
		if (seqGT(nextSeq, fwd.nextSeq) || fwd.nextSeq == 0) && a&ZeroWindowProbe == 0 {
			fwd.nextSeq = nextSeq
			fwd.nextSeqTime = ts
		}
		if (seq == fwd.maxSeqToBeAcked || fwd.maxSeqToBeAcked == 0) && a&ZeroWindowProbe == 0 {
			fwd.maxSeqToBeAcked = fwd.nextSeq
		}
	}
	fwd.lastAck = ack
	fwd.set(efLastKeepAlive, a&KeepAlive != 0)
	fwd.set(efLastZWP, a&ZeroWindowProbe != 0)
	return a
}

// sinceUnsigned is ts-ref as Wireshark computes it, in unsigned 64-bit
// arithmetic: a segment timestamped before its reference (capture clock
// steps, merged files) is never "within" a threshold.
func sinceUnsigned(ts, ref int64) uint64 { return uint64(ts - ref) }

func oooThreshold(firstRTT int64) uint64 {
	if firstRTT == 0 {
		return defaultOOOThreshold
	}
	return uint64(firstRTT)
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// noteSYN records a SYN's window-scale option the way Wireshark's
// dissect_tcp and verify_tcp_window_scaling do.
func noteSYN(fwd, rev *trackedEnd, p *capture.Packet) {
	fwd.flags |= efIsFirstAck
	if p.OptionsTruncated && p.Options.WScale < 0 {
		// The capture cut the options before any window scale: whether
		// it was offered is unknown, as in Wireshark, whose dissector
		// stops at the cut before verifying the scaling.
		return
	}
	if p.Options.WScale >= 0 {
		ws := p.Options.WScale
		if ws > 14 {
			ws = 14
		}
		fwd.winScale = ws
	}
	synAck := p.Flags.Has(capture.FlagACK)
	switch {
	case fwd.winScale == wscaleUnknown:
		fwd.winScale, rev.winScale = wscaleNone, wscaleNone
	case synAck && rev.winScale == wscaleNone:
		fwd.winScale = wscaleNone
	}
}
