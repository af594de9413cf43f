package capture

// IPv4 header (RFC 791).
const (
	ipv4MinHeaderLen = 20
	ipProtocolTCP    = 6

	ipv4FlagMoreFragments = 0x2000
	ipv4FragOffsetMask    = 0x1fff

	ipv4OptionEnd  = 0
	ipv4OptionNop  = 1
	ipv4OptionLSRR = 0x83 // loose source and record route
	ipv4OptionSSRR = 0x89 // strict source and record route
	// ipv4RouteFirst is the smallest route pointer (1-based, pointing
	// past type, length and pointer); ipv4RouteMinLen is a route option
	// with one address.
	ipv4RouteFirst  = 4
	ipv4RouteMinLen = 3 + 4
)

// decodeIPv4 decodes an IPv4 packet and the TCP segment it carries.
//
// Lengths come from the header, not from the captured bytes: a snap length
// may cut the payload (or even the end of the TCP header, which is then
// TruncatedTCP), and Ethernet padding may extend past the datagram. A total
// length of 0 is what a capture on a host doing TCP segmentation offload
// shows for its large outgoing segments, so the captured length stands in.
// Of the options only a source route is read (see ipv4RouteDestination);
// the others are not parsed or validated and the header checksum is not
// checked: a passive tap has no use for them.
func (d *Decoder) decodeIPv4(data []byte, p *Packet) outcome {
	if len(data) < ipv4MinHeaderLen {
		return outcomeTruncatedIP
	}
	if data[0]>>4 != 4 {
		return outcomeBadIPHeader
	}
	p.IPOffset = uint16(d.offsetOf(data))
	headerLen := int(data[0]&0x0f) * 4
	if headerLen < ipv4MinHeaderLen {
		return outcomeBadIPHeader
	}
	if len(data) < headerLen {
		return outcomeTruncatedIP
	}
	totalLen := int(be16(data[2:4]))
	if totalLen == 0 {
		totalLen = len(data)
	}
	if totalLen < headerLen {
		return outcomeBadIPHeader
	}

	p.Family = IPv4
	copy(p.Src[:4], data[12:16])
	copy(p.Dst[:4], data[16:20])
	if headerLen > ipv4MinHeaderLen {
		if dst, ok := ipv4RouteDestination(data[ipv4MinHeaderLen:headerLen]); ok {
			copy(p.Dst[:4], dst)
		}
	}
	p.IPID = be16(data[4:6])
	p.TTL = data[8]
	p.IPHdrLen = uint16(headerLen)
	p.IPLen = uint32(totalLen)
	// A header that claims more than was on the wire (a corrupt length, or
	// a capture that cut the frame before the writer recorded it) is
	// believed only as far as the wire length goes, as Wireshark does.
	if onWire := d.onWireLen(data, p); totalLen > onWire {
		totalLen = onWire
		if totalLen < headerLen {
			return outcomeTruncatedIP
		}
	}

	protocol := data[9]
	// The datagram's bytes that were captured, without link padding.
	datagram := data[:min(totalLen, len(data))]
	if fragment := be16(data[6:8]); fragment&(ipv4FlagMoreFragments|ipv4FragOffsetMask) != 0 {
		if protocol != ipProtocolTCP {
			if fragment&ipv4FragOffsetMask == 0 {
				return d.decodeFirstTunnelFragment(protocol, datagram[headerLen:], p)
			}
			return outcomeNonTCP
		}
		return d.addIPv4Fragment(datagram[headerLen:], totalLen-headerLen,
			int(fragment&ipv4FragOffsetMask)*8, fragment&ipv4FlagMoreFragments != 0, p)
	}
	if protocol != ipProtocolTCP {
		return d.decodeIPPayload(protocol, datagram[headerLen:], p)
	}
	return d.decodeTCP(datagram[headerLen:], totalLen-headerLen, p)
}

// ipv4RouteDestination returns the final destination of a datagram whose
// options carry a loose or strict source route that is not finished yet:
// the header's destination is then only the next hop, and the route's last
// address is where the datagram goes. The TCP checksum's pseudo-header
// covers that final destination (RFC 791 section 3.1, RFC 9293 section
// 3.1), and it is the endpoint that answers, so the connection is keyed on
// it; keying on the next hop would make each hop of the route a connection
// of its own. A route whose pointer is past its end has been followed to
// the end: the header's destination is final. Malformed options end the
// walk with no route found.
func ipv4RouteDestination(options []byte) ([]byte, bool) {
	for len(options) > 0 {
		kind := options[0]
		switch kind {
		case ipv4OptionEnd:
			return nil, false
		case ipv4OptionNop:
			options = options[1:]
			continue
		}
		if len(options) < 2 {
			return nil, false
		}
		length := int(options[1])
		if length < 2 || length > len(options) {
			return nil, false
		}
		if kind == ipv4OptionLSRR || kind == ipv4OptionSSRR {
			if length < ipv4RouteMinLen || (length-3)%4 != 0 {
				return nil, false
			}
			if pointer := int(options[2]); pointer < ipv4RouteFirst || pointer > length {
				return nil, false
			}
			return options[length-4 : length], true
		}
		options = options[length:]
	}
	return nil, false
}

// IPv4HeaderChecksum returns the RFC 791 checksum of the IPv4 header h
// whose checksum field is zero (the writers of synthetic and exported
// packets fill it in; the decoder does not check it, as capture offload
// often leaves it wrong).
func IPv4HeaderChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
