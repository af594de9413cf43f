package record_test

import (
	"net/netip"
	"testing"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/record"
)

func TestTunnelHopsAndVPNName(t *testing.T) {
	var tun capture.Tunnel
	if record.TunnelHops(&tun) != nil {
		t.Error("a plain connection has tunnel hops")
	}
	outer, _ := capture.AddrFrom(netip.MustParseAddr("192.0.2.1"))
	tun.Layers[0] = capture.TunnelLayer{Src: outer, Dst: outer, Family: capture.IPv4, Type: capture.TunnelERSPAN2, ID: 20, HasID: true}
	tun.Layers[1] = capture.TunnelLayer{Src: outer, Dst: outer, Family: capture.IPv4, Type: capture.TunnelVXLAN, ID: 42, HasID: true}
	tun.Depth = 3 // a third, undescribed layer
	hops := record.TunnelHops(&tun)
	if len(hops) != 2 || hops[0].Type != "erspan2" || hops[0].IDName != "session" || hops[1].IDName != "vni" || hops[1].ID != 42 {
		t.Errorf("hops %+v", hops)
	}
	for _, c := range []struct {
		vlan   []uint16
		tunnel []record.TunnelHop
		want   string
	}{
		{nil, nil, "N/A"},
		{[]uint16{100, 20}, nil, "100.20"},
		{nil, hops, "vni:42"},
		{[]uint16{7}, hops, "vni:42.7"},
		{nil, hops[:1], "session:20"},
		{nil, []record.TunnelHop{{Type: "ipip"}}, "N/A"},
	} {
		r := record.Record{VLAN: c.vlan, Tunnel: c.tunnel}
		if got := record.VPNName(&r); got != c.want {
			t.Errorf("VLAN %v tunnel %+v: %q, want %q", c.vlan, c.tunnel, got, c.want)
		}
	}
}
