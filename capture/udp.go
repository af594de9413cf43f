package capture

// UDP (RFC 768), followed only as far as the tunnels it carries. The
// destination port says which tunnel: senders pick the source port for
// entropy (RFC 7348 §5, RFC 8926 §3.3), so it means nothing.
const udpHeaderLen = 8

// Default UDP ports of the tunnels decoded (IANA).
const (
	PortVXLAN  = 4789
	PortGeneve = 6081
	PortGTPU   = 2152
	PortGREUDP = 4754
)

// DefaultUDPTunnelPorts are the UDP tunnels a Decoder follows unless its
// configuration says otherwise.
var DefaultUDPTunnelPorts = []UDPTunnelPort{
	{PortVXLAN, TunnelVXLAN},
	{PortGeneve, TunnelGeneve},
	{PortGTPU, TunnelGTPU},
	{PortGREUDP, TunnelGREUDP},
}

// UDPTunnelPort says that UDP datagrams to Port carry tunnel Type.
type UDPTunnelPort struct {
	Port uint16
	Type TunnelType
}

// maxUDPTunnelPorts bounds the configured ports: they are searched
// linearly for every UDP datagram.
const maxUDPTunnelPorts = 16

// decodeUDP decodes a UDP datagram if its destination port is a
// configured tunnel's; any other UDP is not TCP.
func (d *Decoder) decodeUDP(datagram []byte, p *Packet) outcome {
	if len(datagram) < udpHeaderLen {
		return outcomeNonTCP // a cut UDP header carries no tunnel tcptap could follow
	}
	// The destination port decides; failing that the source port, as
	// Wireshark tries both (some mirror sources send from the tunnel's
	// port to another).
	typ := d.udpTunnel(be16(datagram[2:4]))
	if typ == TunnelNone {
		typ = d.udpTunnel(be16(datagram[0:2]))
	}
	// The UDP length bounds the payload when it is sane (a zero length
	// is a UDP jumbogram or checksum-offload artefact: keep the bytes).
	payload := datagram[udpHeaderLen:]
	if n := int(be16(datagram[4:6])); n >= udpHeaderLen && n-udpHeaderLen < len(payload) {
		payload = payload[:n-udpHeaderLen]
	}
	switch typ {
	case TunnelVXLAN:
		return d.decodeVXLAN(payload, p)
	case TunnelGeneve:
		return d.decodeGeneve(payload, p)
	case TunnelGTPU:
		return d.decodeGTPU(payload, p)
	case TunnelGREUDP:
		return d.decodeGRE(payload, p, TunnelGREUDP)
	}
	return outcomeNonTCP
}

// udpTunnel returns the tunnel configured on port, TunnelNone if none.
func (d *Decoder) udpTunnel(port uint16) TunnelType {
	for _, t := range d.udpPorts() {
		if t.Port == port {
			return t.Type
		}
	}
	return TunnelNone
}

func (d *Decoder) udpPorts() []UDPTunnelPort {
	if d.config.UDPTunnelPorts == nil {
		return DefaultUDPTunnelPorts
	}
	return d.config.UDPTunnelPorts
}
