package capture

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// encapFrame is one captured frame of testdata/encap-frames.txt.
type encapFrame struct {
	name, source string
	frame        Frame
}

func encapFrames(t testing.TB) []encapFrame {
	t.Helper()
	f, err := os.Open("testdata/encap-frames.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []encapFrame
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		lt, err1 := strconv.Atoi(fields[1])
		data, err2 := hex.DecodeString(fields[3])
		if len(fields) != 4 || err1 != nil || err2 != nil {
			t.Fatalf("bad line %.60q", line)
		}
		out = append(out, encapFrame{fields[0], fields[2], Frame{Data: data, LinkType: LinkType(lt), Timestamp: 1e18, WireLen: uint32(len(data))}})
	}
	return out
}

// wantTunnel is what the tunnel description of a frame should say.
type wantTunnel struct {
	layers []string // "type outer-src>outer-dst id" per described layer, outermost first
	inner  string   // the inner segment's "src>dst"
}

var encapWant = map[string]wantTunnel{
	"erspan2-vxlan":     {[]string{"erspan2 100.20.9.2>100.20.9.1 session=20", "vxlan 172.16.27.131>172.16.27.121 vni=0"}, "10.16.27.12:65174>10.16.27.131:80"},
	"pppoe":             {nil, "172.202.246.57:1063>64.12.189.217:443"},
	"ipv4-in-ipv4":      {[]string{"ipip 10.1.0.1>10.1.0.2"}, "10.1.0.3:80>10.1.0.4:80"},
	"ipv6-in-ipv6":      {[]string{"ipip 2001:db8:85a3::8a2e:370:7334>2001:db8:85a3::8a2e:370:7335"}, "[2001:db8:85a3::8a2e:370:8334]:80>[2001:db8:85a3::8a2e:370:8335]:80"},
	"chdlc":             {nil, ""},
	"etag":              {nil, ""},
	"ppp":               {nil, ""},
	"fabricpath":        {nil, "1.1.1.6:57005>2.2.2.2:48879"},
	"gre-teb-key":       {[]string{"gre 10.200.0.3>10.200.0.224 key=0"}, ""},
	"nflog":             {nil, ""},
	"pbb":               {nil, ""},
	"llc-snap":          {nil, ""},
	"ipv4-in-ipv6":      {[]string{"ipip 2002:4637:d5d3::4637:d5d3>2001:4860:0:2001::68"}, "70.55.213.211:31337>192.88.99.1:80"},
	"geneve-options":    {[]string{"geneve 192.168.33.179>192.168.179.33 vni=786734"}, "10.0.0.226:39088>95.217.228.176:80"},
	"gre-ipv4":          {[]string{"gre 172.27.1.66>66.59.109.137"}, ""},
	"gtpu-ext-fragment": {[]string{"gtpu 10.155.148.149>10.155.148.157 teid=1050199"}, "10.155.182.202:41511>10.155.186.57:6005"},
	"vxlan":             {[]string{"vxlan 10.1.200.131>10.1.1.172 vni=1"}, ""},
}

func (l *TunnelLayer) String() string {
	s := l.Type.String() + " " + AddrOf(l.Src, l.Family).String() + ">" + AddrOf(l.Dst, l.Family).String()
	if l.HasID {
		s += " " + l.Type.IDName() + "=" + strconv.FormatUint(uint64(l.ID), 10)
	}
	return s
}

// TestEncapsulatedCapturedFrames decodes one captured frame of every
// encapsulation to its inner segment, checks the tunnel description, and
// cross-checks the inner segment with gopacket where gopacket decodes the
// encapsulation.
func TestEncapsulatedCapturedFrames(t *testing.T) {
	// A name on several lines is one datagram in fragments: the last
	// completes it.
	all := encapFrames(t)
	var frames []encapFrame
	before := map[string][]Frame{}
	for i, ef := range all {
		if i+1 < len(all) && all[i+1].name == ef.name {
			before[ef.name] = append(before[ef.name], ef.frame)
			continue
		}
		frames = append(frames, ef)
	}
	if len(frames) != len(encapWant) {
		t.Errorf("%d frames, %d expectations", len(frames), len(encapWant))
	}
	for _, ef := range frames {
		t.Run(ef.name, func(t *testing.T) {
			want, ok := encapWant[ef.name]
			if !ok {
				t.Fatal("no expectation")
			}
			d := NewDecoder(DecoderConfig{})
			var p Packet
			for _, f := range before[ef.name] {
				if d.Decode(&f, &p) {
					t.Fatal("a fragment decoded before the last")
				}
			}
			d.Stats = DecodeStats{}
			if !d.Decode(&ef.frame, &p) {
				t.Fatalf("not decoded: %s", d.Stats.UndecodedSummary())
			}
			checkPacketConsistent(t, &ef.frame, &p)
			if len(before[ef.name]) > 0 {
				return // rebuilt from fragments: gopacket does not reassemble
			}
			var got []string
			for i := 0; i < int(min(p.Tunnel.Depth, maxTunnelLayers)); i++ {
				got = append(got, p.Tunnel.Layers[i].String())
			}
			if strings.Join(got, " | ") != strings.Join(want.layers, " | ") {
				t.Errorf("tunnel\n got %q\nwant %q", got, want.layers)
			}
			if (p.Tunnel.Depth != 0) != (d.Stats.Tunnelled == 1) {
				t.Errorf("Tunnelled %d with depth %d", d.Stats.Tunnelled, p.Tunnel.Depth)
			}
			if inner := p.SrcAddrPort().String() + ">" + p.DstAddrPort().String(); want.inner != "" && inner != want.inner {
				t.Errorf("inner segment %s, want %s", inner, want.inner)
			}
			ref, ok := gopacketSegment(&ef.frame)
			if !ok {
				t.Logf("gopacket does not decode this encapsulation to TCP")
				return
			}
			if g := normaliseForGopacket(p, ref); g != ref {
				t.Errorf("differs from gopacket\n got %+v\nwant %+v", g, ref)
			}
		})
	}
}

// normaliseForGopacket sets what gopacket's layers do not describe the
// way tcptap does to ref's: the tunnel (gopacket has none), and inside a
// tunnel the VLAN tags (gopacket lists the transport network's too; the
// tests check tcptap's inner tags themselves).
func normaliseForGopacket(p, ref Packet) Packet {
	if p.Tunnel.Depth != 0 {
		p.VLANCount, p.VLAN = ref.VLANCount, ref.VLAN
	}
	p.Tunnel = Tunnel{}
	return p
}

// Hand-built tunnels, for the variants no captured frame shows.

func greHeader(flags, version byte, protocol uint16, optional ...uint32) []byte {
	b := []byte{flags, version, byte(protocol >> 8), byte(protocol)}
	for _, v := range optional {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func udpHeader(src, dst uint16, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, src)
	b = binary.BigEndian.AppendUint16(b, dst)
	b = binary.BigEndian.AppendUint16(b, uint16(udpHeaderLen+len(payload)))
	b = binary.BigEndian.AppendUint16(b, 0)
	return cat(b, payload)
}

func vxlanHeader(vni uint32) []byte {
	return []byte{vxlanFlagVNI, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
}

func TestTunnelVariants(t *testing.T) {
	seg := tcpSegment(FlagACK, nil, 10)
	ip4 := ipv4Packet(ipProtocolTCP, seg)
	ip6 := ipv6Packet(ipProtocolTCP, nil, seg)
	inner := ethernet(etherTypeIPv4, ip4, dot1q(7))
	outer := func(protocol byte, payload []byte) []byte {
		return ethernet(etherTypeIPv4, ipv4Packet(protocol, payload))
	}
	outer6 := func(next byte, payload []byte) []byte { return ethernet(etherTypeIPv6, ipv6Packet(next, nil, payload)) }
	erspan3 := func(ft byte, platform bool) []byte {
		h := make([]byte, erspan3HeaderLen)
		h[0] = erspanVersion3 << 4
		binary.BigEndian.PutUint16(h[2:], 0x155) // session 341
		binary.BigEndian.PutUint16(h[10:], uint16(ft)<<erspan3FrameTypeShift)
		if platform {
			h[11] |= erspan3FlagPlatform
			h = append(h, make([]byte, erspan3PlatformLen)...)
		}
		return h
	}
	erspan2 := []byte{erspanVersion2 << 4, 5, 0x03, 0xff, 0, 0, 0, 0} // VLAN 5, session 1023
	cases := []struct {
		name    string
		config  DecoderConfig
		frame   []byte
		want    string // the outermost layer; "" when no segment is expected
		vlans   int
		outcome func(*DecodeStats) uint64
	}{
		{"gre/ipv4/checksum-key-seq", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(greFlagChecksum|greFlagKey|greFlagSequence, 0, etherTypeIPv4, 0, 77, 1), ip4)), "gre 192.0.2.1>198.51.100.2 key=77", 0, nil},
		{"gre/ipv6", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(0, 0, etherTypeIPv6), ip6)), "gre 192.0.2.1>198.51.100.2", 0, nil},
		{"gre/teb", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(0, 0, etherTypeTransEther), inner)), "gre 192.0.2.1>198.51.100.2", 1, nil},
		{"gre/over-ipv6", DecoderConfig{}, outer6(ipProtocolGRE, cat(greHeader(0, 0, etherTypeIPv4), ip4)), "gre 2001:db8::1>2001:db8:ff00::2", 0, nil},
		{"erspan1", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(0, 0, etherTypeERSPAN), inner)), "erspan1 192.0.2.1>198.51.100.2", 1, nil},
		{"erspan2", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(greFlagSequence, 0, etherTypeERSPAN, 9), erspan2, inner)), "erspan2 192.0.2.1>198.51.100.2 session=1023", 1, nil},
		{"erspan3/ethernet", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(greFlagSequence, 0, etherTypeERSPAN3, 9), erspan3(erspan3FrameEthernet, false), inner)), "erspan3 192.0.2.1>198.51.100.2 session=341", 1, nil},
		{"erspan3/platform/ip", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(greFlagSequence, 0, etherTypeERSPAN3, 9), erspan3(erspan3FrameIP, true), ip4)), "erspan3 192.0.2.1>198.51.100.2 session=341", 0, nil},
		{"pptp/ppp", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(greFlagKey|greFlagSequence, greFlagAck|greVersion1, etherTypePPP, 0x00300007, 1, 1), []byte{0xff, 0x03, 0x00, 0x21}, ip4)), "gre 192.0.2.1>198.51.100.2 key=7", 0, nil},
		{"gre-in-udp", DecoderConfig{}, outer(ipProtocolUDP, udpHeader(50000, PortGREUDP, cat(greHeader(0, 0, etherTypeIPv4), ip4))), "gre-udp 192.0.2.1>198.51.100.2", 0, nil},
		{"vxlan/source-port", DecoderConfig{}, outer(ipProtocolUDP, udpHeader(PortVXLAN, 4790, cat(vxlanHeader(42), inner))), "vxlan 192.0.2.1>198.51.100.2 vni=42", 1, nil},
		{"vxlan/configured-port", DecoderConfig{UDPTunnelPorts: []UDPTunnelPort{{8472, TunnelVXLAN}}}, outer(ipProtocolUDP, udpHeader(1, 8472, cat(vxlanHeader(42), inner))), "vxlan 192.0.2.1>198.51.100.2 vni=42", 1, nil},
		{"vxlan/default-port-not-configured", DecoderConfig{UDPTunnelPorts: []UDPTunnelPort{{8472, TunnelVXLAN}}}, outer(ipProtocolUDP, udpHeader(1, PortVXLAN, cat(vxlanHeader(42), inner))), "", 0, func(s *DecodeStats) uint64 { return s.NonTCP }},
		{"vxlan/no-vni-flag", DecoderConfig{}, outer(ipProtocolUDP, udpHeader(1, PortVXLAN, cat([]byte{0, 0, 0, 0, 0, 0, 42, 0}, inner))), "", 0, func(s *DecodeStats) uint64 { return s.UnsupportedTunnel }},
		{"vxlan/truncated", DecoderConfig{}, outer(ipProtocolUDP, udpHeader(1, PortVXLAN, []byte{8, 0, 0})), "", 0, func(s *DecodeStats) uint64 { return s.BadTunnel }},
		{"geneve/ipv4", DecoderConfig{}, outer(ipProtocolUDP, udpHeader(1, PortGeneve, cat([]byte{1, 0, 0x08, 0x00, 0, 1, 2, 0}, make([]byte, 4), ip4))), "geneve 192.0.2.1>198.51.100.2 vni=258", 0, nil},
		{"gtpu/plain", DecoderConfig{}, outer(ipProtocolUDP, udpHeader(1, PortGTPU, cat([]byte{0x30, 0xff, 0, byte(len(ip4)), 0, 0, 0, 9}, ip4))), "gtpu 192.0.2.1>198.51.100.2 teid=9", 0, nil},
		{"6in4", DecoderConfig{}, outer(ipProtocolIPv6, ip6), "ipip 192.0.2.1>198.51.100.2", 0, nil},
		{"gre/routing", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(greFlagRouting, 0, etherTypeIPv4, 0), ip4)), "", 0, func(s *DecodeStats) uint64 { return s.UnsupportedTunnel }},
		{"gre/version-2", DecoderConfig{}, outer(ipProtocolGRE, cat(greHeader(0, 2, etherTypeIPv4), ip4)), "", 0, func(s *DecodeStats) uint64 { return s.UnsupportedTunnel }},
		{"gre/key-cut", DecoderConfig{}, outer(ipProtocolGRE, greHeader(greFlagKey, 0, etherTypeIPv4)), "", 0, func(s *DecodeStats) uint64 { return s.BadTunnel }},
		{"too-deep", DecoderConfig{}, func() []byte {
			b := ip4
			for range maxEncapsulationDepth + 1 {
				b = ipv4Packet(ipProtocolIPv4, b)
			}
			return ethernet(etherTypeIPv4, b)
		}(), "", 0, func(s *DecodeStats) uint64 { return s.TooDeep }},
		{"deepest-allowed", DecoderConfig{}, func() []byte {
			b := ip4
			for range maxEncapsulationDepth {
				b = ipv4Packet(ipProtocolIPv4, b)
			}
			return ethernet(etherTypeIPv4, b)
		}(), "ipip 192.0.2.1>198.51.100.2", 0, nil},
		{"vntag", DecoderConfig{}, ethernet(etherTypeVNTag, cat([]byte{0, 0, 0, 0x33, 0x81, 0}, []byte{0, 5, 0x08, 0x00}, ip4)), "none", 1, nil},
		{"pppoe/discovery-code", DecoderConfig{}, ethernet(etherTypePPPoESession, cat([]byte{0x11, 0x09, 0, 1, 0, byte(2 + len(ip4)), 0, 0x21}, ip4)), "", 0, func(s *DecodeStats) uint64 { return s.NonIP }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(c.config)
			f := Frame{Data: c.frame, LinkType: LinkTypeEthernet, Timestamp: 1e18}
			var p Packet
			ok := d.Decode(&f, &p)
			checkOneOutcome(t, &d.Stats, ok)
			if c.want == "" {
				if ok || c.outcome(&d.Stats) != 1 {
					t.Fatalf("decoded %v, stats %s", ok, d.Stats.UndecodedSummary())
				}
				return
			}
			if !ok {
				t.Fatalf("not decoded: %s", d.Stats.UndecodedSummary())
			}
			checkPacketConsistent(t, &f, &p)
			got := "none"
			if p.Tunnel.Depth > 0 {
				got = p.Tunnel.Layers[0].String()
			}
			if got != c.want {
				t.Errorf("outermost tunnel %q, want %q", got, c.want)
			}
			if p.SrcPort != testSrcPort || p.DstPort != testDstPort || p.PayloadLen != 10 || int(p.VLANCount) != c.vlans {
				t.Errorf("inner segment %+v", p)
			}
			if p.SrcAddr() != netip.AddrFrom4(testIPv4Src) && p.SrcAddr() != netip.AddrFrom16(testIPv6Src) {
				t.Errorf("inner source %v", p.SrcAddr())
			}
			if ref, ok := gopacketSegment(&f); !ok {
				t.Logf("gopacket does not decode this encapsulation to TCP")
			} else if g := normaliseForGopacket(p, ref); g != ref {
				t.Errorf("differs from gopacket\n got %+v\nwant %+v", g, ref)
			}
		})
	}
}

// TestCopies checks the duplicates policy: a segment seen again by another
// path shortly after is a copy; by the same path it is a retransmission.
func TestCopies(t *testing.T) {
	seg := tcpSegment(FlagACK|FlagPSH, nil, 100)
	plain := ethernet(etherTypeIPv4, ipv4Packet(ipProtocolTCP, seg))
	tunnelled := ethernet(etherTypeIPv4, ipv4Packet(ipProtocolGRE, cat(greHeader(0, 0, etherTypeTransEther), plain)))
	run := func(policy DuplicatePolicy, gap int64, frames ...[]byte) (decoded int, d *Decoder) {
		d = NewDecoder(DecoderConfig{Duplicates: policy})
		var p Packet
		for i, b := range frames {
			if d.Decode(&Frame{Data: b, LinkType: LinkTypeEthernet, Timestamp: 1e18 + int64(i)*gap}, &p) {
				decoded++
			}
		}
		return decoded, d
	}
	for _, c := range []struct {
		name   string
		policy DuplicatePolicy
		gap    int64
		frames [][]byte
		want   int
	}{
		{"plain-then-tunnelled", DuplicatesDrop, 1000, [][]byte{plain, tunnelled}, 1},
		{"tunnelled-then-plain", DuplicatesDrop, 1000, [][]byte{tunnelled, plain}, 1},
		{"same-path-twice", DuplicatesDrop, 1000, [][]byte{plain, plain}, 2},
		{"beyond-window", DuplicatesDrop, CopyWindow + 1, [][]byte{plain, tunnelled}, 2},
		{"keep", DuplicatesKeep, 1000, [][]byte{plain, tunnelled}, 2},
	} {
		n, d := run(c.policy, c.gap, c.frames...)
		if n != c.want || d.Stats.Copies != uint64(len(c.frames)-n) {
			t.Errorf("%s: %d decoded, %d copies; want %d decoded", c.name, n, d.Stats.Copies, c.want)
		}
	}
}

func TestUndecodedSummary(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	var p Packet
	for _, f := range []Frame{
		{Data: ethernet(0x88cc, make([]byte, 40)), LinkType: LinkTypeEthernet},
		{Data: ethernet(0x88cc, make([]byte, 40)), LinkType: LinkTypeEthernet},
		{Data: make([]byte, 40), LinkType: 147},
		{Data: ethernet(etherTypeIPv4, ipv4Packet(ipProtocolGRE, greHeader(greFlagRouting, 0, 0x0800, 0))), LinkType: LinkTypeEthernet},
	} {
		d.Decode(&f, &p)
	}
	want := "2 unknown EtherType 0x88cc, 1 unsupported link type 147, 1 unsupported tunnel: GRE with source routing"
	if got := d.Stats.UndecodedSummary(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestDecapsulationDoesNotAllocate decodes every captured encapsulation
// without allocating.
func TestDecapsulationDoesNotAllocate(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	var p Packet
	for _, ef := range encapFrames(t) {
		if allocs := testing.AllocsPerRun(200, func() { d.Decode(&ef.frame, &p) }); allocs != 0 {
			t.Errorf("%s: %v allocations per Decode", ef.name, allocs)
		}
	}
}
