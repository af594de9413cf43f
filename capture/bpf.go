package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// The kernel filter of a live capture socket (classic BPF, attached with
// SO_ATTACH_FILTER). It runs in the kernel on every frame of the interface
// and passes only what the decoder can turn into a TCP segment, so UDP,
// ARP, ICMP and the like never reach the ring:
//
//   - Ethernet with zero, one or two 802.1Q/802.1ad (or 0x9100) tags in the
//     frame, then IPv4 with protocol 6 (every fragment of a TCP datagram,
//     the first and the others, since the protocol field is in every
//     fragment), or IPv6 whose next header is TCP directly or after as many
//     hop-by-hop, routing, destination-options, fragment or authentication
//     headers as the decoder walks (every fragment of a TCP datagram again:
//     the fragment header names TCP in each);
//   - MPLS (0x8847/0x8848) unexamined: the decoder walks the label stack and
//     counts what is not TCP; likewise the Ethernet-level encapsulations
//     the decoder follows (PPPoE sessions, FabricPath, PBB, E-Tag, VN-Tag)
//     and 802.3 frames with a SNAP header;
//   - tunnels, unexamined inside: IPv4 or IPv6 carrying GRE, IP in IP, or
//     UDP to or from a configured tunnel port (VXLAN, Geneve, GTP-U, GRE
//     in UDP); classic BPF cannot follow every nesting the decoder does,
//     so the decoder drops (and counts) tunnelled traffic that is not TCP;
//   - on a raw-IP link (tun, IPIP, WireGuard, ... read with SOCK_DGRAM) the
//     same IPv4/IPv6 tests from the first byte.
//
// The receive path strips an outer 802.1Q or 802.1ad tag into the packet's
// metadata before packet sockets see the frame (__netif_receive_skb_core
// untags in software when the NIC did not), so on a trunk the filter sees
// a frame with one tag fewer than the wire had; that is why zero tags must
// pass. The stripped tag comes back as the frame's ancillary data
// ([LiveSource.LastVLAN]).
//
// An accepted frame is cut to the snap length by the filter's return value:
// with TPACKET_V3 that is the only truncation (frames are packed into the
// ring's blocks at their own length), so it decides how many frames a ring
// holds.
//
// With skipOutgoing the filter first rejects frames whose packet type
// (skb->pkt_type, SKF_AD_PKTTYPE) is PACKET_OUTGOING. On a loopback device
// the kernel shows every packet twice, once as it is sent (outgoing) and
// once as it is received (host); keeping only the received copy counts each
// packet once. Filtering in the kernel rather than by the sll_pkttype of
// each frame in the ring spares the ring the duplicates.

// packetOutgoing is PACKET_OUTGOING of <linux/if_packet.h>, the packet
// type of a frame the host sends.
const packetOutgoing = 4

const (
	// bpfMaxTags is how many VLAN tags in the frame the filter looks
	// through.
	bpfMaxTags = 2
	// maxBPFInstructions is the kernel's BPF_MAXINSNS.
	maxBPFInstructions = 4096
)

// tcpFilter returns the filter program for frames of linkType
// (LinkTypeEthernet, or LinkTypeRaw for frames that start with the IP
// header), accepting at most snaplen bytes of each. Conditional jumps in
// classic BPF reach at most 255 instructions ahead, so every section ends in
// its own return instructions instead of jumping to shared ones.
// udpPorts are the UDP tunnel ports passed (nil: DefaultUDPTunnelPorts).
func tcpFilter(linkType LinkType, snaplen uint32, skipOutgoing bool, udpPorts []UDPTunnelPort) ([]bpf.Instruction, error) {
	if udpPorts == nil {
		udpPorts = DefaultUDPTunnelPorts
	}
	if snaplen == 0 {
		return nil, fmt.Errorf("filter: snap length must be positive")
	}
	var b progBuilder
	accept := bpf.RetConstant{Val: snaplen}
	drop := bpf.RetConstant{Val: 0}
	if skipOutgoing {
		b.emit(bpf.LoadExtension{Num: bpf.ExtType})
		b.emit(bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: packetOutgoing, SkipTrue: 1})
		b.emit(drop)
	}
	switch linkType {
	case LinkTypeEthernet:
		// X is the offset of the current EtherType field.
		for tag := 0; tag <= bpfMaxTags; tag++ {
			b.label(fmt.Sprintf("tag%d", tag))
			b.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: uint32(12 + vlanTagLen*tag)})
			b.emit(bpf.LoadIndirect{Off: 0, Size: 2})
			if tag == bpfMaxTags {
				break
			}
			next := fmt.Sprintf("tag%d", tag+1)
			b.jumpIf(bpf.JumpEqual, etherTypeDot1Q, next, "")
			b.jumpIf(bpf.JumpEqual, etherTypeDot1AD, next, "")
			b.jumpIf(bpf.JumpEqual, etherTypeQinQ9100, next, "")
			b.jump("ethertype")
		}
		b.label("ethertype")
		b.jumpIf(bpf.JumpEqual, etherTypeIPv4, "eth-ip", "")
		b.jumpIf(bpf.JumpEqual, etherTypeIPv6, "eth-ip", "")
		for _, t := range [...]uint32{etherTypeMPLSUnicast, etherTypeMPLSMulticast, etherTypePPPoESession,
			etherTypeFabricPath, etherTypePBB, etherTypeETag, etherTypeVNTag} {
			b.jumpIf(bpf.JumpEqual, t, "eth-accept", "")
		}
		b.jumpIf(bpf.JumpLessOrEqual, maxEthernetLength, "eth-llc", "")
		b.emit(drop)
		b.label("eth-accept")
		b.emit(accept)
		// 802.3 length: pass LLC with SNAP (DSAP and SSAP 0xAA), not the
		// spanning tree's BPDUs and the like.
		b.label("eth-llc")
		b.emit(bpf.LoadIndirect{Off: 2, Size: 2})
		b.jumpIf(bpf.JumpEqual, llcSAPSNAP<<8|llcSAPSNAP, "eth-llc-accept", "")
		b.emit(drop)
		b.label("eth-llc-accept")
		b.emit(accept)
		// Move X from the EtherType field to the IP header behind it; A
		// keeps the EtherType.
		b.label("eth-ip")
		b.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
		b.emit(bpf.TXA{})
		b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 2})
		b.emit(bpf.TAX{})
		b.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
		b.jumpIf(bpf.JumpEqual, etherTypeIPv4, "ipv4", "ipv6")
	case LinkTypeRaw:
		b.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
		b.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
		b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		b.jumpIf(bpf.JumpEqual, 4, "ipv4", "")
		b.jumpIf(bpf.JumpEqual, 6, "ipv6", "")
		b.emit(drop)
	default:
		return nil, fmt.Errorf("filter: link type %d not supported", linkType)
	}

	// From here on X is the offset of the IP header.
	b.label("ipv4")
	b.emit(bpf.LoadIndirect{Off: 9, Size: 1}) // protocol
	b.jumpIf(bpf.JumpEqual, ipProtocolTCP, "ipv4-accept", "")
	b.tunnelProtocols("ipv4-accept", "ipv4-udp")
	b.emit(drop)
	b.label("ipv4-accept")
	b.emit(accept)
	// X = the UDP header's offset: the IP header's plus its length.
	b.label("ipv4-udp")
	b.emit(bpf.LoadIndirect{Off: 0, Size: 1})
	b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	b.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	b.emit(bpf.TAX{})
	b.jump("udp")

	b.label("ipv6")
	b.emit(bpf.LoadIndirect{Off: 6, Size: 1}) // next header
	b.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	b.emit(bpf.TXA{})
	b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: ipv6HeaderLen})
	b.emit(bpf.TAX{})
	b.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	// A is a next-header value and X the offset of the header it names.
	// Walk as many extension headers as the decoder does.
	for i := 0; i < maxIPv6ExtensionHeaders; i++ {
		l := func(s string) string { return fmt.Sprintf("ext%d-%s", i, s) }
		next := fmt.Sprintf("ext%d", i+1)
		b.label(fmt.Sprintf("ext%d", i))
		b.jumpIf(bpf.JumpEqual, ipProtocolTCP, l("accept"), "")
		b.tunnelProtocols(l("accept"), l("udp"))
		b.jumpIf(bpf.JumpEqual, ipv6HopByHop, l("len"), "")
		b.jumpIf(bpf.JumpEqual, ipv6Routing, l("len"), "")
		b.jumpIf(bpf.JumpEqual, ipv6DestOptions, l("len"), "")
		b.jumpIf(bpf.JumpEqual, ipv6Fragment, l("frag"), "")
		b.jumpIf(bpf.JumpEqual, ipv6AH, l("ah"), "")
		b.emit(drop)
		b.label(l("accept"))
		b.emit(accept)
		b.label(l("udp"))
		b.jump("udp")
		// Hop-by-hop, routing, destination options: (len+1)*8 bytes.
		b.label(l("len"))
		b.extensionHeader(func() {
			b.emit(bpf.LoadIndirect{Off: 1, Size: 1})
			b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1})
			b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3})
			b.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		})
		b.jump(next)
		// Fragment header: 8 bytes.
		b.label(l("frag"))
		b.extensionHeader(func() {
			b.emit(bpf.TXA{})
			b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: ipv6FragmentHeaderLen})
		})
		b.jump(next)
		// Authentication header: (len+2)*4 bytes.
		b.label(l("ah"))
		b.extensionHeader(func() {
			b.emit(bpf.LoadIndirect{Off: 1, Size: 1})
			b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 2})
			b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
			b.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		})
		// Falls through to the next round.
	}
	b.label(fmt.Sprintf("ext%d", maxIPv6ExtensionHeaders))
	b.jumpIf(bpf.JumpEqual, ipProtocolTCP, "last-accept", "")
	b.emit(drop)
	b.label("last-accept")
	b.emit(accept)

	// X is the offset of a UDP header: pass it when either port is a
	// tunnel's (the decoder tries the destination port, then the source).
	b.label("udp")
	for _, off := range [...]uint32{2, 0} {
		b.emit(bpf.LoadIndirect{Off: off, Size: 2})
		for _, p := range udpPorts[:min(len(udpPorts), maxUDPTunnelPorts)] {
			b.jumpIf(bpf.JumpEqual, uint32(p.Port), "udp-accept", "")
		}
	}
	b.emit(drop)
	b.label("udp-accept")
	b.emit(accept)
	return b.build()
}

// tunnelProtocols emits the jumps on an IP protocol number in A that the
// decoder may follow to TCP: GRE and IP in IP to accept, UDP to udp.
func (b *progBuilder) tunnelProtocols(accept, udp string) {
	b.jumpIf(bpf.JumpEqual, ipProtocolGRE, accept, "")
	b.jumpIf(bpf.JumpEqual, ipProtocolIPv4, accept, "")
	b.jumpIf(bpf.JumpEqual, ipProtocolIPv6, accept, "")
	b.jumpIf(bpf.JumpEqual, ipProtocolUDP, udp, "")
}

// extensionHeader emits the step over one IPv6 extension header at X:
// A = its next-header field, X = the offset after it; length computes that
// offset into A (X still pointing at the header).
func (b *progBuilder) extensionHeader(length func()) {
	b.emit(bpf.LoadIndirect{Off: 0, Size: 1})
	b.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	length()
	b.emit(bpf.TAX{})
	b.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
}

// progBuilder assembles a classic BPF program with named forward jump
// targets, so the filter reads as a flow chart instead of skip counts.
type progBuilder struct {
	insts  []bpf.Instruction
	labels map[string]int
	jumps  []pendingJump
}

// pendingJump is a jump whose targets are resolved by build. An empty
// target means the next instruction.
type pendingJump struct {
	at              int
	ifTrue, ifFalse string
}

func (b *progBuilder) emit(i bpf.Instruction) { b.insts = append(b.insts, i) }

func (b *progBuilder) label(name string) {
	if b.labels == nil {
		b.labels = map[string]int{}
	}
	b.labels[name] = len(b.insts)
}

// jumpIf emits a conditional jump on A.
func (b *progBuilder) jumpIf(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	b.jumps = append(b.jumps, pendingJump{at: len(b.insts), ifTrue: ifTrue, ifFalse: ifFalse})
	b.emit(bpf.JumpIf{Cond: cond, Val: val})
}

// jump emits an unconditional jump.
func (b *progBuilder) jump(to string) {
	b.jumps = append(b.jumps, pendingJump{at: len(b.insts), ifTrue: to})
	b.emit(bpf.Jump{})
}

// build resolves the jumps and returns the program.
func (b *progBuilder) build() ([]bpf.Instruction, error) {
	skip := func(from int, to string) (uint32, error) {
		if to == "" {
			return 0, nil
		}
		target, ok := b.labels[to]
		if !ok {
			return 0, fmt.Errorf("filter: undefined label %q", to)
		}
		if target <= from {
			return 0, fmt.Errorf("filter: backward jump to %q", to)
		}
		return uint32(target - from - 1), nil
	}
	for _, j := range b.jumps {
		t, err := skip(j.at, j.ifTrue)
		if err != nil {
			return nil, err
		}
		switch ins := b.insts[j.at].(type) {
		case bpf.Jump:
			ins.Skip = t
			b.insts[j.at] = ins
		case bpf.JumpIf:
			f, err := skip(j.at, j.ifFalse)
			if err != nil {
				return nil, err
			}
			if t > 255 || f > 255 {
				return nil, fmt.Errorf("filter: conditional jump at %d too far", j.at)
			}
			ins.SkipTrue, ins.SkipFalse = uint8(t), uint8(f)
			b.insts[j.at] = ins
		}
	}
	if len(b.insts) > maxBPFInstructions {
		return nil, fmt.Errorf("filter: %d instructions, more than %d", len(b.insts), maxBPFInstructions)
	}
	return b.insts, nil
}
