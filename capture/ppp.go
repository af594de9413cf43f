package capture

// PPP (RFC 1661): the link types PPP (9, optionally with the HDLC-like
// address and control bytes of RFC 1662), PPP in HDLC framing (50) and
// PPPoE without Ethernet (51), and the PPP inside PPPoE and PPTP's GRE.
const (
	pppAddressAll    = 0xff
	pppControlUI     = 0x03
	pppProtocolIPv4  = 0x0021
	pppProtocolIPv6  = 0x0057
	pppProtocolMPLS  = 0x0281
	pppHDLCHeaderLen = 2
)

// decodePPP decodes a PPP frame that may start with the address and
// control bytes.
func (d *Decoder) decodePPP(data []byte, p *Packet) outcome {
	if len(data) >= pppHDLCHeaderLen && data[0] == pppAddressAll && data[1] == pppControlUI {
		data = data[pppHDLCHeaderLen:]
	}
	return d.decodePPPProtocol(data, p)
}

// decodePPPProtocol decodes a PPP protocol field and what it names. The
// field may be compressed to one byte (RFC 1661 §6.5): protocol numbers
// are odd in their low byte and even in their high byte, so an odd first
// byte is a one-byte field.
func (d *Decoder) decodePPPProtocol(data []byte, p *Packet) outcome {
	if len(data) < 1 {
		return outcomeTruncatedLink
	}
	var protocol uint16
	if data[0]&1 != 0 {
		protocol, data = uint16(data[0]), data[1:]
	} else {
		if len(data) < 2 {
			return outcomeTruncatedLink
		}
		protocol, data = be16(data[0:2]), data[2:]
	}
	switch protocol {
	case pppProtocolIPv4:
		return d.decodeIPv4(data, p)
	case pppProtocolIPv6:
		return d.decodeIPv6(data, p)
	case pppProtocolMPLS:
		return d.decodeMPLS(data, p, false)
	}
	return outcomeNonIP // LCP, IPCP, CCP, ...
}
