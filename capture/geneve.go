package capture

// Geneve (RFC 8926): an 8-byte header, variable-length options, then the
// payload named by an EtherType (Ethernet for AWS Gateway Load Balancer and
// most deployments, or IP directly).
const (
	geneveHeaderLen     = 8
	geneveVersion       = 0
	etherTypeTransEther = 0x6558 // transparent Ethernet bridging (RFC 1701)
)

func (d *Decoder) decodeGeneve(data []byte, p *Packet) outcome {
	if len(data) < geneveHeaderLen {
		return outcomeBadTunnel
	}
	if data[0]>>6 != geneveVersion {
		return d.unsupportedTunnel(unsupportedGeneveVersion)
	}
	headerLen := geneveHeaderLen + int(data[0]&0x3f)*4
	if len(data) < headerLen {
		return outcomeBadTunnel
	}
	if data[1]&0x80 != 0 {
		return outcomeNonTCP // O: a control message, no monitored traffic
	}
	vni := be32(data[4:8]) >> 8
	if !d.enterTunnel(p, TunnelGeneve, vni, true) {
		return outcomeTooDeep
	}
	return d.decodeTunnelPayload(be16(data[2:4]), data[headerLen:], p)
}

// decodeTunnelPayload decodes a tunnel payload named by an EtherType, as
// GRE and Geneve name it: an Ethernet frame or an IP packet (or MPLS).
func (d *Decoder) decodeTunnelPayload(etherType uint16, data []byte, p *Packet) outcome {
	if etherType == etherTypeTransEther {
		return d.decodeEthernet(data, p, false)
	}
	return d.decodeEtherType(etherType, data, p, false)
}
