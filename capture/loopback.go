package capture

// Loopback headers: a 4-byte address family, in the capturing host's byte
// order for LINKTYPE_NULL and in network order for LINKTYPE_LOOP. AF_INET is
// 2 everywhere; AF_INET6 differs by system (24 NetBSD/OpenBSD, 28 FreeBSD,
// 30 Darwin), and a capture may come from any of them.
const (
	loopbackHeaderLen = 4

	bsdAFInet         = 2
	bsdAFInet6BSD     = 24
	bsdAFInet6FreeBSD = 28
	bsdAFInet6Darwin  = 30
)

// decodeNull decodes a LINKTYPE_NULL frame. The file does not say which
// byte order the writer used, but every family value is below 256, so
// whichever end holds the non-zero byte is the low-order end.
func (d *Decoder) decodeNull(data []byte, p *Packet) outcome {
	if len(data) < loopbackHeaderLen {
		return outcomeTruncatedLink
	}
	var family uint32
	switch {
	case data[1] == 0 && data[2] == 0 && data[3] == 0: // little-endian
		family = uint32(data[0])
	case data[0] == 0 && data[1] == 0 && data[2] == 0: // big-endian
		family = uint32(data[3])
	default:
		return outcomeNonIP
	}
	return d.decodeLoopbackFamily(family, data[loopbackHeaderLen:], p)
}

// decodeLoop decodes a LINKTYPE_LOOP frame (OpenBSD), family in network order.
func (d *Decoder) decodeLoop(data []byte, p *Packet) outcome {
	if len(data) < loopbackHeaderLen {
		return outcomeTruncatedLink
	}
	return d.decodeLoopbackFamily(be32(data[0:4]), data[loopbackHeaderLen:], p)
}

func (d *Decoder) decodeLoopbackFamily(family uint32, data []byte, p *Packet) outcome {
	switch family {
	case bsdAFInet:
		return d.decodeIPv4(data, p)
	case bsdAFInet6BSD, bsdAFInet6FreeBSD, bsdAFInet6Darwin:
		return d.decodeIPv6(data, p)
	}
	return outcomeNonIP
}
