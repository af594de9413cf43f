package capture

import (
	"fmt"
	"strconv"
	"strings"
)

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

// String returns the tunnel as ParseUDPTunnelPort reads it: "vxlan:4789".
func (t UDPTunnelPort) String() string {
	return t.Type.String() + ":" + strconv.Itoa(int(t.Port))
}

// udpTunnelTypes are the tunnels that can run over UDP.
var udpTunnelTypes = [...]TunnelType{TunnelVXLAN, TunnelGeneve, TunnelGTPU, TunnelGREUDP}

// ParseUDPTunnelPort parses "TYPE:PORT", TYPE one of vxlan, geneve, gtpu
// and gre-udp, PORT 1 to 65535.
func ParseUDPTunnelPort(s string) (UDPTunnelPort, error) {
	name, port, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(port, 10, 16)
	if !ok || err != nil || n == 0 {
		return UDPTunnelPort{}, fmt.Errorf("%q: want TYPE:PORT, such as vxlan:4789, with a port 1 to 65535", s)
	}
	for _, t := range udpTunnelTypes {
		if t.String() == name {
			return UDPTunnelPort{Port: uint16(n), Type: t}, nil
		}
	}
	return UDPTunnelPort{}, fmt.Errorf("%q: unknown tunnel %q; want vxlan, geneve, gtpu or gre-udp", s, name)
}

// ParseUDPTunnelPorts parses a list of ParseUDPTunnelPort values; at
// most 16, each port once.
func ParseUDPTunnelPorts(list []string) ([]UDPTunnelPort, error) {
	if len(list) > maxUDPTunnelPorts {
		return nil, fmt.Errorf("%d UDP tunnel ports: at most %d", len(list), maxUDPTunnelPorts)
	}
	out := make([]UDPTunnelPort, 0, len(list))
	for _, s := range list {
		t, err := ParseUDPTunnelPort(s)
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Port == t.Port {
				return nil, fmt.Errorf("%q: port %d listed twice", s, t.Port)
			}
		}
		out = append(out, t)
	}
	return out, nil
}
