package capture

// Tunnels and encapsulations. A mirror port seldom carries the monitored
// TCP directly: remote SPAN arrives as ERSPAN in GRE, cloud traffic
// mirroring as VXLAN or Geneve, mobile backhaul as GTP-U, and routers
// tunnel IP in IP. The decoder goes through all of them to the innermost
// TCP segment; the IP fields of the Packet are the inner ones (the
// connection), and Packet.Tunnel says how the segment travelled.

// TunnelType names an encapsulation that carries a whole inner packet
// between two outer IP endpoints.
type TunnelType uint8

// Tunnel types.
const (
	TunnelNone    TunnelType = iota
	TunnelGRE                // GRE (RFC 2784/2890), also PPTP's enhanced GRE
	TunnelGREUDP             // GRE in UDP (RFC 8086)
	TunnelERSPAN1            // Cisco ERSPAN type I (GRE 0x88BE without sequence number)
	TunnelERSPAN2            // ERSPAN type II (GRE 0x88BE)
	TunnelERSPAN3            // ERSPAN type III (GRE 0x22EB)
	TunnelVXLAN              // VXLAN (RFC 7348)
	TunnelGeneve             // Geneve (RFC 8926)
	TunnelGTPU               // GTP-U (3GPP TS 29.281)
	TunnelIPIP               // IPv4/IPv6 in IPv4/IPv6 (IP protocols 4 and 41)
)

var tunnelTypeNames = [...]string{
	TunnelNone:    "none",
	TunnelGRE:     "gre",
	TunnelGREUDP:  "gre-udp",
	TunnelERSPAN1: "erspan1",
	TunnelERSPAN2: "erspan2",
	TunnelERSPAN3: "erspan3",
	TunnelVXLAN:   "vxlan",
	TunnelGeneve:  "geneve",
	TunnelGTPU:    "gtpu",
	TunnelIPIP:    "ipip",
}

func (t TunnelType) String() string {
	if int(t) < len(tunnelTypeNames) {
		return tunnelTypeNames[t]
	}
	return "unknown"
}

// IDName is what the tunnel's identifier is called, "" when it has none.
func (t TunnelType) IDName() string {
	switch t {
	case TunnelGRE, TunnelGREUDP:
		return "key"
	case TunnelERSPAN1, TunnelERSPAN2, TunnelERSPAN3:
		return "session"
	case TunnelVXLAN, TunnelGeneve:
		return "vni"
	case TunnelGTPU:
		return "teid"
	}
	return ""
}

// unsupported names a tunnel variant the decoder does not follow, for
// the count of undecoded frames by cause.
type unsupported uint16

// Unsupported tunnel variants.
const (
	unsupportedGRERouting unsupported = iota + 1
	unsupportedGREVersion
	unsupportedERSPANVersion
	unsupportedERSPANFrameType
	unsupportedVXLANFlags
	unsupportedGeneveVersion
	unsupportedGTPVersion
)

var unsupportedNames = [...]string{
	unsupportedGRERouting:      "GRE with source routing",
	unsupportedGREVersion:      "GRE version other than 0 and 1",
	unsupportedERSPANVersion:   "ERSPAN version",
	unsupportedERSPANFrameType: "ERSPAN III frame type other than Ethernet and IP",
	unsupportedVXLANFlags:      "VXLAN without the VNI flag (GPE, GBP)",
	unsupportedGeneveVersion:   "Geneve version other than 0",
	unsupportedGTPVersion:      "GTP other than GTPv1-U",
}

// unsupportedTunnel counts one frame of tunnel variant u and returns the
// outcome.
func (d *Decoder) unsupportedTunnel(u unsupported) outcome {
	d.Stats.Tunnels.Note(uint16(u))
	return outcomeUnsupportedTunnel
}

// maxTunnelLayers is how many tunnel layers Tunnel describes; deeper ones
// are still decapsulated and counted in Depth.
const maxTunnelLayers = 2

// TunnelLayer is one tunnel a segment came through.
type TunnelLayer struct {
	Src, Dst Addr   // the outer IP endpoints
	ID       uint32 // GRE key, ERSPAN session ID, VNI or TEID (HasID)
	Family   Family // of Src and Dst
	Type     TunnelType
	HasID    bool // a GRE key was present (VXLAN, Geneve, ERSPAN and GTP-U always have theirs)
}

// Tunnel is how a segment travelled: its tunnels outermost first, as far
// as Layers holds them. It is the zero value for a segment seen plain.
type Tunnel struct {
	Layers [maxTunnelLayers]TunnelLayer
	Depth  uint8 // tunnels passed through (may exceed len(Layers))
}

// Innermost returns the innermost described tunnel layer (nil for none).
func (t *Tunnel) Innermost() *TunnelLayer {
	if t.Depth == 0 {
		return nil
	}
	return &t.Layers[min(int(t.Depth), maxTunnelLayers)-1]
}

// VirtualNetwork is the VNI of the innermost VXLAN or Geneve tunnel plus
// one, 0 when the segment came through none: the part of the tunnel that
// names the network the connection lives in (two tenants may use the same
// addresses in different VNIs), so connections are keyed by it. GRE keys,
// ERSPAN sessions and outer endpoints name the mirror session or the path,
// which may differ between a connection's directions, and are not keyed.
func (t *Tunnel) VirtualNetwork() uint32 {
	if l := t.Innermost(); l != nil && (l.Type == TunnelVXLAN || l.Type == TunnelGeneve) {
		return l.ID + 1
	}
	return 0
}

// maxEncapsulationDepth bounds the nesting of tunnels and of Ethernet
// frames inside Ethernet-level encapsulations (PBB, FabricPath, PPPoE,
// pseudowires), so a crafted frame cannot make the decoder recurse deeply.
// Real traffic nests two or three levels (ERSPAN carrying VXLAN carrying
// the monitored frame).
const maxEncapsulationDepth = 8

// nest enters one more encapsulation level; false when too deep.
func (d *Decoder) nest() bool {
	if d.depth >= maxEncapsulationDepth {
		return false
	}
	d.depth++
	return true
}

// enterTunnel records that p's current IP header, just decoded, is the
// outer header of a tunnel of type typ, and enters one nesting level.
// The VLAN tags seen so far belong to the transport network and not to
// the inner connection, so they are cleared.
func (d *Decoder) enterTunnel(p *Packet, typ TunnelType, id uint32, hasID bool) bool {
	if !d.nest() {
		return false
	}
	t := &p.Tunnel
	if int(t.Depth) < maxTunnelLayers {
		t.Layers[t.Depth] = TunnelLayer{Src: p.Src, Dst: p.Dst, ID: id, Family: p.Family, Type: typ, HasID: hasID}
	}
	if t.Depth < 255 {
		t.Depth++
	}
	p.VLANCount, p.VLAN = 0, [2]uint16{}
	// The inner header's fields replace the outer's; those an inner
	// header may not set are cleared (an IPv4 header fills only the
	// first four address bytes, IPv6 has no ID).
	p.Src, p.Dst, p.IPID = Addr{}, Addr{}, 0
	return true
}

// setTunnelID sets the identifier of the tunnel just entered, once it is
// known (ERSPAN's session follows the GRE header).
func setTunnelID(p *Packet, typ TunnelType, id uint32, hasID bool) {
	if l := p.Tunnel.Innermost(); l != nil && int(p.Tunnel.Depth) <= maxTunnelLayers {
		l.Type, l.ID, l.HasID = typ, id, hasID
	}
}

// IP protocol numbers of tunnels (IANA).
const (
	ipProtocolIPv4 = 4  // IP in IP (RFC 2003)
	ipProtocolIPv6 = 41 // IPv6 in IP (RFC 2473, RFC 4213)
	ipProtocolUDP  = 17
	ipProtocolGRE  = 47
)

// decodeIPPayload decodes the payload of an IP packet that is not TCP:
// the tunnels tcptap follows, else it is not TCP. payload is the
// packet's captured bytes after the IP headers, without link padding.
func (d *Decoder) decodeIPPayload(protocol uint8, payload []byte, p *Packet) outcome {
	switch protocol {
	case ipProtocolIPv4:
		if !d.enterTunnel(p, TunnelIPIP, 0, false) {
			return outcomeTooDeep
		}
		return d.decodeIPv4(payload, p)
	case ipProtocolIPv6:
		if !d.enterTunnel(p, TunnelIPIP, 0, false) {
			return outcomeTooDeep
		}
		return d.decodeIPv6(payload, p)
	case ipProtocolGRE:
		return d.decodeGRE(payload, p, TunnelGRE)
	case ipProtocolUDP:
		return d.decodeUDP(payload, p)
	}
	return outcomeNonTCP
}

// decodeFirstTunnelFragment decodes the first fragment of a tunnel packet
// too big for the outer path MTU (GTP-U and VXLAN carrying full-size inner
// packets often are). Like the first fragment of an IPv6 packet, it holds
// the inner headers whole; the inner IP length is believed beyond the
// fragment's bytes, since the rest follows in the next fragments. Later
// fragments are not TCP.
func (d *Decoder) decodeFirstTunnelFragment(protocol uint8, payload []byte, p *Packet) outcome {
	switch protocol {
	case ipProtocolIPv4, ipProtocolIPv6, ipProtocolGRE, ipProtocolUDP:
	default:
		return outcomeNonTCP
	}
	wire := p.WireLen
	p.WireLen = 0 // onWireLen: no cap by the frame's length
	o := d.decodeIPPayload(protocol, payload, p)
	p.WireLen = wire
	return o
}
