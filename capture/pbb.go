package capture

// IEEE 802.1ah provider backbone bridging (EtherType 0x88E7): a 4-byte
// I-tag (service instance) and the customer's MAC addresses, then the
// customer frame's EtherType and any customer VLAN tags.
const (
	etherTypePBB = 0x88e7
	pbbITagLen   = 4
)

func (d *Decoder) decodePBB(data []byte, p *Packet) outcome {
	if len(data) < pbbITagLen {
		return outcomeTruncatedLink
	}
	if !d.nest() {
		return outcomeTooDeep
	}
	return d.decodeEthernet(data[pbbITagLen:], p, false)
}
