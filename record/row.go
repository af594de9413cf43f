package record

import (
	"strconv"
	"strings"
)

// LocalForeign returns the record's local and foreign endpoints as text.
func LocalForeign(r *Record) (local, foreign string) {
	if r.Local == "server" {
		return r.Server.String(), r.Client.String()
	}
	return r.Client.String(), r.Server.String()
}

// VPNName renders the connection's VLAN tags the way the vendor's table
// shows its VPN instance: "N/A" when untagged, "100" or "100.20" for QinQ.
// A tunnelled connection's VNI, ERSPAN session, GRE key or TEID comes
// first: "vni:42", "vni:42.100" with an inner VLAN tag.
func VPNName(r *Record) string {
	parts := make([]string, 0, 1+len(r.VLAN))
	if t := tunnelVPN(r); t != "" {
		parts = append(parts, t)
	}
	for _, v := range r.VLAN {
		parts = append(parts, strconv.Itoa(int(v)))
	}
	if len(parts) == 0 {
		return "N/A"
	}
	return strings.Join(parts, ".")
}
