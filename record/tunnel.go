package record

import (
	"net/netip"
	"strconv"

	"github.com/tcptap/tcptap/capture"
)

// TunnelHop is one tunnel a connection travelled through, in the record:
// {"type":"vxlan","src":"192.0.2.1","dst":"192.0.2.2","vni":42}. The
// identifier's name depends on the type: "key" (GRE, when present),
// "session" (ERSPAN II/III), "vni" (VXLAN, Geneve), "teid" (GTP-U); IP in
// IP and ERSPAN type I have none.
type TunnelHop struct {
	Type     string     // capture.TunnelType's name
	Src, Dst netip.Addr // the outer IP endpoints
	IDName   string     // "" when the tunnel has no identifier
	ID       uint32
}

// TunnelHops describes t outermost first; nil when not tunnelled. Tunnels
// nested deeper than capture.Tunnel describes are not listed.
func TunnelHops(t *capture.Tunnel) []TunnelHop {
	if t.Depth == 0 {
		return nil
	}
	n := min(int(t.Depth), len(t.Layers))
	hops := make([]TunnelHop, n)
	for i := range n {
		l := &t.Layers[i]
		hops[i] = TunnelHop{Type: l.Type.String(), Src: capture.AddrOf(l.Src, l.Family), Dst: capture.AddrOf(l.Dst, l.Family)}
		if l.HasID {
			hops[i].IDName, hops[i].ID = l.Type.IDName(), l.ID
		}
	}
	return hops
}

// MarshalJSON encodes h as AppendJSON does.
func (h TunnelHop) MarshalJSON() ([]byte, error) { return h.appendJSON(nil), nil }

func (h *TunnelHop) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, h.Type)
	b = append(b, `,"src":"`...)
	b = h.Src.AppendTo(b)
	b = append(b, `","dst":"`...)
	b = h.Dst.AppendTo(b)
	b = append(b, '"')
	if h.IDName != "" {
		b = append(b, ',', '"')
		b = append(b, h.IDName...)
		b = append(b, '"', ':')
		b = strconv.AppendUint(b, uint64(h.ID), 10)
	}
	return append(b, '}')
}

// tunnelVPN is the VPN name part of the innermost tunnel with an
// identifier: "vni:42", "session:7", "key:5", "teid:9"; "" for none.
func tunnelVPN(r *Record) string {
	for i := len(r.Tunnel) - 1; i >= 0; i-- {
		if h := &r.Tunnel[i]; h.IDName != "" {
			return h.IDName + ":" + strconv.FormatUint(uint64(h.ID), 10)
		}
	}
	return ""
}
