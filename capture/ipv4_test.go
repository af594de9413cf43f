package capture

import (
	"net/netip"
	"testing"
)

// TestIPv4SourceRoute checks which address a datagram with IPv4 options is
// keyed on: the final destination of an unfinished loose or strict source
// route, otherwise the header's destination.
func TestIPv4SourceRoute(t *testing.T) {
	header := netip.AddrFrom4(testIPv4Dst)
	route := func(kind, pointer byte) []byte {
		return []byte{kind, 11, pointer, 1, 2, 3, 4, 5, 6, 7, 8}
	}
	for _, tc := range []struct {
		name    string
		options []byte
		want    netip.Addr
	}{
		{"loose", cat(route(ipv4OptionLSRR, 4), []byte{0}), netip.MustParseAddr("5.6.7.8")},
		{"strict", cat(route(ipv4OptionSSRR, 8), []byte{0}), netip.MustParseAddr("5.6.7.8")},
		{"after-nop-and-record-route", cat([]byte{1, 7, 7, 4, 0, 0, 0, 0}, route(ipv4OptionLSRR, 4), []byte{0}), netip.MustParseAddr("5.6.7.8")},
		{"finished", cat(route(ipv4OptionLSRR, 12), []byte{0}), header},
		{"pointer-too-small", cat(route(ipv4OptionLSRR, 3), []byte{0}), header},
		{"length-not-addresses", []byte{ipv4OptionLSRR, 6, 4, 1, 2, 3, 0, 0}, header},
		{"length-past-header", []byte{ipv4OptionLSRR, 15, 4, 1, 2, 3, 4, 5, 6, 7, 8, 0}, header},
		{"after-end-of-options", cat([]byte{0, 0, 0, 0}, route(ipv4OptionLSRR, 4), []byte{0}), header},
		{"truncated-option", []byte{1, 1, 1, ipv4OptionLSRR}, header},
		{"none", []byte{1, 1, 1, 0}, header},
	} {
		t.Run(tc.name, func(t *testing.T) {
			segment := tcpSegment(FlagSYN, nil, 0)
			frame := ethernet(etherTypeIPv4, cat(ipv4Header(ipProtocolTCP, tc.options, len(segment), 0), segment))
			d := NewDecoder(DecoderConfig{})
			var p Packet
			if !d.Decode(&Frame{Data: frame, LinkType: LinkTypeEthernet}, &p) {
				t.Fatalf("not decoded: %+v", d.Stats)
			}
			if p.DstAddr() != tc.want || p.SrcAddr() != netip.AddrFrom4(testIPv4Src) {
				t.Errorf("%v -> %v, want destination %v", p.SrcAddr(), p.DstAddr(), tc.want)
			}
			if allocs := testing.AllocsPerRun(100, func() { d.Decode(&Frame{Data: frame, LinkType: LinkTypeEthernet}, &p) }); allocs != 0 {
				t.Errorf("%v allocations per decode", allocs)
			}
		})
	}
}
