package capture

// IEEE 802.1BR E-Tag (EtherType 0x893F): a 6-byte tag naming the port
// extender's channel, then the frame's EtherType, like a VLAN tag.
const (
	etherTypeETag = 0x893f
	eTagLen       = 6
)
