package capture

// IEEE 802.3 frames, whose type field is a length, carry an 802.2 LLC
// header; IP travels in them with a SNAP extension (RFC 1042): DSAP and
// SSAP 0xAA, control 0x03, a zero OUI and the EtherType.
const (
	maxEthernetLength = 1500 // type fields up to this are 802.3 lengths
	llcHeaderLen      = 3
	snapHeaderLen     = 5
	llcSAPSNAP        = 0xaa
)

func (d *Decoder) decodeLLC(data []byte, p *Packet) outcome {
	if len(data) < llcHeaderLen {
		return outcomeTruncatedLink
	}
	if data[0] != llcSAPSNAP || data[1] != llcSAPSNAP {
		return outcomeNonIP // STP, NetBIOS, IPX, ...
	}
	data = data[llcHeaderLen:]
	if len(data) < snapHeaderLen {
		return outcomeTruncatedLink
	}
	if data[0] != 0 || data[1] != 0 || data[2] != 0 {
		return outcomeNonIP // an organisation's own protocol (CDP, ...)
	}
	return d.decodeEtherType(be16(data[3:5]), data[snapHeaderLen:], p, false)
}
