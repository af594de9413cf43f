package capture

// ERSPAN, Cisco's remote SPAN over GRE (draft-foschiano-erspan). Type II
// is an 8-byte header after a GRE header with a sequence number; type III
// a 12-byte one (plus an 8-byte platform sub-header when O is set) under
// its own GRE protocol type. Both carry the mirror session ID, which the
// tunnel description reports instead of the GRE key.
const (
	erspan2HeaderLen      = 8
	erspan3HeaderLen      = 12
	erspan3PlatformLen    = 8
	erspanVersion2        = 1 // type II
	erspanVersion3        = 2 // type III
	erspanSessionMask     = 0x03ff
	erspan3FlagPlatform   = 0x01 // O: platform-specific sub-header present
	erspan3FrameEthernet  = 0
	erspan3FrameIP        = 2
	erspan3FrameTypeShift = 10
	erspan3FrameTypeMask  = 0x1f
)

func (d *Decoder) decodeERSPAN2(data []byte, p *Packet) outcome {
	if len(data) < erspan2HeaderLen {
		return outcomeBadTunnel
	}
	if data[0]>>4 != erspanVersion2 {
		return d.unsupportedTunnel(unsupportedERSPANVersion)
	}
	setTunnelID(p, TunnelERSPAN2, uint32(be16(data[2:4])&erspanSessionMask), true)
	return d.decodeEthernet(data[erspan2HeaderLen:], p, false)
}

func (d *Decoder) decodeERSPAN3(data []byte, p *Packet) outcome {
	if len(data) < erspan3HeaderLen {
		return outcomeBadTunnel
	}
	if data[0]>>4 != erspanVersion3 {
		return d.unsupportedTunnel(unsupportedERSPANVersion)
	}
	setTunnelID(p, TunnelERSPAN3, uint32(be16(data[2:4])&erspanSessionMask), true)
	offset := erspan3HeaderLen
	flags := data[11]
	if flags&erspan3FlagPlatform != 0 {
		offset += erspan3PlatformLen
		if len(data) < offset {
			return outcomeBadTunnel
		}
	}
	switch (be16(data[10:12]) >> erspan3FrameTypeShift) & erspan3FrameTypeMask {
	case erspan3FrameEthernet:
		return d.decodeEthernet(data[offset:], p, false)
	case erspan3FrameIP:
		return d.decodeIP(data[offset:], p)
	}
	return d.unsupportedTunnel(unsupportedERSPANFrameType)
}
