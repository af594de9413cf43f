package capture

// IPv6 header (RFC 8200) and the extension headers the decoder walks.
const (
	ipv6HeaderLen = 40

	ipv6HopByHop    = 0
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6AH          = 51 // IPsec authentication header (RFC 4302)
	ipv6DestOptions = 60

	ipv6FragmentHeaderLen = 8
	// ipv6JumboOption is the hop-by-hop Jumbo Payload option (RFC 2675).
	ipv6JumboOption    = 0xc2
	ipv6JumboOptionLen = 4

	// maxIPv6JumboLength keeps lengths within an int32 (and the uint32
	// Packet fields) on every platform; no link carries a 2 GiB packet.
	maxIPv6JumboLength = 1<<31 - 1 - ipv6HeaderLen

	// maxIPv6ExtensionHeaders bounds the chain. RFC 8200 §4.1 orders the
	// headers with each at most once (destination options twice), so a
	// valid packet has fewer than this.
	maxIPv6ExtensionHeaders = 8
)

// decodeIPv6 decodes an IPv6 packet, skipping extension headers, and the TCP
// segment it carries.
//
// A payload length of 0 is either a jumbogram (the length is then in the
// hop-by-hop Jumbo Payload option) or, without that option, what a capture
// on a host sending Linux BIG TCP / GSO segments shows; the captured length
// stands in then, as for IPv4 with TSO. Fragments of TCP datagrams are
// reassembled in the decoder's fragment table (see frag.go), so a segment
// split across fragments has its whole length. An atomic fragment header
// (offset 0, no more fragments) is not a fragment and is simply skipped.
func (d *Decoder) decodeIPv6(data []byte, p *Packet) outcome {
	if len(data) < ipv6HeaderLen {
		return outcomeTruncatedIP
	}
	if data[0]>>4 != 6 {
		return outcomeBadIPHeader
	}
	p.IPOffset = uint16(int(p.CapLen) - len(data))
	nextHeader := data[6]
	payloadLen := int(be16(data[4:6]))
	if payloadLen == 0 {
		if jumbo, ok := ipv6JumboLength(data, nextHeader); !ok {
			payloadLen = len(data) - ipv6HeaderLen
		} else if jumbo <= 0xffff || jumbo > maxIPv6JumboLength {
			// RFC 2675 §3: a jumbo length must exceed 65535.
			return outcomeBadIPHeader
		} else {
			payloadLen = int(jumbo)
		}
	}

	p.Family = IPv6
	copy(p.Src[:], data[8:24])
	copy(p.Dst[:], data[24:40])
	p.TTL = data[7]
	p.IPLen = uint32(ipv6HeaderLen + payloadLen)

	end := ipv6HeaderLen + payloadLen // end of the packet by its header
	if onWire := onWireLen(data, p); end > onWire {
		end = onWire // believe the header only as far as the wire length goes
	}
	packet := data[:min(end, len(data))] // its captured bytes, without link padding
	offset := ipv6HeaderLen
	for headers := 0; ; headers++ {
		if nextHeader == ipProtocolTCP {
			break
		}
		if headers == maxIPv6ExtensionHeaders {
			return outcomeBadIPHeader
		}
		var headerLen int
		switch nextHeader {
		case ipv6HopByHop, ipv6Routing, ipv6DestOptions, ipv6AH:
			// Hosts only accept hop-by-hop right after the IPv6
			// header (Linux answers a later one with a parameter
			// problem), so neither do we.
			if nextHeader == ipv6HopByHop && headers != 0 {
				return outcomeBadIPHeader
			}
			if o, ok := ipv6HeaderFits(offset+2, end, len(packet)); !ok {
				return o
			}
			if nextHeader == ipv6AH {
				headerLen = (int(packet[offset+1]) + 2) * 4
			} else {
				headerLen = (int(packet[offset+1]) + 1) * 8
			}
		case ipv6Fragment:
			headerLen = ipv6FragmentHeaderLen
			if o, ok := ipv6HeaderFits(offset+headerLen, end, len(packet)); !ok {
				return o
			}
			fragment := be16(packet[offset+2 : offset+4])
			fragmentOffset, moreFragments := int(fragment>>3)*8, fragment&1 != 0
			if fragmentOffset != 0 || moreFragments {
				// Every fragment's header names the first header
				// of the fragmentable part: TCP, or not for us.
				if packet[offset] != ipProtocolTCP {
					return outcomeNonTCP
				}
				p.IPHdrLen = uint16(offset) // the unfragmentable part
				data := packet[offset+headerLen:]
				return d.addIPv6Fragment(data, end-offset-headerLen, fragmentOffset, moreFragments,
					be32(packet[offset+4:offset+8]), p)
			}
		default:
			// UDP, ICMPv6, ESP (encrypted), no next header, and
			// the rarely seen mobility/HIP/shim6 headers.
			return outcomeNonTCP
		}
		if o, ok := ipv6HeaderFits(offset+headerLen, end, len(packet)); !ok {
			return o
		}
		nextHeader = packet[offset]
		offset += headerLen
	}
	p.IPHdrLen = uint16(offset)
	return d.decodeTCP(packet[offset:], end-offset, p)
}

// ipv6HeaderFits reports whether a header ending at need lies within the
// packet's length by its header (end) and within the captured bytes, and
// if not, which of the two it overran.
func ipv6HeaderFits(need, end, captured int) (outcome, bool) {
	if need > end {
		return outcomeBadIPHeader, false
	}
	if need > captured {
		return outcomeTruncatedIP, false
	}
	return 0, true
}

// ipv6JumboLength returns the Jumbo Payload length of a packet whose first
// extension header is hop-by-hop, if it carries the option. The length
// counts the bytes after the IPv6 header, the hop-by-hop header included.
func ipv6JumboLength(data []byte, nextHeader uint8) (uint32, bool) {
	if nextHeader != ipv6HopByHop || len(data) < ipv6HeaderLen+2 {
		return 0, false
	}
	hbh := data[ipv6HeaderLen:]
	hbh = hbh[:min(len(hbh), (int(hbh[1])+1)*8)]
	for i := 2; i < len(hbh); {
		kind := hbh[i]
		if kind == 0 { // Pad1
			i++
			continue
		}
		if i+1 >= len(hbh) {
			break
		}
		optLen := int(hbh[i+1])
		if kind == ipv6JumboOption && optLen == ipv6JumboOptionLen && i+2+optLen <= len(hbh) {
			return be32(hbh[i+2 : i+6]), true
		}
		i += 2 + optLen
	}
	return 0, false
}
