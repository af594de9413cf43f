package capture

// GTP-U version 1 (3GPP TS 29.281): the user-plane tunnel of mobile
// networks. Only G-PDUs carry user packets (IP); echo and error messages
// do not.
const (
	gtpuHeaderLen      = 8
	gtpuOptionalLen    = 4 // sequence number, N-PDU number, next extension type
	gtpuVersion1       = 1
	gtpuMessageGPDU    = 0xff
	gtpuFlagProtocol   = 0x10 // PT: GTP (1), not GTP' (0)
	gtpuFlagsOptional  = 0x07 // E, S, PN: the optional word is present
	gtpuFlagExtensions = 0x04
	// gtpuMaxExtensions bounds the extension-header chain.
	gtpuMaxExtensions = 16
)

func (d *Decoder) decodeGTPU(data []byte, p *Packet) outcome {
	if len(data) < gtpuHeaderLen {
		return outcomeBadTunnel
	}
	flags := data[0]
	if flags>>5 != gtpuVersion1 || flags&gtpuFlagProtocol == 0 {
		return d.unsupportedTunnel(unsupportedGTPVersion)
	}
	if data[1] != gtpuMessageGPDU {
		return outcomeNonTCP
	}
	teid := be32(data[4:8])
	// The length counts the bytes after the mandatory header.
	end := gtpuHeaderLen + int(be16(data[2:4]))
	if end < len(data) {
		data = data[:end]
	}
	offset := gtpuHeaderLen
	if flags&gtpuFlagsOptional != 0 {
		offset += gtpuOptionalLen
		if len(data) < offset {
			return outcomeBadTunnel
		}
		if flags&gtpuFlagExtensions != 0 {
			next := data[offset-1]
			for i := 0; next != 0; i++ {
				if i == gtpuMaxExtensions || len(data) < offset+1 {
					return outcomeBadTunnel
				}
				n := int(data[offset]) * 4 // length in 4-byte units, including itself and the next type
				if n == 0 || len(data) < offset+n {
					return outcomeBadTunnel
				}
				next = data[offset+n-1]
				offset += n
			}
		}
	}
	if !d.enterTunnel(p, TunnelGTPU, teid, true) {
		return outcomeTooDeep
	}
	return d.decodeIP(data[offset:], p)
}
