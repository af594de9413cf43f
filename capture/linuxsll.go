package capture

// Linux "cooked" capture headers (tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html
// and LINKTYPE_LINUX_SLL2.html). Both end in, or start with, a protocol field
// that is an EtherType for IP traffic; libpcap inserts a stripped VLAN tag
// after the header with protocol 0x8100, so the EtherType chain is followed
// as for Ethernet.
const (
	linuxSLLHeaderLen  = 16 // packet type, ARPHRD type, address length, 8-byte address, protocol
	linuxSLL2HeaderLen = 20 // protocol, reserved, ifindex, ARPHRD type, packet type, address length, 8-byte address

	// arphrdNetlink marks netlink messages captured on an nlmon device: the
	// protocol field is then a netlink family, not an EtherType.
	arphrdNetlink = 824
)

// decodeLinuxSLL decodes a LINKTYPE_LINUX_SLL frame. The address field is a
// fixed 8 bytes whatever the address length says: libpcap stores the first
// 8 bytes of longer hardware addresses, so a length above 8 is not an error.
func (d *Decoder) decodeLinuxSLL(data []byte, p *Packet) outcome {
	if len(data) < linuxSLLHeaderLen {
		return outcomeTruncatedLink
	}
	if be16(data[2:4]) == arphrdNetlink {
		return outcomeNonIP
	}
	return d.decodeEtherType(be16(data[14:16]), data[linuxSLLHeaderLen:], p, false)
}

// decodeLinuxSLL2 decodes a LINKTYPE_LINUX_SLL2 frame.
func (d *Decoder) decodeLinuxSLL2(data []byte, p *Packet) outcome {
	if len(data) < linuxSLL2HeaderLen {
		return outcomeTruncatedLink
	}
	if be16(data[8:10]) == arphrdNetlink {
		return outcomeNonIP
	}
	return d.decodeEtherType(be16(data[0:2]), data[linuxSLL2HeaderLen:], p, false)
}
