package capture

// Cisco HDLC (LINKTYPE_C_HDLC, 104): address, control and an EtherType.
const chdlcHeaderLen = 4

func (d *Decoder) decodeCHDLC(data []byte, p *Packet) outcome {
	if len(data) < chdlcHeaderLen {
		return outcomeTruncatedLink
	}
	return d.decodeEtherType(be16(data[2:4]), data[chdlcHeaderLen:], p, false)
}
