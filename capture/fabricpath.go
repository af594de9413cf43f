package capture

// Cisco FabricPath: the switch fabric's outer MAC addresses, EtherType
// 0x8903 and a 2-byte FTag/TTL field, then the host's classical Ethernet
// frame whole.
const (
	etherTypeFabricPath = 0x8903
	fabricPathTagLen    = 2
)

func (d *Decoder) decodeFabricPath(data []byte, p *Packet) outcome {
	if len(data) < fabricPathTagLen {
		return outcomeTruncatedLink
	}
	if !d.nest() {
		return outcomeTooDeep
	}
	return d.decodeEthernet(data[fabricPathTagLen:], p, false)
}
