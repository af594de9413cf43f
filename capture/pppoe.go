package capture

// PPPoE session stage (RFC 2516): a 6-byte header after EtherType 0x8864,
// then a PPP protocol field. Discovery frames (0x8863) carry no IP.
const (
	etherTypePPPoESession = 0x8864
	pppoeHeaderLen        = 6
	pppoeVersionType      = 0x11
	pppoeCodeSession      = 0
)

func (d *Decoder) decodePPPoE(data []byte, p *Packet) outcome {
	if len(data) < pppoeHeaderLen {
		return outcomeTruncatedLink
	}
	if data[0] != pppoeVersionType || data[1] != pppoeCodeSession {
		return outcomeNonIP
	}
	payload := data[pppoeHeaderLen:]
	if n := int(be16(data[4:6])); n < len(payload) {
		payload = payload[:n] // the length excludes Ethernet padding
	}
	return d.decodePPPProtocol(payload, p)
}
