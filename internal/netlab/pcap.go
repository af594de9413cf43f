package netlab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCPFlags is the TCP flag byte (FIN = 0x01 ... CWR = 0x80).
type TCPFlags uint8

// TCP flags.
const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

var flagNames = []struct {
	f      TCPFlags
	letter string
	nft    string
}{
	{FIN, "F", "fin"}, {SYN, "S", "syn"}, {RST, "R", "rst"}, {PSH, "P", "psh"},
	{ACK, ".", "ack"}, {URG, "U", "urg"}, {ECE, "E", "ecn"}, {CWR, "W", "cwr"},
}

// Has reports whether every flag in g is set in f.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// String renders the flags as tcpdump does: "S", "S.", "P.", "F.", "R", ...
func (f TCPFlags) String() string {
	var b strings.Builder
	for _, n := range flagNames {
		if f&n.f != 0 {
			b.WriteString(n.letter)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func (f TCPFlags) nftNames() []string {
	var s []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			s = append(s, n.nft)
		}
	}
	return s
}

// Segment is one captured TCP segment, summarized for assertions.
type Segment struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    TCPFlags
	Window   uint16 // as on the wire, not scaled
	Len      int    // payload bytes
	// FrameLen is the length of the whole frame on the wire.
	FrameLen int
	// ChecksumOK reports whether the TCP checksum verifies.
	ChecksumOK bool
}

// String renders the segment like a tcpdump line.
func (s Segment) String() string {
	return fmt.Sprintf("%s %s > %s [%s] seq %d ack %d win %d len %d",
		s.Time.Format("15:04:05.000000"), s.Src, s.Dst, s.Flags, s.Seq, s.Ack, s.Window, s.Len)
}

// ReadSegments returns the TCP segments of a pcap file (Ethernet, as tcpdump
// on a bridge port writes it), skipping non-TCP frames. A file still being
// written may end in a partial record; that record is ignored.
func ReadSegments(path string) ([]Segment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// A minimal pcap reader: pcapgo needs golang.org/x/net, which the
	// module's go.sum does not carry.
	if len(b) < 24 {
		return nil, nil // tcpdump has not written the header yet
	}
	var (
		order binary.ByteOrder
		nanos bool
	)
	switch {
	case binary.LittleEndian.Uint32(b) == 0xa1b2c3d4:
		order = binary.LittleEndian
	case binary.BigEndian.Uint32(b) == 0xa1b2c3d4:
		order = binary.BigEndian
	case binary.LittleEndian.Uint32(b) == 0xa1b23c4d:
		order, nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(b) == 0xa1b23c4d:
		order, nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%s: not a pcap file (magic %#x)", path, b[:4])
	}
	if lt := order.Uint32(b[20:]) & 0xffff; lt != uint32(layers.LinkTypeEthernet) {
		return nil, fmt.Errorf("%s: link type %d, want Ethernet (1)", path, lt)
	}
	var (
		segs []Segment
		eth  layers.Ethernet
		ip4  layers.IPv4
		ip6  layers.IPv6
		tcp  layers.TCP
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 4)
	for off := 24; off+16 <= len(b); {
		sec, frac := order.Uint32(b[off:]), order.Uint32(b[off+4:])
		incl, orig := int(order.Uint32(b[off+8:])), int(order.Uint32(b[off+12:]))
		off += 16
		if incl > len(b)-off {
			break // partial record at the end of a growing file
		}
		data := b[off : off+incl]
		off += incl
		ts := time.Unix(int64(sec), int64(frac)*1000)
		if nanos {
			ts = time.Unix(int64(sec), int64(frac))
		}
		if err := parser.DecodeLayers(data, &decoded); err != nil {
			continue
		}
		var src, dst netip.Addr
		isTCP := false
		for _, lt := range decoded {
			switch lt {
			case layers.LayerTypeIPv4:
				src, _ = netip.AddrFromSlice(ip4.SrcIP.To4())
				dst, _ = netip.AddrFromSlice(ip4.DstIP.To4())
				_ = tcp.SetNetworkLayerForChecksum(&ip4)
			case layers.LayerTypeIPv6:
				src, _ = netip.AddrFromSlice(ip6.SrcIP)
				dst, _ = netip.AddrFromSlice(ip6.DstIP)
				_ = tcp.SetNetworkLayerForChecksum(&ip6)
			case layers.LayerTypeTCP:
				isTCP = true
			}
		}
		if !isTCP || !src.IsValid() {
			continue
		}
		var fl TCPFlags
		for _, fb := range []struct {
			set bool
			f   TCPFlags
		}{{tcp.FIN, FIN}, {tcp.SYN, SYN}, {tcp.RST, RST}, {tcp.PSH, PSH}, {tcp.ACK, ACK}, {tcp.URG, URG}, {tcp.ECE, ECE}, {tcp.CWR, CWR}} {
			if fb.set {
				fl |= fb.f
			}
		}
		_, sum := tcp.VerifyChecksum()
		segs = append(segs, Segment{
			Time:       ts,
			Src:        netip.AddrPortFrom(src, uint16(tcp.SrcPort)),
			Dst:        netip.AddrPortFrom(dst, uint16(tcp.DstPort)),
			Seq:        tcp.Seq,
			Ack:        tcp.Ack,
			Flags:      fl,
			Window:     tcp.Window,
			Len:        len(tcp.Payload),
			FrameLen:   orig,
			ChecksumOK: sum.Valid,
		})
	}
	return segs, nil
}
