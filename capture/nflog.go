package capture

// NFLOG (LINKTYPE_NFLOG, 239): packets logged by Linux netfilter's NFLOG
// target, as `tcpdump -i nflog:N` captures them: a 4-byte header (address
// family, version, group) and type-length-value attributes in the
// capturing host's byte order (little-endian on every host seen), each
// padded to 4 bytes. The NFULA_PAYLOAD attribute holds the IP packet.
const (
	nflogHeaderLen  = 4
	nflogTLVLen     = 4
	nflogPayload    = 9
	nflogAFInet     = 2
	nflogAFInet6    = 10
	nflogTypeMask   = 0x7fff // the top bit marks nested attributes
	nflogMaxRecords = 64
)

func (d *Decoder) decodeNFLOG(data []byte, p *Packet) outcome {
	if len(data) < nflogHeaderLen {
		return outcomeTruncatedLink
	}
	family := data[0]
	if family != nflogAFInet && family != nflogAFInet6 {
		return outcomeNonIP
	}
	data = data[nflogHeaderLen:]
	for i := 0; i < nflogMaxRecords && len(data) >= nflogTLVLen; i++ {
		length := int(data[0]) | int(data[1])<<8
		typ := (uint16(data[2]) | uint16(data[3])<<8) & nflogTypeMask
		if length < nflogTLVLen || length > len(data) {
			return outcomeTruncatedLink
		}
		if typ == nflogPayload {
			payload := data[nflogTLVLen:length]
			if family == nflogAFInet {
				return d.decodeIPv4(payload, p)
			}
			return d.decodeIPv6(payload, p)
		}
		data = data[min(len(data), (length+3)&^3):]
	}
	return outcomeNonIP // no payload attribute
}
