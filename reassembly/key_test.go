package reassembly

import (
	"net/netip"
	"testing"

	"github.com/tcptap/tcptap/capture"
)

// TestKeyVirtualNetwork: the same 4-tuple in two VXLAN or Geneve virtual
// networks is two connections; the GRE key, ERSPAN session and outer
// endpoints (which may differ between the directions of one connection)
// are not keyed; both directions share a key.
func TestKeyVirtualNetwork(t *testing.T) {
	a, _ := capture.AddrFrom(netip.MustParseAddr("10.0.0.1"))
	b, _ := capture.AddrFrom(netip.MustParseAddr("10.0.0.2"))
	seg := func(src, dst capture.Addr, sp, dp uint16, layers ...capture.TunnelLayer) *capture.Packet {
		p := &capture.Packet{Src: src, Dst: dst, SrcPort: sp, DstPort: dp, Family: capture.IPv4}
		copy(p.Tunnel.Layers[:], layers)
		p.Tunnel.Depth = uint8(len(layers))
		return p
	}
	vxlan := func(vni uint32) capture.TunnelLayer {
		return capture.TunnelLayer{Type: capture.TunnelVXLAN, ID: vni, HasID: true, Family: capture.IPv4}
	}
	gre := func(key uint32, outer byte) capture.TunnelLayer {
		return capture.TunnelLayer{Type: capture.TunnelGRE, ID: key, HasID: true, Family: capture.IPv4, Src: capture.Addr{outer}}
	}
	plain := KeyOf(seg(a, b, 1000, 80))
	for _, c := range []struct {
		name string
		p    *capture.Packet
		same bool
	}{
		{"reverse", seg(b, a, 80, 1000), true},
		{"gre key 0", seg(a, b, 1000, 80, gre(0, 1)), true},
		{"gre key 0x2000000, other outer source, reverse", seg(b, a, 80, 1000, gre(0x2000000, 2)), true},
		{"vni 0", seg(a, b, 1000, 80, vxlan(0)), false},
		{"erspan then vni 7", seg(a, b, 1000, 80, gre(5, 1), vxlan(7)), false},
	} {
		if got := KeyOf(c.p) == plain; got != c.same {
			t.Errorf("%s: same key as plain %v, want %v", c.name, got, c.same)
		}
	}
	if KeyOf(seg(a, b, 1000, 80, vxlan(7))) != KeyOf(seg(b, a, 80, 1000, gre(9, 3), vxlan(7))) {
		t.Error("VNI 7 both ways: different keys")
	}
	if KeyOf(seg(a, b, 1000, 80, vxlan(7))) == KeyOf(seg(a, b, 1000, 80, vxlan(8))) {
		t.Error("VNIs 7 and 8: same key")
	}
}
