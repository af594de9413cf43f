// Package capture turns captured frames into fixed-size TCP segment
// summaries: file readers (pcap, pcapng), link-layer and IP decoding, IPv4
// and IPv6 fragment reassembly, and the symmetric hash that shards flows to
// workers.
//
// One frame's path: a Source yields a Frame (bytes valid until the next
// call), a Decoder fills a Packet from it, and a Sharder copies the Packet
// into the batch of the worker that owns its flow.
package capture

import "net/netip"

// LinkType is a pcap LINKTYPE_ value (tcpdump.org/linktypes.html).
type LinkType uint16

// Link types tcptap decodes. Other values are counted as unsupported.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback, host-order 4-byte family
	LinkTypeEthernet  LinkType = 1   // Ethernet II, 802.1Q, 802.1ad, MPLS
	LinkTypeRawOld    LinkType = 12  // raw IP on some BSDs (DLT_RAW)
	LinkTypeRawOld2   LinkType = 14  // raw IP on OpenBSD
	LinkTypeRaw       LinkType = 101 // raw IPv4/IPv6, version from the first nibble
	LinkTypeLoop      LinkType = 108 // OpenBSD loopback, network-order family
	LinkTypeLinuxSLL  LinkType = 113 // Linux "cooked" capture v1
	LinkTypeIPv4      LinkType = 228
	LinkTypeIPv6      LinkType = 229
	LinkTypeLinuxSLL2 LinkType = 276 // Linux "cooked" capture v2
)

// Frame is one captured frame as a Source yields it. Data is only valid
// until the next call to the Source's Next method.
type Frame struct {
	Data      []byte
	Timestamp int64  // nanoseconds since the Unix epoch
	WireLen   uint32 // original length on the wire (>= len(Data))
	LinkType  LinkType
	Interface uint16 // index of the capture interface within the source
}

// Flags are the TCP header flags, in their header bit positions (NS is bit 8).
type Flags uint16

// TCP flags.
const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
	FlagNS
)

// Has reports whether all flags in m are set.
func (f Flags) Has(m Flags) bool { return f&m == m }

// Any reports whether any flag in m is set.
func (f Flags) Any(m Flags) bool { return f&m != 0 }

// String returns the flags as tcpdump prints them ("S.", "F.", "R", "P.", ...).
func (f Flags) String() string {
	var b [10]byte
	n := 0
	for _, c := range [...]struct {
		f Flags
		c byte
	}{{FlagSYN, 'S'}, {FlagFIN, 'F'}, {FlagRST, 'R'}, {FlagPSH, 'P'}, {FlagURG, 'U'}, {FlagECE, 'E'}, {FlagCWR, 'W'}, {FlagACK, '.'}} {
		if f&c.f != 0 {
			b[n] = c.c
			n++
		}
	}
	if n == 0 {
		return "none"
	}
	return string(b[:n])
}

// Family is the IP version of a packet: 4 or 6.
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "unknown"
}

// Addr is an IP address in a fixed 16-byte form: an IPv4 address occupies the
// first four bytes and the rest are zero. It is comparable and allocation-free;
// use Packet.SrcAddr/DstAddr or AddrOf to get a netip.Addr.
type Addr [16]byte

// AddrOf converts a to a netip.Addr of the given family.
func AddrOf(a Addr, f Family) netip.Addr {
	if f == IPv4 {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(a)
}

// AddrFrom converts a netip.Addr to the fixed form and its family.
func AddrFrom(ip netip.Addr) (Addr, Family) {
	var a Addr
	if ip.Is4() || ip.Is4In6() {
		v4 := ip.Unmap().As4()
		copy(a[:], v4[:])
		return a, IPv4
	}
	return ip.As16(), IPv6
}

// TCPOptions are the TCP options tcptap tracks. WScale is -1 when the
// window-scale option is absent.
type TCPOptions struct {
	MSS           uint16 // 0 when absent
	WScale        int8   // -1 when absent
	SACKPermitted bool
	SACKBlocks    uint8 // number of SACK blocks carried
	HasTimestamp  bool
	TSVal, TSEcr  uint32
}

// Packet is the fixed-size summary of one TCP segment: everything the rest of
// the pipeline needs, with no pointers into capture buffers.
type Packet struct {
	Timestamp int64 // nanoseconds since the Unix epoch
	Src, Dst  Addr
	SrcPort   uint16
	DstPort   uint16
	Family    Family
	VLANCount uint8     // number of 802.1Q/802.1ad tags, outermost first
	VLAN      [2]uint16 // VLAN IDs (12 bits) of up to two tags
	Interface uint16    // capture interface index within its source

	Seq, Ack uint32
	Flags    Flags
	Window   uint16 // raw, unscaled window field
	Checksum uint16 // TCP checksum field as captured (not verified)
	Urgent   uint16
	Options  TCPOptions

	IPID      uint16 // IPv4 identification (0 for IPv6)
	TTL       uint8  // IPv4 TTL or IPv6 hop limit
	IPHdrLen  uint16 // IP header length including IPv6 extension headers
	TCPHdrLen uint8  // TCP header length (data offset * 4)
	IPLen     uint32 // IP datagram length from the IP header (header + payload)

	// PayloadLen is the TCP segment length from the IP length fields, not
	// from the captured bytes, so a snap length does not shorten it.
	PayloadLen uint32
	WireLen    uint32 // frame length on the wire
	CapLen     uint32 // captured bytes of the frame
	Fragmented bool   // rebuilt from IPv4 or IPv6 fragments
	// OptionsTruncated: the capture cut the TCP header inside its options;
	// Options holds those captured whole, the rest are unknown.
	OptionsTruncated bool
	// IPOffset is where the IP header starts in the frame, so the flight
	// recorder can copy the IP and TCP headers (not meaningful when
	// Fragmented: the headers were rebuilt from several frames).
	IPOffset uint16
}

// HeaderBytes returns the IP and TCP header bytes of p within frame, the
// frame p was decoded from, at most max bytes; nil when p was rebuilt from
// fragments or the headers were not captured whole.
func (p *Packet) HeaderBytes(frame []byte, max int) []byte {
	if p.Fragmented {
		return nil
	}
	start := int(p.IPOffset)
	end := start + int(p.IPHdrLen) + int(p.TCPHdrLen)
	if end > len(frame) || start >= end {
		return nil
	}
	if end-start > max {
		end = start + max
	}
	return frame[start:end]
}

// SrcAddr returns the source address.
func (p *Packet) SrcAddr() netip.Addr { return AddrOf(p.Src, p.Family) }

// DstAddr returns the destination address.
func (p *Packet) DstAddr() netip.Addr { return AddrOf(p.Dst, p.Family) }

// SrcAddrPort returns the source endpoint.
func (p *Packet) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.SrcAddr(), p.SrcPort) }

// DstAddrPort returns the destination endpoint.
func (p *Packet) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.DstAddr(), p.DstPort) }
