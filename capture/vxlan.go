package capture

// VXLAN (RFC 7348): an 8-byte header, then an Ethernet frame. AWS VPC
// Traffic Mirroring and Azure virtual network TAP deliver mirrored traffic
// this way, the VNI naming the mirror session.
const (
	vxlanHeaderLen = 8
	vxlanFlagVNI   = 0x08 // I: the VNI is valid
)

func (d *Decoder) decodeVXLAN(data []byte, p *Packet) outcome {
	if len(data) < vxlanHeaderLen {
		return outcomeBadTunnel
	}
	if data[0]&vxlanFlagVNI == 0 {
		return d.unsupportedTunnel(unsupportedVXLANFlags) // RFC 7348 §5: must be set; GPE and GBP variants set other bits
	}
	vni := be32(data[4:8]) >> 8
	if !d.enterTunnel(p, TunnelVXLAN, vni, true) {
		return outcomeTooDeep
	}
	return d.decodeEthernet(data[vxlanHeaderLen:], p, false)
}
