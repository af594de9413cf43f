package capture

import (
	"testing"
)

// fuzzLinkTypes are the link types FuzzDecode picks from; the last is one
// the decoder does not support.
var fuzzLinkTypes = [...]LinkType{
	LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSLL2, LinkTypeNull, LinkTypeLoop,
	LinkTypeRaw, LinkTypeRawOld, LinkTypeRawOld2, LinkTypeIPv4, LinkTypeIPv6, 274,
}

func fuzzLinkIndex(lt LinkType) uint8 {
	for i, t := range fuzzLinkTypes {
		if t == lt {
			return uint8(i)
		}
	}
	return uint8(len(fuzzLinkTypes) - 1)
}

// addDecodeSeeds seeds a fuzz test with the hand-built frames and the first
// frames of every peer capture.
func addDecodeSeeds(f *testing.F) {
	for _, c := range decodeCases() {
		f.Add(fuzzLinkIndex(c.link), c.data)
	}
	for _, fr := range fragmentFrames(fragmentedSYN, 48, false) {
		f.Add(fuzzLinkIndex(fr.LinkType), fr.Data)
	}
	if _, ok := peerCorpusPresent(); !ok {
		return
	}
	_, paths := peerCaptures(f)
	for _, path := range paths {
		frames, _ := readFrames(f, path)
		for _, fr := range frames[:min(len(frames), 3)] {
			f.Add(fuzzLinkIndex(fr.LinkType), fr.Data)
		}
	}
}

// FuzzDecode decodes arbitrary bytes as a frame of each link type. Decode
// must not panic, must count exactly one cause, must produce a consistent
// packet, and where gopacket also finds a TCP segment the two must agree.
func FuzzDecode(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, link uint8, data []byte) {
		frame := Frame{Data: data, LinkType: fuzzLinkTypes[int(link)%len(fuzzLinkTypes)], Timestamp: 1e18} // WireLen unknown: gopacket trusts the IP lengths
		d := NewDecoder(DecoderConfig{})
		var p Packet
		ok := d.Decode(&frame, &p)
		checkOneOutcome(t, &d.Stats, ok)
		if !ok {
			return
		}
		checkPacketConsistent(t, &frame, &p)

		ref, refOK := gopacketDecode(&frame)
		if !refOK {
			return
		}
		got := p
		if ref.stoppedAtMPTCP {
			got.Options, ref.Options = TCPOptions{}, TCPOptions{}
		}
		if ref.ipv6LengthZero {
			got.IPLen, got.PayloadLen, ref.IPLen, ref.PayloadLen = 0, 0, 0, 0
		}
		if got != ref.Packet {
			t.Errorf("tcptap and gopacket differ on link %d frame %x\n tcptap   %+v\n gopacket %+v", frame.LinkType, data, got, ref.Packet)
		}
	})
}

// checkOneOutcome checks a single frame was counted once, by one cause.
func checkOneOutcome(t *testing.T, s *DecodeStats, ok bool) {
	t.Helper()
	causes := s.TCP + s.NonIP + s.NonTCP + s.UnsupportedLink + s.TruncatedLink + s.TruncatedIP +
		s.BadIPHeader + s.TruncatedTCP + s.BadTCPHeader
	if s.Frames != 1 || causes > 1 || (causes == 0 && s.Fragments == 0 && s.IPv6Fragments == 0) {
		t.Errorf("stats %+v", *s)
	}
	if ok != (s.TCP == 1) {
		t.Errorf("Decode = %v with stats %+v", ok, *s)
	}
}

// checkPacketConsistent checks the invariants of a produced packet.
func checkPacketConsistent(t *testing.T, f *Frame, p *Packet) {
	t.Helper()
	if p.Timestamp != f.Timestamp || p.CapLen != uint32(len(f.Data)) || p.WireLen != f.WireLen {
		t.Errorf("frame fields %+v", p)
	}
	if p.Family != IPv4 && p.Family != IPv6 {
		t.Errorf("family %d", p.Family)
	}
	if p.TCPHdrLen < tcpMinHeaderLen || p.TCPHdrLen > tcpMaxHeaderLen || p.TCPHdrLen%4 != 0 {
		t.Errorf("TCP header length %d", p.TCPHdrLen)
	}
	if uint64(p.IPHdrLen)+uint64(p.TCPHdrLen)+uint64(p.PayloadLen) != uint64(p.IPLen) {
		t.Errorf("lengths: IP header %d + TCP header %d + payload %d != IP length %d", p.IPHdrLen, p.TCPHdrLen, p.PayloadLen, p.IPLen)
	}
	if p.VLANCount > 2 || p.Options.WScale > tcpMaxWindowScale || p.Options.WScale < -1 || p.Options.SACKBlocks > 4 {
		t.Errorf("VLANs %d, options %+v", p.VLANCount, p.Options)
	}
	if p.Family == IPv4 && ([12]byte(p.Src[4:]) != [12]byte{} || [12]byte(p.Dst[4:]) != [12]byte{}) {
		t.Errorf("IPv4 address with bytes beyond the fourth: %v %v", p.Src, p.Dst)
	}
}

// FuzzReassembly cuts a TCP datagram into IPv4 or IPv6 fragments (bit 6
// of order) at fuzzed points and feeds them in a fuzzed order: whatever the
// order, the datagram must come out exactly once, equal to the unfragmented
// packet, unless there are too many pieces, in which case nothing comes out.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte{5, 9, 3}, uint8(0), uint8(20), uint16(100))
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1}, uint8(7), uint8(0), uint16(8))
	f.Add([]byte{200}, uint8(3), uint8(40), uint16(1400))
	f.Add([]byte{5, 9, 3}, uint8(0x41), uint8(20), uint16(100)) // IPv6
	f.Add([]byte{0, 0, 0, 0}, uint8(0xc2), uint8(40), uint16(30))
	f.Fuzz(func(t *testing.T, cuts []byte, order uint8, optionsLen uint8, payloadLen uint16) {
		options := cat(optMSS, optSACKPerm, optTimestamps, optNOP, optWScale7, make([]byte, 20))[:min(int(optionsLen), 40)]
		segment := tcpSegment(FlagSYN|FlagPSH, options, int(payloadLen)%8000)
		ipv6 := order&0x40 != 0
		whole := ipv4Packet(ipProtocolTCP, segment)
		if ipv6 {
			whole = ipv6Packet(ipProtocolTCP, nil, segment)
		}
		var want Packet
		if !NewDecoder(DecoderConfig{}).Decode(&Frame{Data: whole, LinkType: LinkTypeRaw}, &want) {
			t.Fatal("unfragmented datagram not decoded")
		}

		// Fragment boundaries: multiples of 8, from the cut list.
		var bounds []int
		for off, i := 0, 0; off < len(segment) && i < len(cuts); i++ {
			off += 8 * (1 + int(cuts[i])%32)
			if off < len(segment) {
				bounds = append(bounds, off)
			}
		}
		var frames []Frame
		start := 0
		for _, end := range append(bounds, len(segment)) {
			data := cat(ipv4Header(ipProtocolTCP, nil, end-start, fragmentField(start, end < len(segment))), segment[start:end])
			if ipv6 {
				data = ipv6Packet(ipv6Fragment, ipv6FragmentHeader(ipProtocolTCP, start, end < len(segment)), segment[start:end])
			}
			frames = append(frames, Frame{Data: data, LinkType: LinkTypeRaw, Timestamp: 1e18})
			start = end
		}
		if len(frames) < 2 {
			return
		}
		// A rotation and an optional reversal of the fragment order.
		rot := int(order) % len(frames)
		frames = append(frames[rot:], frames[:rot]...)
		if order&0x80 != 0 {
			for i, j := 0, len(frames)-1; i < j; i, j = i+1, j-1 {
				frames[i], frames[j] = frames[j], frames[i]
			}
		}

		d := NewDecoder(DecoderConfig{})
		produced, p := decodeAll(d, frames)
		if len(produced) != 1 || produced[0] != len(frames)-1 {
			// Out-of-order arrival needs one range per gap; more than
			// the table tracks drops the datagram.
			if d.Stats.FragmentsDropped+d.Stats.IPv6FragmentsDropped > 0 && len(frames) > maxFragmentIntervals {
				return
			}
			t.Fatalf("%d fragments: produced at %v, stats %+v", len(frames), produced, d.Stats)
		}
		want.Fragmented = true
		want.Timestamp, want.CapLen, want.WireLen = p.Timestamp, p.CapLen, p.WireLen
		want.TTL, want.IPID = p.TTL, p.IPID
		if p != want {
			t.Errorf("reassembled\n got %+v\nwant %+v", p, want)
		}
		checkFragmentAccounting(t, d, uint64(len(frames)))
	})
}

// fragmentField returns the IPv4 flags-and-offset field of a fragment.
func fragmentField(offset int, more bool) uint16 {
	v := uint16(offset / 8)
	if more {
		v |= ipv4FlagMoreFragments
	}
	return v
}
