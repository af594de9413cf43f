package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Wire-format builders for hand-made frames. They write every byte
// explicitly (miekg/dns style) so a test can also build what gopacket's
// serializers refuse: bad lengths, odd options, unknown tags.

var (
	testIPv4Src = [4]byte{192, 0, 2, 1}
	testIPv4Dst = [4]byte{198, 51, 100, 2}
	testIPv6Src = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	testIPv6Dst = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 15: 2}
)

const (
	testSrcPort  = 40000
	testDstPort  = 443
	testSeq      = 0x01020304
	testAck      = 0xa0b0c0d0
	testWindow   = 0xfaf0
	testChecksum = 0xbeef
	testIPID     = 0x1234
	testTTL      = 61
)

// tcpSegment returns a TCP header carrying options (zero-padded to a multiple
// of four) and flags, followed by payloadLen bytes.
func tcpSegment(flags Flags, options []byte, payloadLen int) []byte {
	headerLen := tcpMinHeaderLen + (len(options)+3)/4*4
	b := make([]byte, headerLen+payloadLen)
	binary.BigEndian.PutUint16(b[0:], testSrcPort)
	binary.BigEndian.PutUint16(b[2:], testDstPort)
	binary.BigEndian.PutUint32(b[4:], testSeq)
	binary.BigEndian.PutUint32(b[8:], testAck)
	b[12] = byte(headerLen/4)<<4 | byte(flags>>8&1)
	b[13] = byte(flags)
	binary.BigEndian.PutUint16(b[14:], testWindow)
	binary.BigEndian.PutUint16(b[16:], testChecksum)
	binary.BigEndian.PutUint16(b[18:], 7) // urgent pointer
	copy(b[20:], options)
	for i := headerLen; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

// ipv4Header returns a 20-byte IPv4 header (plus options) for a datagram
// whose transport part is transportLen bytes long.
func ipv4Header(protocol byte, options []byte, transportLen int, fragment uint16) []byte {
	headerLen := ipv4MinHeaderLen + len(options)
	b := make([]byte, headerLen)
	b[0] = 0x40 | byte(headerLen/4)
	binary.BigEndian.PutUint16(b[2:], uint16(headerLen+transportLen))
	binary.BigEndian.PutUint16(b[4:], testIPID)
	binary.BigEndian.PutUint16(b[6:], fragment)
	b[8] = testTTL
	b[9] = protocol
	copy(b[12:], testIPv4Src[:])
	copy(b[16:], testIPv4Dst[:])
	copy(b[20:], options)
	var sum uint32
	for i := 0; i < headerLen; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	return b
}

func ipv4Packet(protocol byte, transport []byte) []byte {
	return cat(ipv4Header(protocol, nil, len(transport), 0), transport)
}

// ipv6Packet returns an IPv6 packet: header, then the extension headers
// (already chained, first one named by next), then transport.
func ipv6Packet(next byte, extensions, transport []byte) []byte {
	b := make([]byte, ipv6HeaderLen)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(extensions)+len(transport)))
	b[6] = next
	b[7] = testTTL
	copy(b[8:], testIPv6Src[:])
	copy(b[24:], testIPv6Dst[:])
	return cat(b, extensions, transport)
}

// ipv6Extension returns a hop-by-hop, routing or destination-options header
// of 8*(units+1) bytes naming next.
func ipv6Extension(next byte, units int) []byte {
	b := make([]byte, 8*(units+1))
	b[0] = next
	b[1] = byte(units)
	// PadN over the rest, so hop-by-hop and destination options parse.
	b[2] = 1
	b[3] = byte(len(b) - 4)
	return b
}

// ipv6AuthHeader returns an IPsec AH of 4*(words+2) bytes.
func ipv6AuthHeader(next byte, words int) []byte {
	b := make([]byte, 4*(words+2))
	b[0] = next
	b[1] = byte(words)
	return b
}

func ipv6FragmentHeader(next byte, offset int, more bool) []byte {
	b := make([]byte, ipv6FragmentHeaderLen)
	b[0] = next
	v := uint16(offset/8) << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], 0xcafe)
	return b
}

// ethernet returns an Ethernet II frame; each tag is a (TPID, VLAN ID) pair
// and the frame is padded to the 60-byte minimum like a NIC would.
func ethernet(etherType uint16, payload []byte, tags ...[2]uint16) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb}
	for _, tag := range tags {
		b = binary.BigEndian.AppendUint16(b, tag[0])
		b = binary.BigEndian.AppendUint16(b, 0xe000|tag[1]) // priority 7
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// mpls returns a label stack with the bottom-of-stack bit on the last label.
func mpls(labels ...uint32) []byte {
	var b []byte
	for i, label := range labels {
		v := label<<12 | 64 // TTL 64
		if i == len(labels)-1 {
			v |= 1 << 8
		}
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func linuxSLL(protocol uint16, addrLen uint16, payload []byte) []byte {
	b := make([]byte, linuxSLLHeaderLen)
	binary.BigEndian.PutUint16(b[0:], 0) // to us
	binary.BigEndian.PutUint16(b[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(b[4:], addrLen)
	copy(b[6:], []byte{2, 0, 0, 0, 0, 0xaa, 0, 0})
	binary.BigEndian.PutUint16(b[14:], protocol)
	return cat(b, payload)
}

func linuxSLL2(protocol uint16, payload []byte) []byte {
	b := make([]byte, linuxSLL2HeaderLen)
	binary.BigEndian.PutUint16(b[0:], protocol)
	binary.BigEndian.PutUint32(b[4:], 3) // ifindex
	binary.BigEndian.PutUint16(b[8:], 1) // ARPHRD_ETHER
	b[10] = 4                            // outgoing
	b[11] = 6
	copy(b[12:], []byte{2, 0, 0, 0, 0, 0xaa, 0, 0})
	return cat(b, payload)
}

func loopbackLE(family uint32, payload []byte) []byte {
	return cat(binary.LittleEndian.AppendUint32(nil, family), payload)
}

func loopbackBE(family uint32, payload []byte) []byte {
	return cat(binary.BigEndian.AppendUint32(nil, family), payload)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Options used by the tests.
var (
	optMSS        = []byte{2, 4, 0x05, 0xb4}
	optWScale7    = []byte{3, 3, 7}
	optSACKPerm   = []byte{4, 2}
	optTimestamps = []byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	optNOP        = []byte{1}
	optSACK2      = []byte{5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4}
	synOptions    = cat(optMSS, optSACKPerm, optTimestamps, optNOP, optWScale7)
)

// decodeCase is one hand-built frame and what decoding it must give.
type decodeCase struct {
	name string
	link LinkType
	data []byte
	// want is the expected change in the decoder's counters (Frames is
	// implied).
	want DecodeStats
	// check, when set, inspects the produced packet.
	check func(t *testing.T, p *Packet)
	// For truncation: the frame's link header ends at linkEnd, its IP
	// headers at ipEnd and its TCP header at tcpEnd. Zero tcpEnd skips
	// the case in TestDecodeTruncatedEverywhere.
	linkEnd, ipEnd, tcpEnd int
	// cutOverrides gives the expected counters for cuts where the layer
	// cannot be told from the bytes present.
	cutOverrides map[int]DecodeStats
	// gopacketDiffers explains why gopacket's decoding of this frame is
	// not the reference; empty means it must agree exactly.
	gopacketDiffers string
}

var tcpOK = DecodeStats{TCP: 1}

// wantIPv4Segment checks the fields every IPv4 test segment shares.
func wantIPv4Segment(payloadLen uint32) func(*testing.T, *Packet) {
	return func(t *testing.T, p *Packet) {
		t.Helper()
		if p.Family != IPv4 || [4]byte(p.Src[:4]) != testIPv4Src || [4]byte(p.Dst[:4]) != testIPv4Dst || p.Src[4] != 0 {
			t.Errorf("addresses %v -> %v (%v)", p.SrcAddr(), p.DstAddr(), p.Family)
		}
		if p.IPID != testIPID || p.TTL != testTTL {
			t.Errorf("IPID %#x TTL %d", p.IPID, p.TTL)
		}
		checkTCPFields(t, p, payloadLen)
	}
}

func wantIPv6Segment(ipHdrLen uint16, payloadLen uint32) func(*testing.T, *Packet) {
	return func(t *testing.T, p *Packet) {
		t.Helper()
		if p.Family != IPv6 || p.Src != testIPv6Src || p.Dst != testIPv6Dst {
			t.Errorf("addresses %v -> %v (%v)", p.SrcAddr(), p.DstAddr(), p.Family)
		}
		if p.IPID != 0 || p.TTL != testTTL || p.IPHdrLen != ipHdrLen {
			t.Errorf("IPID %#x TTL %d IPHdrLen %d, want IPHdrLen %d", p.IPID, p.TTL, p.IPHdrLen, ipHdrLen)
		}
		checkTCPFields(t, p, payloadLen)
	}
}

func checkTCPFields(t *testing.T, p *Packet, payloadLen uint32) {
	t.Helper()
	if p.SrcPort != testSrcPort || p.DstPort != testDstPort || p.Seq != testSeq || p.Ack != testAck ||
		p.Window != testWindow || p.Checksum != testChecksum || p.Urgent != 7 {
		t.Errorf("TCP fields %+v", p)
	}
	if p.PayloadLen != payloadLen {
		t.Errorf("PayloadLen %d, want %d", p.PayloadLen, payloadLen)
	}
}

func both(checks ...func(*testing.T, *Packet)) func(*testing.T, *Packet) {
	return func(t *testing.T, p *Packet) {
		t.Helper()
		for _, c := range checks {
			c(t, p)
		}
	}
}

func wantVLANs(ids ...uint16) func(*testing.T, *Packet) {
	return func(t *testing.T, p *Packet) {
		t.Helper()
		var want [2]uint16
		copy(want[:], ids)
		if int(p.VLANCount) != len(ids) || p.VLAN != want {
			t.Errorf("VLANs %d %v, want %v", p.VLANCount, p.VLAN, ids)
		}
	}
}

func wantOptions(want TCPOptions) func(*testing.T, *Packet) {
	return func(t *testing.T, p *Packet) {
		t.Helper()
		if p.Options != want {
			t.Errorf("options %+v, want %+v", p.Options, want)
		}
	}
}

var noOptions = TCPOptions{WScale: -1}

// decodeCases builds the table of hand-made frames.
func decodeCases() []decodeCase {
	seg := tcpSegment(FlagSYN|FlagACK, synOptions, 10)
	segHdr := tcpMinHeaderLen + 20 // synOptions are 20 bytes
	ip4 := ipv4Packet(ipProtocolTCP, seg)
	ip6 := ipv6Packet(ipProtocolTCP, nil, seg)
	synOpts := TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, HasTimestamp: true, TSVal: 1, TSEcr: 2}

	ip4Case := func(name string, link LinkType, data []byte, linkEnd int) decodeCase {
		return decodeCase{name: name, link: link, data: data, want: tcpOK,
			check:   both(wantIPv4Segment(10), wantOptions(synOpts)),
			linkEnd: linkEnd, ipEnd: linkEnd + 20, tcpEnd: linkEnd + 20 + segHdr}
	}
	ip6Case := func(name string, link LinkType, data []byte, linkEnd int) decodeCase {
		return decodeCase{name: name, link: link, data: data, want: tcpOK,
			check:   both(wantIPv6Segment(40, 10), wantOptions(synOpts)),
			linkEnd: linkEnd, ipEnd: linkEnd + 40, tcpEnd: linkEnd + 40 + segHdr}
	}
	dot1q := func(id uint16) [2]uint16 { return [2]uint16{etherTypeDot1Q, id} }
	dot1ad := func(id uint16) [2]uint16 { return [2]uint16{etherTypeDot1AD, id} }

	cases := []decodeCase{
		// Link types.
		ip4Case("ethernet/ipv4", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4), 14),
		ip6Case("ethernet/ipv6", LinkTypeEthernet, ethernet(etherTypeIPv6, ip6), 14),
		ip4Case("sll/ipv4", LinkTypeLinuxSLL, linuxSLL(etherTypeIPv4, 6, ip4), 16),
		ip6Case("sll/ipv6", LinkTypeLinuxSLL, linuxSLL(etherTypeIPv6, 6, ip6), 16),
		func() decodeCase {
			c := ip4Case("sll/oversized-address", LinkTypeLinuxSLL, linuxSLL(etherTypeIPv4, 20, ip4), 16)
			c.gopacketDiffers = "gopacket rejects an SLL address length above 8; libpcap keeps the first 8 bytes"
			return c
		}(),
		func() decodeCase {
			c := ip4Case("sll/vlan", LinkTypeLinuxSLL, linuxSLL(etherTypeDot1Q, 6, cat([]byte{0, 42, 8, 0}, ip4)), 20)
			c.check = both(c.check, wantVLANs(42))
			return c
		}(),
		ip4Case("sll2/ipv4", LinkTypeLinuxSLL2, linuxSLL2(etherTypeIPv4, ip4), 20),
		ip6Case("sll2/ipv6", LinkTypeLinuxSLL2, linuxSLL2(etherTypeIPv6, ip6), 20),
		ip4Case("null-le/ipv4", LinkTypeNull, loopbackLE(2, ip4), 4),
		ip4Case("null-be/ipv4", LinkTypeNull, loopbackBE(2, ip4), 4),
		ip6Case("null-le/ipv6-24", LinkTypeNull, loopbackLE(24, ip6), 4),
		ip6Case("null-le/ipv6-28", LinkTypeNull, loopbackLE(28, ip6), 4),
		ip6Case("null-be/ipv6-30", LinkTypeNull, loopbackBE(30, ip6), 4),
		ip4Case("loop/ipv4", LinkTypeLoop, loopbackBE(2, ip4), 4),
		ip6Case("loop/ipv6", LinkTypeLoop, loopbackBE(24, ip6), 4),
		ip4Case("raw/ipv4", LinkTypeRaw, ip4, 0),
		ip6Case("raw/ipv6", LinkTypeRaw, ip6, 0),
		ip4Case("raw12/ipv4", LinkTypeRawOld, ip4, 0),
		ip6Case("raw14/ipv6", LinkTypeRawOld2, ip6, 0),
		ip4Case("ipv4-link", LinkTypeIPv4, ip4, 0),
		ip6Case("ipv6-link", LinkTypeIPv6, ip6, 0),

		// VLAN tags.
		func() decodeCase {
			c := ip4Case("vlan", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4, dot1q(100)), 18)
			c.check = both(c.check, wantVLANs(100))
			return c
		}(),
		func() decodeCase {
			c := ip6Case("qinq-88a8/ipv6", LinkTypeEthernet, ethernet(etherTypeIPv6, ip6, dot1ad(200), dot1q(4095)), 22)
			c.check = both(c.check, wantVLANs(200, 4095))
			return c
		}(),
		func() decodeCase {
			c := ip4Case("qinq-9100", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4, [2]uint16{etherTypeQinQ9100, 7}, dot1q(8)), 22)
			c.check = both(c.check, wantVLANs(7, 8))
			c.gopacketDiffers = "gopacket does not know the pre-standard 0x9100 QinQ TPID"
			return c
		}(),
		func() decodeCase {
			c := ip4Case("three-tags", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4, dot1ad(1), dot1q(2), dot1q(3)), 26)
			c.check = both(c.check, wantVLANs(1, 2)) // Packet has room for two
			return c
		}(),

		// MPLS.
		func() decodeCase {
			c := ip4Case("mpls/ipv4", LinkTypeEthernet, ethernet(etherTypeMPLSUnicast, cat(mpls(1000), ip4)), 18)
			return c
		}(),
		ip6Case("mpls-stack/ipv6", LinkTypeEthernet, ethernet(etherTypeMPLSMulticast, cat(mpls(16, 17, 2), ip6)), 26),
		func() decodeCase {
			c := ip4Case("vlan/mpls/ipv4", LinkTypeEthernet, ethernet(etherTypeMPLSUnicast, cat(mpls(5), ip4), dot1q(10)), 22)
			c.check = both(c.check, wantVLANs(10))
			return c
		}(),
		func() decodeCase {
			inner := ethernet(etherTypeIPv4, ip4, dot1q(33))
			c := ip4Case("mpls/control-word/ethernet", LinkTypeEthernet,
				ethernet(etherTypeMPLSUnicast, cat(mpls(1000), []byte{0, 0, 0, 1}, inner)), 14+4+4+18)
			c.check = both(c.check, wantVLANs(33))
			c.gopacketDiffers = "gopacket does not decode a pseudowire control word"
			// Nothing after the label stack: IP is the likelier payload.
			c.cutOverrides = map[int]DecodeStats{18: {TruncatedIP: 1}}
			return c
		}(),
		{name: "mpls/control-word/nested", link: LinkTypeEthernet,
			data: ethernet(etherTypeMPLSUnicast, cat(mpls(1), []byte{0, 0, 0, 1},
				ethernet(etherTypeMPLSUnicast, cat(mpls(2), []byte{0, 0, 0, 1}, ethernet(etherTypeIPv4, ip4))))),
			want: DecodeStats{NonIP: 1}},
		{name: "mpls/ach", link: LinkTypeEthernet, data: ethernet(etherTypeMPLSUnicast, cat(mpls(13), []byte{0x10, 0, 0, 0x21}, ip4)),
			want: DecodeStats{NonIP: 1}},
		{name: "mpls/no-bottom", link: LinkTypeEthernet, data: cat(ethernet(etherTypeMPLSUnicast, nil)[:14], []byte{0, 0, 0, 64}),
			want: DecodeStats{TruncatedLink: 1}},

		// IPv6 extension headers.
		func() decodeCase {
			ext := cat(ipv6Extension(ipv6Routing, 0), ipv6Extension(ipv6DestOptions, 2), ipv6Extension(ipv6AH, 0),
				ipv6AuthHeader(ipProtocolTCP, 4))
			hdr := uint16(40 + len(ext))
			return decodeCase{name: "ipv6/extension-chain", link: LinkTypeEthernet,
				data: ethernet(etherTypeIPv6, ipv6Packet(ipv6HopByHop, ext, seg)), want: tcpOK,
				check:   both(wantIPv6Segment(hdr, 10), wantOptions(synOpts)),
				linkEnd: 14, ipEnd: 14 + int(hdr), tcpEnd: 14 + int(hdr) + segHdr}
		}(),
		func() decodeCase {
			ext := cat(ipv6Extension(ipv6Fragment, 0), ipv6FragmentHeader(ipProtocolTCP, 0, false))
			hdr := uint16(40 + len(ext))
			return decodeCase{name: "ipv6/atomic-fragment", link: LinkTypeEthernet,
				data: ethernet(etherTypeIPv6, ipv6Packet(ipv6DestOptions, ext, seg)), want: tcpOK,
				check:   both(wantIPv6Segment(hdr, 10), wantOptions(synOpts)),
				linkEnd: 14, ipEnd: 14 + int(hdr), tcpEnd: 14 + int(hdr) + segHdr,
				gopacketDiffers: "gopacket.NewPacket treats the payload of any fragment header as a fragment, atomic or not (its DecodingLayerParser path does not)"}
		}(),
		func() decodeCase {
			// Held until the rest arrives (frag_test.go reassembles).
			ext := ipv6FragmentHeader(ipProtocolTCP, 0, true)
			return decodeCase{name: "ipv6/first-fragment", link: LinkTypeEthernet,
				data: ethernet(etherTypeIPv6, ipv6Packet(ipv6Fragment, ext, seg[:48])), want: DecodeStats{IPv6Fragments: 1}}
		}(),
		{name: "ipv6/later-fragment", link: LinkTypeEthernet,
			data: ethernet(etherTypeIPv6, ipv6Packet(ipv6Fragment, ipv6FragmentHeader(ipProtocolTCP, 1280, false), seg)),
			want: DecodeStats{IPv6Fragments: 1}},
		{name: "ipv6/hop-by-hop-not-first", link: LinkTypeEthernet,
			data: ethernet(etherTypeIPv6, ipv6Packet(ipv6DestOptions, cat(ipv6Extension(ipv6HopByHop, 0), ipv6Extension(ipProtocolTCP, 0)), seg)),
			want: DecodeStats{BadIPHeader: 1}, gopacketDiffers: "gopacket accepts hop-by-hop anywhere; hosts do not"},
		{name: "ipv6/chain-too-long", link: LinkTypeEthernet,
			data: ethernet(etherTypeIPv6, ipv6Packet(ipv6DestOptions, cat(
				ipv6Extension(ipv6DestOptions, 0), ipv6Extension(ipv6DestOptions, 0), ipv6Extension(ipv6DestOptions, 0),
				ipv6Extension(ipv6DestOptions, 0), ipv6Extension(ipv6DestOptions, 0), ipv6Extension(ipv6DestOptions, 0),
				ipv6Extension(ipv6DestOptions, 0), ipv6Extension(ipv6DestOptions, 0), ipv6Extension(ipProtocolTCP, 0)), seg)),
			want: DecodeStats{BadIPHeader: 1}, gopacketDiffers: "gopacket does not bound the extension chain"},
		{name: "ipv6/extension-beyond-payload-length", link: LinkTypeEthernet,
			data: func() []byte {
				b := ipv6Packet(ipv6DestOptions, ipv6Extension(ipProtocolTCP, 1), seg)
				binary.BigEndian.PutUint16(b[4:], 8) // the 16-byte header does not fit
				return ethernet(etherTypeIPv6, b)
			}(),
			want: DecodeStats{BadIPHeader: 1}},
		{name: "ipv6/esp", link: LinkTypeEthernet, data: ethernet(etherTypeIPv6, ipv6Packet(50, nil, seg)),
			want: DecodeStats{NonTCP: 1}},
		{name: "ipv6/no-next-header", link: LinkTypeEthernet, data: ethernet(etherTypeIPv6, ipv6Packet(59, nil, nil)),
			want: DecodeStats{NonTCP: 1}},
		func() decodeCase {
			// Jumbogram: payload length 0, length in the hop-by-hop option.
			hbh := []byte{ipProtocolTCP, 0, ipv6JumboOption, 4, 0, 0, 0, 0}
			b := ipv6Packet(ipv6HopByHop, hbh, seg)
			binary.BigEndian.PutUint16(b[4:], 0)
			binary.BigEndian.PutUint32(b[44:], 70000) // 8 + header + 70000-8-header bytes of payload
			return decodeCase{name: "ipv6/jumbogram", link: LinkTypeRaw, data: b, want: tcpOK,
				check:           wantIPv6Segment(48, uint32(70000-8-segHdr)),
				gopacketDiffers: "gopacket's jumbo length keeps the captured bytes, not the header's"}
		}(),
		{name: "ipv6/jumbo-length-too-small", link: LinkTypeRaw,
			data: func() []byte {
				b := ipv6Packet(ipv6HopByHop, []byte{ipProtocolTCP, 0, ipv6JumboOption, 4, 0, 0, 0xff, 0xff}, seg)
				binary.BigEndian.PutUint16(b[4:], 0)
				return b
			}(),
			want: DecodeStats{BadIPHeader: 1}},
		func() decodeCase {
			// BIG TCP as captured on the sender: payload length 0, no jumbo option.
			b := ipv6Packet(ipProtocolTCP, nil, seg)
			binary.BigEndian.PutUint16(b[4:], 0)
			return decodeCase{name: "ipv6/payload-length-0", link: LinkTypeRaw, data: b, want: tcpOK,
				check:           wantIPv6Segment(40, 10),
				gopacketDiffers: "gopacket rejects payload length 0 without a jumbo option"}
		}(),

		// IPv4 lengths.
		func() decodeCase {
			b := cat(ipv4Header(ipProtocolTCP, nil, len(seg)+1000, 0), seg) // 1000 bytes beyond the snap length
			return decodeCase{name: "ipv4/snaplen", link: LinkTypeRaw, data: b, want: tcpOK, check: wantIPv4Segment(1010)}
		}(),
		func() decodeCase {
			b := ipv4Packet(ipProtocolTCP, seg)
			binary.BigEndian.PutUint16(b[2:], 0)
			return decodeCase{name: "ipv4/tso-length-0", link: LinkTypeEthernet, data: ethernet(etherTypeIPv4, b), want: tcpOK,
				check: wantIPv4Segment(10)}
		}(),
		{name: "ipv4/padding-ignored", link: LinkTypeEthernet,
			data: ethernet(etherTypeIPv4, ipv4Packet(ipProtocolTCP, tcpSegment(FlagACK, nil, 0))), // padded to 60
			want: tcpOK, check: wantIPv4Segment(0)},
		func() decodeCase {
			b := cat(ipv4Header(ipProtocolTCP, []byte{1, 1, 1, 0}, len(seg), 0), seg) // options: NOPs, EOL
			return decodeCase{name: "ipv4/options", link: LinkTypeRaw, data: b, want: tcpOK,
				check: both(wantIPv4Segment(10), func(t *testing.T, p *Packet) {
					if p.IPHdrLen != 24 || p.IPLen != uint32(24+len(seg)) {
						t.Errorf("IPHdrLen %d IPLen %d", p.IPHdrLen, p.IPLen)
					}
				}), linkEnd: 0, ipEnd: 24, tcpEnd: 24 + segHdr}
		}(),
		{name: "ipv4/total-below-header", link: LinkTypeRaw,
			data: func() []byte { b := ipv4Packet(ipProtocolTCP, seg); binary.BigEndian.PutUint16(b[2:], 19); return b }(),
			want: DecodeStats{BadIPHeader: 1}},
		{name: "ipv4/ihl-below-5", link: LinkTypeRaw,
			data: func() []byte { b := ipv4Packet(ipProtocolTCP, seg); b[0] = 0x44; return b }(),
			want: DecodeStats{BadIPHeader: 1}},
		{name: "ipv4/version-6-on-ipv4-link", link: LinkTypeIPv4, data: ip6, want: DecodeStats{BadIPHeader: 1}},
		{name: "ipv6/version-4-on-ipv6-link", link: LinkTypeIPv6, data: ip4, want: DecodeStats{BadIPHeader: 1}},
		{name: "raw/version-5", link: LinkTypeRaw, data: func() []byte { b := cat(ip4); b[0] = 0x55; return b }(),
			want: DecodeStats{BadIPHeader: 1}},
		{name: "ipv4/tcp-header-beyond-total-length", link: LinkTypeRaw,
			data: func() []byte { b := ipv4Packet(ipProtocolTCP, seg); binary.BigEndian.PutUint16(b[2:], 20+30); return b }(),
			want: DecodeStats{BadTCPHeader: 1}},
		{name: "ipv4/segment-below-20", link: LinkTypeRaw,
			data: func() []byte { b := ipv4Packet(ipProtocolTCP, seg); binary.BigEndian.PutUint16(b[2:], 20+19); return b }(),
			want: DecodeStats{BadTCPHeader: 1}},
		{name: "tcp/data-offset-below-5", link: LinkTypeRaw,
			data: func() []byte { b := ipv4Packet(ipProtocolTCP, seg); b[20+12] = 0x40; return b }(),
			want: DecodeStats{BadTCPHeader: 1}},

		// Not TCP, not IP, not supported.
		{name: "udp", link: LinkTypeEthernet, data: ethernet(etherTypeIPv4, ipv4Packet(17, make([]byte, 8))), want: DecodeStats{NonTCP: 1}},
		{name: "udp-fragment", link: LinkTypeEthernet, data: ethernet(etherTypeIPv4, cat(ipv4Header(17, nil, 16, 0x2000), make([]byte, 16))),
			want: DecodeStats{NonTCP: 1}},
		{name: "icmpv6", link: LinkTypeEthernet, data: ethernet(etherTypeIPv6, ipv6Packet(58, nil, make([]byte, 8))), want: DecodeStats{NonTCP: 1}},
		{name: "arp", link: LinkTypeEthernet, data: ethernet(0x0806, make([]byte, 28)), want: DecodeStats{NonIP: 1}},
		{name: "802.3-llc", link: LinkTypeEthernet, data: ethernet(46, cat([]byte{0x42, 0x42, 3}, ip4)), want: DecodeStats{NonIP: 1}},
		{name: "vlan/arp", link: LinkTypeEthernet, data: ethernet(0x0806, make([]byte, 28), dot1q(5)), want: DecodeStats{NonIP: 1}},
		{name: "sll/netlink", link: LinkTypeLinuxSLL,
			data: func() []byte { b := linuxSLL(etherTypeIPv4, 0, ip4); b[2], b[3] = 0x03, 0x38; return b }(), want: DecodeStats{NonIP: 1}},
		{name: "null/ipx", link: LinkTypeNull, data: loopbackLE(23, ip4), want: DecodeStats{NonIP: 1}},
		{name: "null/garbage", link: LinkTypeNull, data: cat([]byte{1, 2, 3, 4}, ip4), want: DecodeStats{NonIP: 1}},
		{name: "loop/little-endian", link: LinkTypeLoop, data: loopbackLE(2, ip4), want: DecodeStats{NonIP: 1},
			gopacketDiffers: "gopacket guesses the byte order of LINKTYPE_LOOP too; it is network order"},
		{name: "unsupported-link", link: 274, data: ethernet(etherTypeIPv4, ip4), want: DecodeStats{UnsupportedLink: 1}},
		{name: "empty-ethernet", link: LinkTypeEthernet, data: nil, want: DecodeStats{TruncatedLink: 1}},
		{name: "empty-raw", link: LinkTypeRaw, data: nil, want: DecodeStats{TruncatedIP: 1}},

		// TCP options.
		{name: "options/none", link: LinkTypeRaw, data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagACK, nil, 5)),
			want: tcpOK, check: both(wantIPv4Segment(5), wantOptions(noOptions))},
		{name: "options/sack-blocks", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagACK, cat(optNOP, optNOP, optTimestamps, optSACK2), 0)),
			want: tcpOK, check: wantOptions(TCPOptions{WScale: -1, SACKBlocks: 2, HasTimestamp: true, TSVal: 1, TSEcr: 2})},
		{name: "options/eol-stops", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagSYN, cat(optMSS, []byte{0}, optWScale7), 0)),
			want: tcpOK, check: wantOptions(TCPOptions{MSS: 1460, WScale: -1})},
		{name: "options/window-scale-clamped", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagSYN, []byte{3, 3, 200}, 0)),
			want: tcpOK, check: wantOptions(TCPOptions{WScale: 14})},
		{name: "options/unknown-skipped", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagSYN, cat([]byte{76, 6, 1, 2, 3, 4}, optMSS), 0)), // TARR-like experimental
			want: tcpOK, check: wantOptions(TCPOptions{MSS: 1460, WScale: -1})},
		{name: "options/length-beyond-area", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagSYN, cat(optMSS, []byte{8, 12, 0, 0}), 0)),
			want: DecodeStats{TCP: 1, BadTCPOption: 1}, check: wantOptions(TCPOptions{MSS: 1460, WScale: -1})},
		{name: "options/length-below-2", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagSYN, cat(optSACKPerm, []byte{2, 1, 0, 0}, optMSS), 0)),
			want: DecodeStats{TCP: 1, BadTCPOption: 1}, check: wantOptions(TCPOptions{SACKPermitted: true, WScale: -1})},
		{name: "options/kind-without-length", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagSYN, []byte{1, 1, 1, 2}, 0)),
			want: DecodeStats{TCP: 1, BadTCPOption: 1}, check: wantOptions(noOptions)},
		{name: "options/wrong-mss-length", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagSYN, cat([]byte{2, 3, 5}, optWScale7, []byte{1, 1}), 0)),
			want: DecodeStats{TCP: 1, BadTCPOption: 1}, check: wantOptions(TCPOptions{WScale: 7})},
		{name: "options/bad-sack-length", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagACK, []byte{5, 6, 0, 0, 0, 0, 1, 1}, 0)),
			want: DecodeStats{TCP: 1, BadTCPOption: 1}, check: wantOptions(noOptions)},
		{name: "flags/ns-cwr-ece", link: LinkTypeRaw,
			data: ipv4Packet(ipProtocolTCP, tcpSegment(FlagNS|FlagCWR|FlagECE|FlagSYN, nil, 0)),
			want: tcpOK, check: func(t *testing.T, p *Packet) {
				if p.Flags != FlagNS|FlagCWR|FlagECE|FlagSYN {
					t.Errorf("flags %v (%#x)", p.Flags, uint16(p.Flags))
				}
			}},
	}
	return cases
}

// causes returns s without the EtherTypes and LinkTypes it names, which
// TestDecodeNamesCauses checks.
func causes(s DecodeStats) DecodeStats {
	s.EtherTypes, s.LinkTypes, s.Tunnels = ValueCounts{}, ValueCounts{}, ValueCounts{}
	return s
}

func TestDecodeCases(t *testing.T) {
	for _, c := range decodeCases() {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(DecoderConfig{})
			// The snap length cut the frame; the wire had all the IP header claims.
			f := Frame{Data: c.data, Timestamp: 1e18, WireLen: uint32(len(c.data) + 1<<20), LinkType: c.link, Interface: 2}
			var p Packet
			got := d.Decode(&f, &p)
			want := c.want
			want.Frames = 1
			if causes(d.Stats) != want {
				t.Errorf("stats\n got %+v\nwant %+v", d.Stats, want)
			}
			if got != (c.want.TCP == 1) {
				t.Fatalf("Decode = %v", got)
			}
			if !got {
				return
			}
			if p.Timestamp != f.Timestamp || p.WireLen != f.WireLen || p.CapLen != uint32(len(c.data)) || p.Interface != 2 {
				t.Errorf("frame fields %d %d %d %d", p.Timestamp, p.WireLen, p.CapLen, p.Interface)
			}
			if c.check != nil {
				c.check(t, &p)
			}
			ref, ok := gopacketSegment(&f)
			switch {
			case c.gopacketDiffers != "":
				if ok && ref == p {
					t.Errorf("gopacket agrees, but the case says it differs: %s", c.gopacketDiffers)
				}
			case !ok:
				t.Errorf("gopacket finds no TCP segment")
			case ref != p:
				t.Errorf("differs from gopacket\n got %+v\nwant %+v", p, ref)
			}
		})
	}
}

// TestDecodeTruncatedEverywhere cuts every frame at every byte: nothing
// panics, the cut is counted by the layer it falls in, and once the TCP
// header is whole the segment is the same (its payload length comes from
// the IP header, not from the captured bytes).
func TestDecodeTruncatedEverywhere(t *testing.T) {
	for _, c := range decodeCases() {
		for cut := 0; cut <= len(c.data); cut++ {
			d := NewDecoder(DecoderConfig{})
			var full, p Packet
			d.Decode(&Frame{Data: c.data, LinkType: c.link}, &full)
			d.Stats = DecodeStats{}
			got := d.Decode(&Frame{Data: c.data[:cut:cut], LinkType: c.link}, &p)
			if c.tcpEnd == 0 {
				continue // only checked not to panic
			}
			var want DecodeStats
			switch {
			case cut < c.linkEnd:
				want.TruncatedLink = 1
			case cut < c.ipEnd:
				want.TruncatedIP = 1
			case cut < c.ipEnd+tcpMinHeaderLen:
				want.TruncatedTCP = 1
			case cut < c.tcpEnd:
				// Options cut: the fixed header still makes a segment.
				want = DecodeStats{TCP: 1, TruncatedTCPOptions: 1}
			default:
				want = c.want
			}
			if o, ok := c.cutOverrides[cut]; ok {
				want = o
			}
			want.Frames = 1
			if causes(d.Stats) != want {
				t.Errorf("%s cut at %d: stats\n got %+v\nwant %+v", c.name, cut, d.Stats, want)
				continue
			}
			if got {
				p.CapLen = full.CapLen
				if p.OptionsTruncated {
					if cut >= c.tcpEnd {
						t.Errorf("%s cut at %d: options flagged truncated", c.name, cut)
					}
					p.OptionsTruncated, p.Options = false, full.Options
				}
				if p != full {
					t.Errorf("%s cut at %d: packet\n got %+v\nwant %+v", c.name, cut, p, full)
				}
			}
		}
	}
}

// TestDecodeZeroesPacket checks no field of an earlier packet survives.
func TestDecodeZeroesPacket(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	var p Packet
	qinq := ethernet(etherTypeIPv6, ipv6Packet(ipProtocolTCP, nil, tcpSegment(FlagSYN, synOptions, 0)),
		[2]uint16{etherTypeDot1AD, 1}, [2]uint16{etherTypeDot1Q, 2})
	if !d.Decode(&Frame{Data: qinq, LinkType: LinkTypeEthernet}, &p) {
		t.Fatal("qinq not decoded")
	}
	plain := ipv4Packet(ipProtocolTCP, tcpSegment(FlagACK, nil, 0))
	if !d.Decode(&Frame{Data: plain, LinkType: LinkTypeRaw}, &p) {
		t.Fatal("plain not decoded")
	}
	want := Packet{
		Src: Addr{192, 0, 2, 1}, Dst: Addr{198, 51, 100, 2}, SrcPort: testSrcPort, DstPort: testDstPort,
		Family: IPv4, Seq: testSeq, Ack: testAck, Flags: FlagACK, Window: testWindow, Checksum: testChecksum,
		Urgent: 7, Options: noOptions, IPID: testIPID, TTL: testTTL, IPHdrLen: 20, TCPHdrLen: 20, IPLen: 40, CapLen: 40,
	}
	if p != want {
		t.Errorf("packet\n got %+v\nwant %+v", p, want)
	}
}

// TestDecoderZeroValue checks a Decoder works without NewDecoder,
// fragments included.
func TestDecoderZeroValue(t *testing.T) {
	var d Decoder
	var p Packet
	for _, f := range fragmentFrames(tcpSegment(FlagSYN, synOptions, 100), 24, false) {
		if d.Decode(&f, &p) {
			break
		}
	}
	if d.Stats.FragmentsDone != 1 || d.Stats.TCP != 1 {
		t.Errorf("stats %+v", d.Stats)
	}
}

// gopacketView is what gopacket makes of a frame, as the Packet tcptap
// should produce, with notes on where the two legitimately part.
type gopacketView struct {
	Packet
	// stoppedAtMPTCP: gopacket stops reading options at an MPTCP option
	// whose length does not fit its subtype; tcptap skips any option by
	// its length and reads on, so later options may differ.
	stoppedAtMPTCP bool
	// ipv6LengthZero: the IPv6 payload length is 0 (jumbogram); gopacket
	// keeps 0 in Length, so its lengths are not the reference.
	ipv6LengthZero bool
}

// gopacketSegment decodes f with gopacket's layers and returns the Packet
// tcptap should produce, if gopacket finds a TCP segment. It is the
// reference of the cross-check and differential fuzz tests.
func gopacketSegment(f *Frame) (Packet, bool) {
	v, ok := gopacketDecode(f)
	return v.Packet, ok
}

func gopacketDecode(f *Frame) (gopacketView, bool) {
	var first gopacket.LayerType
	switch f.LinkType {
	case LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case LinkTypeLinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	case LinkTypeNull, LinkTypeLoop:
		first = layers.LayerTypeLoopback
	case LinkTypeIPv4:
		first = layers.LayerTypeIPv4
	case LinkTypeIPv6:
		first = layers.LayerTypeIPv6
	case LinkTypePPP, LinkTypePPPHDLC:
		first = layers.LayerTypePPP
	case LinkTypeRaw, LinkTypeRawOld, LinkTypeRawOld2:
		if len(f.Data) == 0 {
			return gopacketView{}, false
		}
		switch f.Data[0] >> 4 {
		case 4:
			first = layers.LayerTypeIPv4
		case 6:
			first = layers.LayerTypeIPv6
		default:
			return gopacketView{}, false
		}
	default:
		return gopacketView{}, false
	}
	// A lazy decode stops at the TCP layer. The eager decode that lists
	// every layer then runs on a copy with the ports zeroed, so gopacket
	// does not go on into the application decoders it picks by port:
	// they are not the reference and only add time and panic surface.
	lazy := gopacket.NewPacket(f.Data, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	tcp, _ := lazy.Layer(layers.LayerTypeTCP).(*layers.TCP)
	// gopacket adds the TCP layer even when decoding it failed (data
	// offset below 5 or beyond the data); its contents then are not the
	// whole header.
	if tcp == nil || tcp.DataOffset < 5 || len(tcp.Contents) != int(tcp.DataOffset)*4 {
		return gopacketView{}, false
	}
	srcPort, dstPort := uint16(tcp.SrcPort), uint16(tcp.DstPort)
	tcpStart := cap(f.Data) - cap(tcp.Contents) // Contents aliases f.Data (NoCopy)
	data := bytes.Clone(f.Data)
	clear(data[tcpStart : tcpStart+4])
	pkt := gopacket.NewPacket(data, first, gopacket.DecodeOptions{NoCopy: true})
	tcp, _ = pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		return gopacketView{}, false // only past gopacket's eager depth limit: no opinion
	}

	v := gopacketView{Packet: Packet{Timestamp: f.Timestamp, Interface: f.Interface, WireLen: f.WireLen, CapLen: uint32(len(f.Data))}}
	p := &v.Packet
	var ipLen, extLen int
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.Dot1Q:
			if p.VLANCount < 2 {
				p.VLAN[p.VLANCount] = l.VLANIdentifier
				p.VLANCount++
			}
		case *layers.IPv4:
			p.Family = IPv4
			p.Src, p.Dst = Addr{}, Addr{}
			copy(p.Src[:], l.SrcIP.To4())
			copy(p.Dst[:], l.DstIP.To4())
			// An unfinished source route's last address is the final
			// destination, which tcptap keys on (gopacket keeps the
			// header's next hop).
			for _, o := range l.Options {
				if o.OptionType != ipv4OptionLSRR && o.OptionType != ipv4OptionSSRR {
					continue
				}
				n := int(o.OptionLength)
				if n >= ipv4RouteMinLen && (n-3)%4 == 0 && len(o.OptionData) == n-2 && o.OptionData[0] >= ipv4RouteFirst && int(o.OptionData[0]) <= n {
					copy(p.Dst[:4], o.OptionData[n-6:])
				}
				break
			}
			p.IPID, p.TTL, p.IPHdrLen = l.Id, l.TTL, uint16(l.IHL)*4
			p.IPOffset = uint16(cap(data) - cap(l.Contents)) // Contents aliases data (NoCopy)
			ipLen, extLen = int(l.Length), 0
			v.ipv6LengthZero = false
		case *layers.IPv6:
			p.Family = IPv6
			copy(p.Src[:], l.SrcIP)
			copy(p.Dst[:], l.DstIP)
			p.IPID, p.TTL = 0, l.HopLimit
			p.IPOffset = uint16(cap(data) - cap(l.Contents))
			ipLen, extLen = ipv6HeaderLen+int(l.Length), 0
			v.ipv6LengthZero = l.Length == 0
		case *layers.IPv6HopByHop, *layers.IPv6Routing, *layers.IPv6Destination, *layers.IPv6Fragment, *layers.IPSecAH:
			extLen += len(l.LayerContents())
		}
	}
	if p.Family == IPv6 {
		p.IPHdrLen = uint16(ipv6HeaderLen + extLen)
	}
	p.IPLen = uint32(ipLen)
	p.SrcPort, p.DstPort = srcPort, dstPort
	p.Seq, p.Ack, p.Window, p.Checksum, p.Urgent = tcp.Seq, tcp.Ack, tcp.Window, tcp.Checksum, tcp.Urgent
	for _, fl := range []struct {
		set  bool
		flag Flags
	}{{tcp.FIN, FlagFIN}, {tcp.SYN, FlagSYN}, {tcp.RST, FlagRST}, {tcp.PSH, FlagPSH}, {tcp.ACK, FlagACK},
		{tcp.URG, FlagURG}, {tcp.ECE, FlagECE}, {tcp.CWR, FlagCWR}, {tcp.NS, FlagNS}} {
		if fl.set {
			p.Flags |= fl.flag
		}
	}
	p.TCPHdrLen = tcp.DataOffset * 4
	p.PayloadLen = uint32(ipLen - int(p.IPHdrLen) - int(p.TCPHdrLen))
	p.Options = TCPOptions{WScale: -1}
	for _, o := range tcp.Options {
		n := len(o.OptionData)
		switch o.OptionType {
		case layers.TCPOptionKindMSS:
			if n == 2 {
				p.Options.MSS = binary.BigEndian.Uint16(o.OptionData)
			}
		case layers.TCPOptionKindWindowScale:
			if n == 1 {
				p.Options.WScale = int8(min(o.OptionData[0], tcpMaxWindowScale))
			}
		case layers.TCPOptionKindSACKPermitted:
			if n == 0 {
				p.Options.SACKPermitted = true
			}
		case layers.TCPOptionKindSACK:
			if n > 0 && n%8 == 0 {
				p.Options.SACKBlocks = uint8(n / 8)
			}
		case layers.TCPOptionKindTimestamps:
			if n == 8 {
				p.Options.HasTimestamp = true
				p.Options.TSVal = binary.BigEndian.Uint32(o.OptionData)
				p.Options.TSEcr = binary.BigEndian.Uint32(o.OptionData[4:])
			}
		}
	}
	v.stoppedAtMPTCP = len(tcp.Padding) > 0 && tcp.Padding[0] == byte(layers.TCPOptionKindMultipathTCP)
	return v, true
}

// peerCorpusPresent returns the pcaps directory of the peer capture corpus,
// found beside the module root as ../shared/testdata/peers, and whether it
// exists.
func peerCorpusPresent() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
	peers := filepath.Join(dir, "..", "shared", "testdata", "peers", "pcaps")
	_, err = os.Stat(peers)
	return peers, err == nil
}

// peerCapturesDir returns the peer corpus's pcaps directory. Without it the
// test is skipped, unless the CI environment variable is set.
func peerCapturesDir(t testing.TB) string {
	t.Helper()
	peers, ok := peerCorpusPresent()
	if !ok {
		msg := fmt.Sprintf("peer capture corpus not found (expected ../shared/testdata/peers beside the module root, got %q)", peers)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return peers
}

// peerCaptures returns the corpus files, as paths relative to the pcaps
// directory and absolute paths.
func peerCaptures(t testing.TB) (names, paths []string) {
	dir := peerCapturesDir(t)
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		names = append(names, filepath.ToSlash(rel))
		paths = append(paths, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no captures under %s", dir)
	}
	return names, paths
}

// readFrames reads every frame of a capture, copying the data. A format
// error ends the file; the frames read so far are returned with it.
func readFrames(t testing.TB, path string) ([]Frame, error) {
	t.Helper()
	src, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var frames []Frame
	for {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		f.Data = bytes.Clone(f.Data)
		frames = append(frames, f)
	}
}

// crossCheckDisagreements lists the frames of the peer captures where
// tcptap and gopacket legitimately differ, by file and 1-based frame number.
var crossCheckDisagreements = map[string]map[int]string{
	"zeek/ipv4__fragmented-syn.pcap": {
		2: reasonIPv4Reassembly,
	},
	"arkime/socks5-http-302-frag.pcap": {
		7: reasonIPv4Reassembly, 9: reasonIPv4Reassembly, 27: reasonIPv4Reassembly, 67: reasonIPv4Reassembly,
	},
	"gopacket/layers__testdata__linux_sll_oversized_addr.pcapng": {
		8: reasonSLLAddrLen, 76: reasonSLLAddrLen, 91: reasonSLLAddrLen, 106: reasonSLLAddrLen,
		117: reasonSLLAddrLen, 120: reasonSLLAddrLen,
		15: reasonIPLenBeyondWire, 17: reasonIPLenBeyondWire, 45: reasonIPLenBeyondWire, 68: reasonIPLenBeyondWire,
		81: reasonIPLenBeyondWire, 108: reasonIPLenBeyondWire, 130: reasonIPLenBeyondWire, 190: reasonIPLenBeyondWire,
	},
}

const (
	reasonIPv4Reassembly  = "last IPv4 fragment of a TCP datagram: tcptap reassembles it into a segment, gopacket leaves fragments opaque"
	reasonIPLenBeyondWire = "IP total length larger than the frame's length on the wire: tcptap, like Wireshark (tshark counts these payloads), believes the header only up to the wire length; gopacket trusts the header"
	reasonSLLAddrLen      = "Linux SLL address length field above 8 (the file's point): gopacket rejects the frame; libpcap and Wireshark read the fixed 8-byte address field and decode the rest"
)

// crossCheckUnreadable lists the captures the reader is expected to reject
// part way, with the reason.
var crossCheckUnreadable = map[string]string{
	"gopacket/pcapgo__tests__le__test901.pcapng": "second section header has an unsupported version (the corpus README says so)",
}

// TestCrossCheckPeerCaptures decodes every frame of the peer captures with
// the decoder and with gopacket and requires the same TCP segments, except
// for the frames listed in crossCheckDisagreements.
func TestCrossCheckPeerCaptures(t *testing.T) {
	names, paths := peerCaptures(t)
	var total, segments, documented int
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			frames, err := readFrames(t, paths[i])
			if err != nil {
				if reason, ok := crossCheckUnreadable[name]; ok {
					t.Logf("read error expected (%s): %v", reason, err)
				} else {
					t.Errorf("reading: %v", err)
				}
			}
			d := NewDecoder(DecoderConfig{})
			known := crossCheckDisagreements[name]
			for n, f := range frames {
				frameNo := n + 1
				total++
				var p Packet
				got := d.Decode(&f, &p)
				ref, refOK := gopacketSegment(&f)
				agree := got == refOK && (!got || p == ref)
				if got {
					segments++
				}
				reason, listed := known[frameNo]
				switch {
				case agree && listed:
					t.Errorf("frame %d: listed as differing (%s) but tcptap and gopacket agree", frameNo, reason)
				case !agree && listed:
					documented++
				case !agree:
					t.Errorf("frame %d (link %d, %d bytes): tcptap %v, gopacket %v\n tcptap   %+v\n gopacket %+v\n stats %+v",
						frameNo, f.LinkType, len(f.Data), got, refOK, p, ref, d.Stats)
				}
			}
			for frameNo, reason := range known {
				if frameNo > len(frames) {
					t.Errorf("listed frame %d (%s) beyond the %d frames read", frameNo, reason, len(frames))
				}
			}
			t.Logf("%d frames, stats %+v", len(frames), d.Stats)
		})
	}
	t.Logf("%d captures, %d frames, %d TCP segments, %d documented disagreements", len(names), total, segments, documented)
}

// benchmarkFrames are the frames the allocation test and the benchmarks
// decode: a data segment with timestamps, as most traffic is.
func benchmarkFrames() map[string]Frame {
	seg := tcpSegment(FlagACK|FlagPSH, cat(optNOP, optNOP, optTimestamps), 1448)
	return map[string]Frame{
		"ethernet-ipv4": {Data: ethernet(etherTypeIPv4, ipv4Packet(ipProtocolTCP, seg)), LinkType: LinkTypeEthernet},
		"vlan-ipv6": {Data: ethernet(etherTypeIPv6, ipv6Packet(ipProtocolTCP, nil, seg), [2]uint16{etherTypeDot1Q, 100}),
			LinkType: LinkTypeEthernet},
		// Another connection than ethernet-ipv4's, or the two would be
		// copies of one segment by two paths.
		"vxlan-ipv4": {Data: ethernet(etherTypeIPv4, ipv4Packet(ipProtocolUDP, udpHeader(50000, PortVXLAN,
			cat(vxlanHeader(7), ethernet(etherTypeIPv4, ipv4Packet(ipProtocolTCP, otherPort(seg))))))), LinkType: LinkTypeEthernet},
	}
}

// otherPort returns a copy of a TCP segment with another source port.
func otherPort(seg []byte) []byte {
	b := bytes.Clone(seg)
	b[1]++
	return b
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	var p Packet
	for name, f := range benchmarkFrames() {
		if allocs := testing.AllocsPerRun(1000, func() {
			if !d.Decode(&f, &p) {
				t.Fatal("not decoded")
			}
		}); allocs != 0 {
			t.Errorf("%s: %v allocations per Decode", name, allocs)
		}
	}
	fragments := fragmentFrames(fragmentedSYN, 48, true)
	if allocs := testing.AllocsPerRun(1000, func() {
		for i := range fragments {
			if d.Decode(&fragments[i], &p) != (i == len(fragments)-1) {
				t.Fatal("reassembly did not complete on the last fragment")
			}
		}
	}); allocs != 0 {
		t.Errorf("fragment reassembly: %v allocations per datagram", allocs)
	}
}

func BenchmarkDecode(b *testing.B) {
	for name, f := range benchmarkFrames() {
		b.Run(name, func(b *testing.B) {
			d := NewDecoder(DecoderConfig{})
			var p Packet
			b.ReportAllocs()
			b.SetBytes(int64(len(f.Data)))
			for b.Loop() {
				d.Decode(&f, &p)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
	b.Run("ipv4-fragments", func(b *testing.B) {
		fragments := fragmentFrames(fragmentedSYN, 48, false)
		d := NewDecoder(DecoderConfig{})
		var p Packet
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d.Decode(&fragments[i], &p)
			i = (i + 1) % len(fragments)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	})
}

// BenchmarkGopacketDLP decodes the same frames with gopacket's
// DecodingLayerParser, as the first design planned, and fills the same
// summary, for comparison with BenchmarkDecode.
func BenchmarkGopacketDLP(b *testing.B) {
	var (
		eth   layers.Ethernet
		dot1q layers.Dot1Q
		ip4   layers.IPv4
		ip6   layers.IPv6
		tcp   layers.TCP
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &tcp)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	for name, f := range benchmarkFrames() {
		b.Run(name, func(b *testing.B) {
			var p Packet
			b.ReportAllocs()
			b.SetBytes(int64(len(f.Data)))
			for b.Loop() {
				if err := parser.DecodeLayers(f.Data, &decoded); err != nil {
					b.Fatal(err)
				}
				p = Packet{Timestamp: f.Timestamp, WireLen: f.WireLen, CapLen: uint32(len(f.Data))}
				for _, lt := range decoded {
					switch lt {
					case layers.LayerTypeDot1Q:
						if p.VLANCount < 2 {
							p.VLAN[p.VLANCount] = dot1q.VLANIdentifier
							p.VLANCount++
						}
					case layers.LayerTypeIPv4:
						p.Family, p.IPID, p.TTL, p.IPLen = IPv4, ip4.Id, ip4.TTL, uint32(ip4.Length)
						copy(p.Src[:], ip4.SrcIP)
						copy(p.Dst[:], ip4.DstIP)
					case layers.LayerTypeIPv6:
						p.Family, p.TTL, p.IPLen = IPv6, ip6.HopLimit, ipv6HeaderLen+uint32(ip6.Length)
						copy(p.Src[:], ip6.SrcIP)
						copy(p.Dst[:], ip6.DstIP)
					case layers.LayerTypeTCP:
						p.SrcPort, p.DstPort, p.Seq, p.Ack = uint16(tcp.SrcPort), uint16(tcp.DstPort), tcp.Seq, tcp.Ack
						p.Window, p.TCPHdrLen = tcp.Window, tcp.DataOffset*4
						p.Options = TCPOptions{WScale: -1}
						for _, o := range tcp.Options {
							if o.OptionType == layers.TCPOptionKindTimestamps && len(o.OptionData) == 8 {
								p.Options.HasTimestamp = true
								p.Options.TSVal = binary.BigEndian.Uint32(o.OptionData)
								p.Options.TSEcr = binary.BigEndian.Uint32(o.OptionData[4:])
							}
						}
					}
				}
			}
			if p.Options.TSVal != 1 {
				b.Fatalf("summary not filled: %+v", p)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}
