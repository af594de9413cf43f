package reassembly

import "github.com/tcptap/tcptap/capture"

// Zeek's history string and conn_state: the letters each packet adds
// (update_history, the logarithmic c/g/t/w letters) and the state the
// endpoints' states give (conn.log's conn_state).

// updateHistory is update_history.
func (o *zeekOp) updateHistory(i int, f capture.Flags, relSeq uint64, length int64) {
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
			o.checkHistory(i, histFINRST, 'I')
		} else {
			o.checkHistory(i, histMultiFlag, 'Q')
		}
	case bits == 1:
		// Only one of these holds; the letter is added again only when
		// the sequence number differs from the last one of its kind.
		if syn {
			code := byte('S')
			if f.Has(capture.FlagACK) {
				code = 'H'
			}
			var last uint64
			if r := o.rareIf(); r != nil {
				last = r.ep[i].histLastSYN
			}
			if o.checkHistory(i, histSYN, code) && relSeq != last {
				o.addHistory(i, code)
			}
			if relSeq != last {
				o.rareEnd(i).histLastSYN = relSeq // zero, the usual value, needs no storage
			}
		}
		if fin {
			// A FIN's sequence number is at the end of its data.
			end := relSeq + uint64(length)
			c := o.closeState()
			if o.checkHistory(i, histFIN, 'F') && end != c.histLastFIN[i] {
				o.addHistory(i, 'F')
			}
			c.histLastFIN[i] = end
		}
		if rst {
			c := o.closeState()
			if o.checkHistory(i, histRST, 'R') && relSeq != c.histLastRST[i] {
				o.addHistory(i, 'R')
			}
			c.histLastRST[i] = relSeq
		}
	default:
		if length > 0 {
			o.checkHistory(i, histData, 'D')
		} else if f.Has(capture.FlagACK) {
			o.checkHistory(i, histAck, 'A')
		}
	}
}

// checkHistory is TCP_Endpoint::CheckHistory with Session::CheckHistory: the
// letter is added the first time its mask is seen in its direction. It
// reports whether the mask had been seen before.
func (o *zeekOp) checkHistory(i int, mask uint32, code byte) bool {
	if !o.isOrig(i) {
		mask <<= zeekRespMaskShift
		code = zeekLower(code)
	}
	if o.z.histSeen&mask == 0 {
		o.z.histSeen |= mask
		o.addRaw(code)
		return false
	}
	return true
}

// addHistory is TCP_Endpoint::AddHistory.
func (o *zeekOp) addHistory(i int, code byte) {
	if !o.isOrig(i) {
		code = zeekLower(code)
	}
	o.addRaw(code)
}

// scaled is Session::ScaledHistoryEntry: the letter is added when the counter
// reaches the threshold, which then grows tenfold.
func (o *zeekOp) scaled(i int, code byte, cnt, thresh *uint32) {
	if *thresh == 0 {
		*thresh = 1
	}
	*cnt++
	if *cnt != *thresh {
		return
	}
	o.addHistory(i, code)
	next := *thresh * zeekScaledHistoryBase
	if next <= *thresh {
		*cnt = 0 // wrapped: restart the count, keep the threshold
	} else {
		*thresh = next
	}
}

func (o *zeekOp) addRaw(c byte) {
	if n := int(o.z.histLen); n < zeekHistoryCap {
		o.histSet(n, c)
		o.z.histLen++
	}
}

// histAt returns history letter j (< histLen).
func (o *zeekOp) histAt(j int) byte {
	if j < zeekHistInline {
		return o.z.hist[j]
	}
	return o.rareIf().hist[j-zeekHistInline]
}

// histSet sets history letter j (< zeekHistoryCap).
func (o *zeekOp) histSet(j int, c byte) {
	if j < zeekHistInline {
		o.z.hist[j] = c
		return
	}
	if o.rareIf() == nil {
		o.rare = &o.t.rareExt(o.c).zeek
	}
	o.rare.hist[j-zeekHistInline] = c
}

// appendHistory appends the history letters to dst.
func (o *zeekOp) appendHistory(dst []byte) []byte {
	n := int(o.z.histLen)
	dst = append(dst, o.z.hist[:min(n, zeekHistInline)]...)
	if n > zeekHistInline {
		dst = append(dst, o.rareIf().hist[:n-zeekHistInline]...)
	}
	return dst
}

func zeekLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c - 'A' + 'a'
	}
	return c
}

// History returns Zeek's history string (e.g. "ShADadFf"; "^" when Zeek
// flipped the roles). It allocates; see AppendHistory.
func (z *ZeekTracker) History() string {
	var buf [zeekHistoryCap]byte
	return string(z.AppendHistory(buf[:0]))
}

// AppendHistory appends the history to dst.
func (z *ZeekTracker) AppendHistory(dst []byte) []byte {
	o := z.op()
	return o.appendHistory(dst)
}

// OrigIsFirst reports whether Zeek's originator is the endpoint that sent the
// first packet (false after a role flip).
func (z *ZeekTracker) OrigIsFirst() bool { return !z.core.has(zcFlipped) }

// OrigState returns the originator's endpoint state.
func (z *ZeekTracker) OrigState() ZeekEndpointState { return z.core.ep[z.core.origIdx()].state }

// RespState returns the responder's endpoint state.
func (z *ZeekTracker) RespState() ZeekEndpointState { return z.core.ep[1-z.core.origIdx()].state }

// OrigPkts returns conn.log's orig_pkts: packets from the originator that
// passed Zeek's checks (ConnSize analyzer).
func (z *ZeekTracker) OrigPkts() uint64 { return z.pkts[z.core.origIdx()] }

// RespPkts returns conn.log's resp_pkts.
func (z *ZeekTracker) RespPkts() uint64 { return z.pkts[1-z.core.origIdx()] }

// OrigIPBytes returns conn.log's orig_ip_bytes (IP total lengths).
func (z *ZeekTracker) OrigIPBytes() uint64 { return z.ipBytes[z.core.origIdx()] }

// RespIPBytes returns conn.log's resp_ip_bytes.
func (z *ZeekTracker) RespIPBytes() uint64 { return z.ipBytes[1-z.core.origIdx()] }

// OrigBytes returns conn.log's orig_bytes: the originator's payload size
// from sequence numbers (TCP_Endpoint::Size).
func (z *ZeekTracker) OrigBytes() uint64 {
	o := z.op()
	return o.size(z.core.origIdx())
}

// RespBytes returns conn.log's resp_bytes.
func (z *ZeekTracker) RespBytes() uint64 {
	o := z.op()
	return o.size(1 - z.core.origIdx())
}

// ConnState returns Zeek's conn_state: S0, S1, SF, REJ, S2, S3, RSTO, RSTOS0,
// RSTR, RSTRH, SH, SHR or OTH (conn_state() in
// scripts/base/protocols/conn/main.zeek).
func (z *ZeekTracker) ConnState() string {
	o := z.op()
	return o.connState()
}

func (o *zeekOp) connState() string {
	oi := o.z.origIdx()
	orig, resp := &o.z.ep[oi], &o.z.ep[1-oi]
	os, rs := orig.state, resp.state
	oInactive := os == ZeekInactive || os == ZeekPartial
	rInactive := rs == ZeekInactive || rs == ZeekPartial
	switch {
	case rs == ZeekReset:
		if os == ZeekSynSent || os == ZeekSynAckSent || (os == ZeekReset && o.size(oi) == 0 && o.size(1-oi) == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == ZeekReset:
		if rInactive {
			var buf [zeekHistoryCap]byte
			if zeekMatchRSTOS0(o.appendHistory(buf[:0])) {
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
