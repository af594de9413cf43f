package capture

// GRE (RFC 2784 with the key and sequence number of RFC 2890, and the
// enhanced GRE of PPTP, RFC 2637). The protocol type is an EtherType:
// IPv4, IPv6, MPLS, transparent Ethernet bridging (0x6558, what Linux
// gretap and most remote-mirroring setups send), ERSPAN, or PPP for PPTP.
const (
	greHeaderLen      = 4
	greFlagChecksum   = 0x80 // C: checksum and reserved word present
	greFlagRouting    = 0x40 // R: RFC 1701 source route entries follow (obsolete)
	greFlagKey        = 0x20 // K: key present
	greFlagSequence   = 0x10 // S: sequence number present
	greFlagAck        = 0x80 // A (second byte, version 1): acknowledgment number present
	greVersionMask    = 0x07
	greVersion0       = 0
	greVersion1       = 1 // PPTP enhanced GRE
	etherTypeERSPAN   = 0x88be
	etherTypeERSPAN3  = 0x22eb
	etherTypePPP      = 0x880b
	greOptionalLength = 4
)

// decodeGRE decodes a GRE packet; typ is TunnelGRE, or TunnelGREUDP when
// it came in UDP.
func (d *Decoder) decodeGRE(data []byte, p *Packet, typ TunnelType) outcome {
	if len(data) < greHeaderLen {
		return outcomeBadTunnel
	}
	flags, version := data[0], data[1]&greVersionMask
	if flags&greFlagRouting != 0 {
		return d.unsupportedTunnel(unsupportedGRERouting)
	}
	if version > greVersion1 {
		return d.unsupportedTunnel(unsupportedGREVersion)
	}
	protocol := be16(data[2:4])
	offset := greHeaderLen
	if flags&greFlagChecksum != 0 {
		offset += greOptionalLength
	}
	var key uint32
	hasKey := flags&greFlagKey != 0
	if hasKey {
		if len(data) < offset+greOptionalLength {
			return outcomeBadTunnel
		}
		key = be32(data[offset : offset+4])
		offset += greOptionalLength
	}
	hasSequence := flags&greFlagSequence != 0
	if hasSequence {
		offset += greOptionalLength
	}
	if version == greVersion1 {
		// PPTP: the key holds the payload length and call ID; the
		// call ID is what names the session.
		if data[1]&greFlagAck != 0 {
			offset += greOptionalLength
		}
		key &= 0xffff
	}
	if len(data) < offset {
		return outcomeBadTunnel
	}
	if !d.enterTunnel(p, typ, key, hasKey) {
		return outcomeTooDeep
	}
	payload := data[offset:]
	switch protocol {
	case etherTypeERSPAN:
		if !hasSequence {
			// Type I has no ERSPAN header and no sequence
			// number: the mirrored frame follows GRE directly.
			setTunnelID(p, TunnelERSPAN1, 0, false)
			return d.decodeEthernet(payload, p, false)
		}
		return d.decodeERSPAN2(payload, p)
	case etherTypeERSPAN3:
		return d.decodeERSPAN3(payload, p)
	case etherTypePPP:
		return d.decodePPP(payload, p)
	}
	return d.decodeTunnelPayload(protocol, payload, p)
}
