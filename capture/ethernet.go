package capture

// EtherType values the decoder follows (IEEE 802.3 / IANA).
const (
	etherTypeIPv4          = 0x0800
	etherTypeIPv6          = 0x86dd
	etherTypeDot1Q         = 0x8100 // 802.1Q customer VLAN tag
	etherTypeDot1AD        = 0x88a8 // 802.1ad service VLAN tag (QinQ outer tag)
	etherTypeQinQ9100      = 0x9100 // pre-standard QinQ outer tag
	etherTypeMPLSUnicast   = 0x8847
	etherTypeMPLSMulticast = 0x8848
)

const (
	ethernetHeaderLen = 14
	vlanTagLen        = 4
	mplsLabelLen      = 4
	// pwControlWordLen is the pseudowire control word (RFC 4385) that may
	// sit between the MPLS label stack and an Ethernet frame (RFC 4448).
	pwControlWordLen = 4
)

// decodeEthernet decodes an Ethernet II frame. insideMPLS is set for an
// Ethernet pseudowire payload, which may not nest another one.
func (d *Decoder) decodeEthernet(data []byte, p *Packet, insideMPLS bool) outcome {
	if len(data) < ethernetHeaderLen {
		return outcomeTruncatedLink
	}
	etherType := be16(data[12:14])
	if etherType <= maxEthernetLength {
		// An 802.3 length: what follows it beyond that many bytes is
		// padding up to the 60-byte minimum frame (or the FCS), not part
		// of the packet, as gopacket's Dot3 reads it too.
		payload := data[ethernetHeaderLen:]
		if int(etherType) < len(payload) {
			payload = payload[:etherType]
		}
		return d.decodeLLC(payload, p)
	}
	return d.decodeEtherType(etherType, data[ethernetHeaderLen:], p, insideMPLS)
}

// decodeEtherType decodes data, whose protocol is etherType, through any
// VLAN tags and MPLS labels down to IP. Ethernet, Linux SLL and SLL2 share
// it. The loop is bounded by the frame: every tag consumes four bytes.
func (d *Decoder) decodeEtherType(etherType uint16, data []byte, p *Packet, insideMPLS bool) outcome {
	for {
		switch etherType {
		case etherTypeIPv4:
			return d.decodeIPv4(data, p)
		case etherTypeIPv6:
			return d.decodeIPv6(data, p)
		case etherTypeDot1Q, etherTypeDot1AD, etherTypeQinQ9100:
			if len(data) < vlanTagLen {
				return outcomeTruncatedLink
			}
			// Packet has room for two tags, outermost first; deeper
			// tags are skipped (VLANCount stays at 2).
			if int(p.VLANCount) < len(p.VLAN) {
				p.VLAN[p.VLANCount] = be16(data[0:2]) & 0x0fff
				p.VLANCount++
			}
			etherType = be16(data[2:4])
			data = data[vlanTagLen:]
		case etherTypeMPLSUnicast, etherTypeMPLSMulticast:
			return d.decodeMPLS(data, p, insideMPLS)
		case etherTypeETag, etherTypeVNTag:
			// Port-extender tags: skipped like VLAN tags, not keyed.
			n := eTagLen
			if etherType == etherTypeVNTag {
				n = vnTagLen
			}
			if len(data) < n+2 {
				return outcomeTruncatedLink
			}
			etherType = be16(data[n : n+2])
			data = data[n+2:]
		case etherTypePPPoESession:
			return d.decodePPPoE(data, p)
		case etherTypePBB:
			return d.decodePBB(data, p)
		case etherTypeFabricPath:
			return d.decodeFabricPath(data, p)
		default:
			d.Stats.noteEtherType(etherType)
			return outcomeNonIP
		}
	}
}

// decodeMPLS skips an MPLS label stack (RFC 3032) up to the label with the
// bottom-of-stack bit and decodes what follows. MPLS does not say what it
// carries, so, like Zeek and gopacket, the first nibble decides: 4 is IPv4,
// 6 is IPv6. A first nibble of 0 is a pseudowire control word, after which
// an Ethernet frame is the only payload accepted (an Ethernet pseudowire,
// RFC 4448) and only one level deep. Anything else (nibble 1 is a
// G-ACh associated channel) is not IP.
func (d *Decoder) decodeMPLS(data []byte, p *Packet, insideMPLS bool) outcome {
	for {
		if len(data) < mplsLabelLen {
			return outcomeTruncatedLink
		}
		bottomOfStack := data[2]&0x01 != 0
		data = data[mplsLabelLen:]
		if bottomOfStack {
			break
		}
	}
	if len(data) == 0 {
		return outcomeTruncatedIP
	}
	switch data[0] >> 4 {
	case 4:
		return d.decodeIPv4(data, p)
	case 6:
		return d.decodeIPv6(data, p)
	case 0:
		if insideMPLS {
			return outcomeNonIP
		}
		if len(data) < pwControlWordLen {
			return outcomeTruncatedLink
		}
		return d.decodeEthernet(data[pwControlWordLen:], p, true)
	}
	return outcomeNonIP
}
