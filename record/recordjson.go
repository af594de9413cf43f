package record

import (
	"math"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of r to dst and returns the extended
// buffer. The bytes are exactly those json.Marshal(r) produces (same field
// order and names, HTML-safe string escaping, encoding/json's float
// formatting, time.Time.MarshalJSON and netip.AddrPort.MarshalText
// semantics) but without reflection: it allocates nothing when dst has
// room (a record is typically under 2 KiB).
//
// Values json.Marshal rejects (NaN or infinite floats, times whose year is
// outside [0,9999] or whose zone offset is 24h or more) are not reported:
// AppendJSON writes them anyway, as strconv and time.Time.AppendFormat
// render them. New never produces such values.
func (r *Record) AppendJSON(dst []byte) []byte {
	b := dst
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, r.ID, 10)
	b = append(b, `,"client":`...)
	b = appendAddrPort(b, r.Client)
	b = append(b, `,"server":`...)
	b = appendAddrPort(b, r.Server)
	b = append(b, `,"family":`...)
	b = appendJSONString(b, r.Family)
	b = append(b, `,"vlan":`...)
	if r.VLAN == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, v := range r.VLAN {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(v), 10)
		}
		b = append(b, ']')
	}
	if len(r.Tunnel) > 0 { // omitempty
		b = append(b, `,"tunnel":[`...)
		for i := range r.Tunnel {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Tunnel[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"interface":`...)
	b = appendJSONString(b, r.Interface)
	b = append(b, `,"local":`...)
	b = appendJSONString(b, r.Local)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, string(r.Reason))
	b = append(b, `,"reason_text":`...)
	b = appendJSONString(b, r.ReasonText)
	b = append(b, `,"actor":`...)
	b = appendJSONString(b, r.Actor)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, r.State)
	b = append(b, `,"conn_state":`...)
	b = appendJSONString(b, r.ConnState)
	b = append(b, `,"history":`...)
	b = appendJSONString(b, r.History)
	b = append(b, `,"midstream":`...)
	b = strconv.AppendBool(b, r.Midstream)
	b = append(b, `,"first_seen":`...)
	b = appendTime(b, r.FirstSeen)
	b = append(b, `,"last_seen":`...)
	b = appendTime(b, r.LastSeen)
	b = append(b, `,"duration_s":`...)
	b = appendFloat(b, r.DurationS)
	b = append(b, `,"sensor":`...)
	b = appendJSONString(b, r.Sensor)
	b = append(b, `,"uid":`...)
	b = appendJSONString(b, r.UID)
	b = append(b, `,"community_id":`...)
	b = appendJSONString(b, r.CommunityID)

	b = appendPairU64(b, `,"packets":`, r.Packets)
	b = appendPairU64(b, `,"bytes":`, r.Bytes)
	b = appendPairU64(b, `,"ip_bytes":`, r.IPBytes)
	b = appendPairU32(b, `,"retransmissions":`, r.Retransmissions)
	b = appendPairU32(b, `,"fast_retransmissions":`, r.FastRetransmissions)
	b = appendPairU32(b, `,"spurious_retransmissions":`, r.SpuriousRetransmissions)
	b = appendPairU32(b, `,"out_of_order":`, r.OutOfOrder)
	b = appendPairU32(b, `,"dup_acks":`, r.DupAcks)
	b = appendPairU32(b, `,"zero_windows":`, r.ZeroWindows)
	b = appendPairU32(b, `,"window_probes":`, r.WindowProbes)
	b = appendPairU32(b, `,"keepalives":`, r.KeepAlives)
	b = appendPairU32(b, `,"resets":`, r.Resets)
	b = appendPairU32(b, `,"fins":`, r.FINs)
	b = appendPairU32(b, `,"syns":`, r.SYNs)
	b = appendPairU32(b, `,"window_full":`, r.WindowFull)
	b = appendPairU32(b, `,"previous_segment_not_captured":`, r.LostSegments)
	b = appendPairU32(b, `,"acked_unseen_segment":`, r.AckedUnseen)
	b = appendPairU32(b, `,"wireshark_keep_alives":`, r.WiresharkKeepAlives)
	b = appendPairU32(b, `,"wireshark_zero_window_probes":`, r.WiresharkZeroWinProbes)

	b = append(b, `,"rtt_ms":{"handshake":`...)
	b = appendFloat(b, r.RTTms.Handshake)
	b = append(b, `,"smoothed":`...)
	b = appendFloat(b, r.RTTms.Smoothed)
	b = append(b, `,"data":{"client":`...)
	b = appendFloat(b, r.RTTms.Data.Client)
	b = append(b, `,"server":`...)
	b = appendFloat(b, r.RTTms.Data.Server)
	b = append(b, `}}`...)

	b = append(b, `,"mss":{"client":`...)
	b = strconv.AppendUint(b, uint64(r.MSS.Client), 10)
	b = append(b, `,"server":`...)
	b = strconv.AppendUint(b, uint64(r.MSS.Server), 10)
	b = append(b, `},"wscale":{"client":`...)
	b = strconv.AppendInt(b, int64(r.WScale.Client), 10)
	b = append(b, `,"server":`...)
	b = strconv.AppendInt(b, int64(r.WScale.Server), 10)
	b = append(b, `},"end":`...)
	b = appendJSONString(b, r.End)
	if r.Risk != "" {
		b = append(b, `,"risk":`...)
		b = appendJSONString(b, r.Risk)
	}
	if !r.RiskSince.IsZero() {
		b = append(b, `,"risk_since":`...)
		b = appendTime(b, r.RiskSince)
	}
	b = append(b, '}')
	return b
}

func appendPairU64(b []byte, key string, p Pair[uint64]) []byte {
	b = append(b, key...)
	b = append(b, `{"client":`...)
	b = strconv.AppendUint(b, p.Client, 10)
	b = append(b, `,"server":`...)
	b = strconv.AppendUint(b, p.Server, 10)
	return append(b, '}')
}

func appendPairU32(b []byte, key string, p Pair[uint32]) []byte {
	b = append(b, key...)
	b = append(b, `{"client":`...)
	b = strconv.AppendUint(b, uint64(p.Client), 10)
	b = append(b, `,"server":`...)
	b = strconv.AppendUint(b, uint64(p.Server), 10)
	return append(b, '}')
}

// appendFloat formats f as encoding/json's floatEncoder does for float64:
// like ES6 number-to-string, 'f' unless the magnitude is below 1e-6 or at
// least 1e21, then 'e' with a one-digit negative exponent unpadded.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendTime writes t as time.Time.MarshalJSON does: quoted RFC 3339 with
// nanoseconds (trailing zeros dropped).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendAddrPort writes p as encoding/json writes its MarshalText: a JSON
// string, empty for the zero AddrPort.
func appendAddrPort(b []byte, p netip.AddrPort) []byte {
	if p.Addr().Zone() != "" {
		// A zone is free text and may need escaping; rare, so allocate.
		return appendJSONString(b, string(p.AppendTo(nil)))
	}
	// Without a zone the text is digits, hex, '.', ':', '[' and ']' only.
	b = append(b, '"')
	b = p.AppendTo(b)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// htmlSafe reports the ASCII bytes encoding/json (with HTML escaping, as
// json.Marshal and json.Encoder by default) writes unescaped in a string.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		switch c {
		case '"', '\\', '<', '>', '&':
		default:
			t[c] = true
		}
	}
	return t
}()

// appendJSONString writes s as a JSON string exactly as encoding/json's
// HTML-escaping encoder does: \" \\ \b \f \n \r \t, \u00XX for other
// control bytes and for < > &, \ufffd for invalid UTF-8, and \u2028 \u2029.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
