package capture

// TCP header (RFC 9293) and the options tcptap tracks.
const (
	tcpMinHeaderLen = 20
	tcpMaxHeaderLen = 60

	tcpOptionEnd           = 0
	tcpOptionNop           = 1
	tcpOptionMSS           = 2 // RFC 9293
	tcpOptionWindowScale   = 3 // RFC 7323
	tcpOptionSACKPermitted = 4 // RFC 2018
	tcpOptionSACK          = 5 // RFC 2018
	tcpOptionTimestamps    = 8 // RFC 7323

	tcpOptionMSSLen           = 4
	tcpOptionWindowScaleLen   = 3
	tcpOptionSACKPermittedLen = 2
	tcpOptionTimestampsLen    = 10
	tcpSACKBlockLen           = 8

	// tcpMaxWindowScale is the largest shift RFC 7323 §2.3 allows; larger
	// values must be used as 14, which is what receivers do.
	tcpMaxWindowScale = 14
)

// decodeTCP decodes the TCP header at the start of segment into p.
// segment holds the captured bytes of the segment (possibly cut by the snap
// length); segmentLen is the segment's length according to the IP header,
// from which PayloadLen is computed.
func (d *Decoder) decodeTCP(segment []byte, segmentLen int, p *Packet) outcome {
	if segmentLen < tcpMinHeaderLen {
		return outcomeBadTCPHeader
	}
	if len(segment) < tcpMinHeaderLen {
		return outcomeTruncatedTCP
	}
	headerLen := int(segment[12]>>4) * 4
	if headerLen < tcpMinHeaderLen || headerLen > segmentLen {
		return outcomeBadTCPHeader
	}
	// A snap length can cut the options after the fixed header (a 68-byte
	// snap length leaves 14 bytes of a 40-byte SYN header on Ethernet).
	// The fixed header still says everything the connection's state needs,
	// so the segment is kept, with the options that were captured whole
	// and OptionsTruncated set; dropping it would lose a SYN.
	captured := headerLen
	if len(segment) < headerLen {
		captured = len(segment)
		p.OptionsTruncated = true
		d.Stats.TruncatedTCPOptions++
	}

	p.SrcPort = be16(segment[0:2])
	p.DstPort = be16(segment[2:4])
	p.Seq = be32(segment[4:8])
	p.Ack = be32(segment[8:12])
	p.Flags = Flags(segment[13]) | Flags(segment[12]&0x01)<<8
	p.Window = be16(segment[14:16])
	p.Checksum = be16(segment[16:18])
	p.Urgent = be16(segment[18:20])
	p.TCPHdrLen = uint8(headerLen)
	p.PayloadLen = uint32(segmentLen - headerLen)
	if !parseTCPOptions(segment[tcpMinHeaderLen:captured], &p.Options) && !p.OptionsTruncated {
		d.Stats.BadTCPOption++
	}
	return outcomeTCP
}

// parseTCPOptions parses the option area into o and reports whether it was
// well formed. Parsing stops at the end-of-list option or at an option whose
// length cannot be followed, keeping what was parsed before it, as receivers
// do. A known option with the wrong length is skipped (its length can still
// be followed) and makes the list malformed.
func parseTCPOptions(options []byte, o *TCPOptions) bool {
	*o = TCPOptions{WScale: -1}
	wellFormed := true
	for len(options) > 0 {
		kind := options[0]
		if kind == tcpOptionEnd {
			break
		}
		if kind == tcpOptionNop {
			options = options[1:]
			continue
		}
		if len(options) < 2 {
			return false
		}
		length := int(options[1])
		if length < 2 || length > len(options) {
			return false
		}
		option := options[:length]
		options = options[length:]
		switch kind {
		case tcpOptionMSS:
			if length != tcpOptionMSSLen {
				wellFormed = false
				continue
			}
			o.MSS = be16(option[2:4])
		case tcpOptionWindowScale:
			if length != tcpOptionWindowScaleLen {
				wellFormed = false
				continue
			}
			o.WScale = int8(min(option[2], tcpMaxWindowScale))
		case tcpOptionSACKPermitted:
			if length != tcpOptionSACKPermittedLen {
				wellFormed = false
				continue
			}
			o.SACKPermitted = true
		case tcpOptionSACK:
			if (length-2)%tcpSACKBlockLen != 0 || length == 2 {
				wellFormed = false
				continue
			}
			o.SACKBlocks = uint8((length - 2) / tcpSACKBlockLen)
		case tcpOptionTimestamps:
			if length != tcpOptionTimestampsLen {
				wellFormed = false
				continue
			}
			o.HasTimestamp = true
			o.TSVal = be32(option[2:6])
			o.TSEcr = be32(option[6:10])
		}
	}
	return wellFormed
}
