package capture

// Cisco VN-Tag (EtherType 0x8926): a 4-byte tag of the fabric extender,
// then the frame's EtherType, like a VLAN tag.
const (
	etherTypeVNTag = 0x8926
	vnTagLen       = 4
)
