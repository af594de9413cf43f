package capture

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// ipv4Fragment returns an Ethernet frame carrying bytes [offset,
// offset+len(data)) of a TCP datagram, with the MF flag set when more.
func ipv4Fragment(data []byte, offset int, more bool, tags ...[2]uint16) []byte {
	fragment := uint16(offset / 8)
	if more {
		fragment |= ipv4FlagMoreFragments
	}
	return ethernet(etherTypeIPv4, cat(ipv4Header(ipProtocolTCP, nil, len(data), fragment), data), tags...)
}

// fragmentFrames splits segment into fragments of size bytes (a multiple of
// 8), in order or reversed, one millisecond apart.
func fragmentFrames(segment []byte, size int, reverse bool) []Frame {
	var frames []Frame
	for off := 0; off < len(segment); off += size {
		end := min(off+size, len(segment))
		frames = append(frames, Frame{Data: ipv4Fragment(segment[off:end], off, end < len(segment)), LinkType: LinkTypeEthernet})
	}
	if reverse {
		for i, j := 0, len(frames)-1; i < j; i, j = i+1, j-1 {
			frames[i], frames[j] = frames[j], frames[i]
		}
	}
	for i := range frames {
		frames[i].Timestamp = 1e18 + int64(i)*1e6
	}
	return frames
}

// withIPID sets the IP identification of an untagged Ethernet fragment.
func withIPID(frame []byte, id uint16) []byte {
	frame = cat(frame)
	frame[18], frame[19] = byte(id>>8), byte(id)
	return frame
}

// heldFragments counts the fragments waiting in d's table.
func heldFragments(d *Decoder) uint64 {
	var n uint64
	for i := d.frags.oldest; i != noSlot; i = d.frags.slots[i].newer {
		n += uint64(d.frags.slots[i].fragments)
	}
	return n
}

// checkFragmentAccounting checks every fragment is either in the table,
// in a completed datagram (completedFragments) or dropped.
func checkFragmentAccounting(t *testing.T, d *Decoder, completedFragments uint64) {
	t.Helper()
	s := d.Stats
	received, dropped := s.Fragments+s.IPv6Fragments, s.FragmentsDropped+s.IPv6FragmentsDropped
	if held := heldFragments(d); received != completedFragments+dropped+held {
		t.Errorf("fragments %d != completed %d + dropped %d + held %d", received, completedFragments, dropped, held)
	}
	var n int
	for i := d.frags.oldest; i != noSlot; i = d.frags.slots[i].newer {
		n++
	}
	if n != d.frags.inUse {
		t.Errorf("age list has %d datagrams, inUse %d", n, d.frags.inUse)
	}
}

// decodeAll decodes frames in order and returns the indexes of the frames
// that produced a packet, and the last packet produced.
func decodeAll(d *Decoder, frames []Frame) (produced []int, last Packet) {
	for i := range frames {
		var p Packet
		if d.Decode(&frames[i], &p) {
			produced = append(produced, i)
			last = p
		}
	}
	return produced, last
}

var fragmentedSYN = tcpSegment(FlagSYN, synOptions, 100) // 40-byte header, 100 bytes of data

func checkReassembledSYN(t *testing.T, p *Packet, last *Frame) {
	t.Helper()
	want := Packet{
		Timestamp: last.Timestamp, Src: Addr{192, 0, 2, 1}, Dst: Addr{198, 51, 100, 2},
		SrcPort: testSrcPort, DstPort: testDstPort, Family: IPv4, Seq: testSeq, Ack: testAck, Flags: FlagSYN,
		Window: testWindow, Checksum: testChecksum, Urgent: 7,
		Options: TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, HasTimestamp: true, TSVal: 1, TSEcr: 2},
		IPID:    testIPID, TTL: testTTL, IPHdrLen: 20, TCPHdrLen: 40, IPLen: 20 + 140, PayloadLen: 100,
		WireLen: last.WireLen, CapLen: uint32(len(last.Data)), Fragmented: true,
	}
	if *p != want {
		t.Errorf("reassembled packet\n got %+v\nwant %+v", *p, want)
	}
}

func TestFragmentOrders(t *testing.T) {
	for _, size := range []int{8, 16, 24, 32, 64, 136} {
		for _, reverse := range []bool{false, true} {
			frames := fragmentFrames(fragmentedSYN, size, reverse)
			d := NewDecoder(DecoderConfig{})
			produced, p := decodeAll(d, frames)
			if len(produced) != 1 || produced[0] != len(frames)-1 {
				t.Errorf("size %d reverse %v: produced at %v of %d frames", size, reverse, produced, len(frames))
				continue
			}
			checkReassembledSYN(t, &p, &frames[len(frames)-1])
			if d.Stats.Fragments != uint64(len(frames)) || d.Stats.FragmentsDone != 1 || d.Stats.TCP != 1 || d.frags.inUse != 0 {
				t.Errorf("size %d: stats %+v, in use %d", size, d.Stats, d.frags.inUse)
			}
			checkFragmentAccounting(t, d, uint64(len(frames)))
		}
	}
}

// TestFragmentPermutations feeds four fragments in every order.
func TestFragmentPermutations(t *testing.T) {
	base := fragmentFrames(fragmentedSYN, 40, false)
	if len(base) != 4 {
		t.Fatalf("%d fragments", len(base))
	}
	var permute func(prefix []int, rest []int)
	permute = func(prefix, rest []int) {
		if len(rest) == 0 {
			frames := make([]Frame, len(prefix))
			for i, j := range prefix {
				frames[i] = base[j]
			}
			d := NewDecoder(DecoderConfig{})
			produced, p := decodeAll(d, frames)
			if len(produced) != 1 || produced[0] != 3 {
				t.Errorf("order %v: produced at %v", prefix, produced)
				return
			}
			checkReassembledSYN(t, &p, &frames[3])
			checkFragmentAccounting(t, d, 4)
			return
		}
		for i := range rest {
			next := append(append([]int(nil), rest[:i]...), rest[i+1:]...)
			permute(append(append([]int(nil), prefix...), rest[i]), next)
		}
	}
	permute(nil, []int{0, 1, 2, 3})
}

func TestFragmentRules(t *testing.T) {
	seg := fragmentedSYN
	frag := func(off, end int, more bool) Frame {
		return Frame{Data: ipv4Fragment(seg[off:end], off, more), LinkType: LinkTypeEthernet, Timestamp: 1e18}
	}
	last := len(seg)
	cases := []struct {
		name          string
		frames        []Frame
		wantProduced  []int
		wantDropped   uint64
		wantCompleted uint64 // fragments of completed datagrams
		wantStats     func(s DecodeStats) bool
	}{
		{name: "duplicate", frames: []Frame{frag(0, 64, true), frag(0, 64, true), frag(64, last, false)},
			wantProduced: []int{2}, wantDropped: 1, wantCompleted: 2},
		{name: "duplicate-inside-merged", frames: []Frame{frag(0, 32, true), frag(32, 64, true), frag(8, 56, true), frag(64, last, false)},
			wantProduced: []int{3}, wantDropped: 1, wantCompleted: 3},
		{name: "partial-overlap", frames: []Frame{frag(0, 64, true), frag(56, 96, true), frag(96, last, false)},
			wantDropped: 2},
		{name: "overlap-next-range", frames: []Frame{frag(0, 32, true), frag(64, 96, true), frag(32, 72, true), frag(96, last, false)},
			wantDropped: 3},
		{name: "second-last-differs", frames: []Frame{frag(64, last, false), frag(64, last-8, false), frag(0, 64, true)},
			wantDropped: 2},
		{name: "data-beyond-last", frames: []Frame{frag(8, 32, false), frag(32, 64, true)},
			wantDropped: 2},
		{name: "last-before-data", frames: []Frame{frag(32, 64, true), frag(8, 16, false)},
			wantDropped: 2},
		{name: "non-last-rounded-down", frames: []Frame{frag(0, 30, true), frag(24, last, false)},
			wantProduced: []int{1}, wantCompleted: 2},
		{name: "empty-fragment", frames: []Frame{frag(0, 64, true), frag(64, 64, true)},
			wantDropped: 2},
		{name: "short-non-last", frames: []Frame{frag(0, 7, true)},
			wantDropped: 1},
		{name: "oversize", frames: []Frame{{Data: ipv4Fragment(seg[:16], 65528, false), LinkType: LinkTypeEthernet, Timestamp: 1e18}},
			wantDropped: 1},
		{name: "snaplen-cut-header", frames: []Frame{
			{Data: ipv4Fragment(seg[:64], 0, true)[:14+20+30], LinkType: LinkTypeEthernet, Timestamp: 1e18}, frag(64, last, false)},
			wantProduced: []int{1}, wantCompleted: 2, wantStats: func(s DecodeStats) bool { return s.TruncatedTCPOptions == 1 && s.FragmentsDone == 1 }},
		{name: "snaplen-cut-payload", frames: []Frame{
			{Data: ipv4Fragment(seg[:64], 0, true)[:14+20+40], LinkType: LinkTypeEthernet, Timestamp: 1e18}, frag(64, last, false)},
			wantProduced: []int{1}, wantCompleted: 2},
		{name: "vlans-kept-apart", frames: []Frame{
			{Data: ipv4Fragment(seg[:64], 0, true, [2]uint16{etherTypeDot1Q, 1}), LinkType: LinkTypeEthernet},
			{Data: ipv4Fragment(seg[64:], 64, false, [2]uint16{etherTypeDot1Q, 2}), LinkType: LinkTypeEthernet},
			{Data: ipv4Fragment(seg[64:], 64, false, [2]uint16{etherTypeDot1Q, 1}), LinkType: LinkTypeEthernet}},
			wantProduced: []int{2}, wantCompleted: 2},
		{name: "interfaces-kept-apart", frames: []Frame{
			frag(0, 64, true), {Data: ipv4Fragment(seg[64:], 64, false), LinkType: LinkTypeEthernet, Interface: 1}},
			wantProduced: nil},
		{name: "ids-kept-apart", frames: []Frame{
			frag(0, 64, true), {Data: withIPID(ipv4Fragment(seg[64:], 64, false), 99), LinkType: LinkTypeEthernet},
			{Data: withIPID(ipv4Fragment(seg[:64], 0, true), 99), LinkType: LinkTypeEthernet}},
			wantProduced: []int{2}, wantCompleted: 2},
		{name: "bad-tcp-header-after-reassembly", frames: []Frame{
			{Data: ipv4Fragment(cat(seg[:12], []byte{0x40}, seg[13:64]), 0, true), LinkType: LinkTypeEthernet, Timestamp: 1e18}, frag(64, last, false)},
			wantCompleted: 2, wantStats: func(s DecodeStats) bool { return s.BadTCPHeader == 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(DecoderConfig{})
			for i := range c.frames {
				c.frames[i].Timestamp = 1e18 // one instant: nothing expires
			}
			produced, _ := decodeAll(d, c.frames)
			if len(produced) != len(c.wantProduced) || (len(produced) > 0 && produced[0] != c.wantProduced[0]) {
				t.Errorf("produced at %v, want %v", produced, c.wantProduced)
			}
			if d.Stats.FragmentsDropped != c.wantDropped {
				t.Errorf("dropped %d, want %d", d.Stats.FragmentsDropped, c.wantDropped)
			}
			if c.wantStats != nil && !c.wantStats(d.Stats) {
				t.Errorf("stats %+v", d.Stats)
			}
			checkFragmentAccounting(t, d, c.wantCompleted)
		})
	}
}

// TestFragmentTooManyRanges sends more disjoint pieces than are tracked.
func TestFragmentTooManyRanges(t *testing.T) {
	seg := make([]byte, 8*2*(maxFragmentIntervals+2))
	copy(seg, fragmentedSYN)
	d := NewDecoder(DecoderConfig{})
	for i := range maxFragmentIntervals + 1 {
		off := 8 + 16*i // every other 8-byte block, leaving gaps
		f := Frame{Data: ipv4Fragment(seg[off:off+8], off, true), LinkType: LinkTypeEthernet}
		var p Packet
		d.Decode(&f, &p)
	}
	if d.Stats.FragmentsDropped != maxFragmentIntervals+1 || d.frags.inUse != 0 {
		t.Errorf("stats %+v, in use %d", d.Stats, d.frags.inUse)
	}
	checkFragmentAccounting(t, d, 0)
}

func TestFragmentTimeout(t *testing.T) {
	d := NewDecoder(DecoderConfig{FragmentTimeout: 30 * time.Second})
	frames := fragmentFrames(fragmentedSYN, 64, false) // 3 fragments
	frames[1].Timestamp = frames[0].Timestamp + int64(30*time.Second)
	frames[2].Timestamp = frames[0].Timestamp + int64(30*time.Second) + 1
	produced, _ := decodeAll(d, frames)
	// The third fragment expires the datagram (first seen more than 30 s
	// earlier), drops the two held fragments and starts a new datagram.
	if len(produced) != 0 || d.Stats.FragmentsDropped != 2 || d.frags.inUse != 1 {
		t.Errorf("produced %v, stats %+v, in use %d", produced, d.Stats, d.frags.inUse)
	}
	checkFragmentAccounting(t, d, 0)
}

func TestFragmentTableFullEvictsOldest(t *testing.T) {
	d := NewDecoder(DecoderConfig{MaxFragmentDatagrams: 2})
	first := func(id uint16) Frame {
		return Frame{Data: withIPID(ipv4Fragment(fragmentedSYN[:64], 0, true), id), LinkType: LinkTypeEthernet}
	}
	rest := func(id uint16) Frame {
		return Frame{Data: withIPID(ipv4Fragment(fragmentedSYN[64:], 64, false), id), LinkType: LinkTypeEthernet}
	}
	produced, _ := decodeAll(d, []Frame{first(1), first(2), first(3), rest(2), rest(3), rest(1)})
	// Datagram 1 is evicted by 3; 2 and 3 complete; the second half of 1
	// starts a new datagram that waits.
	if len(produced) != 2 || produced[0] != 3 || produced[1] != 4 || d.Stats.FragmentsDone != 2 || d.Stats.FragmentsDropped != 1 {
		t.Errorf("produced %v, stats %+v", produced, d.Stats)
	}
	checkFragmentAccounting(t, d, 4)
}

// TestFragmentTableChurn runs many interleaved datagrams through a small
// table and checks the lists stay consistent.
func TestFragmentTableChurn(t *testing.T) {
	d := NewDecoder(DecoderConfig{MaxFragmentDatagrams: 8})
	var completed uint64
	for round := range 200 {
		// Ten datagrams for eight slots: the first two are evicted, the
		// other eight complete, and the second halves of the first two
		// wait until evicted or expired in a later round.
		var frames []Frame
		for k := range 10 {
			id := uint16(round*10 + k)
			frames = append(frames, Frame{Data: withIPID(ipv4Fragment(fragmentedSYN[:64], 0, true), id), LinkType: LinkTypeEthernet,
				Timestamp: int64(round) * int64(time.Second)})
		}
		for k := 9; k >= 0; k-- {
			id := uint16(round*10 + k)
			frames = append(frames, Frame{Data: withIPID(ipv4Fragment(fragmentedSYN[64:], 64, false), id), LinkType: LinkTypeEthernet,
				Timestamp: int64(round) * int64(time.Second)})
		}
		produced, _ := decodeAll(d, frames)
		completed += 2 * uint64(len(produced))
		checkFragmentAccounting(t, d, completed)
	}
	if d.Stats.FragmentsDone == 0 || d.Stats.FragmentsDropped == 0 {
		t.Errorf("stats %+v", d.Stats)
	}
}

// TestFragmentedSYNPeerCapture decodes Zeek's fragmented-SYN trace: the SYN
// is only visible after reassembly and must come out of the second frame.
func TestFragmentedSYNPeerCapture(t *testing.T) {
	dir := peerCapturesDir(t)
	frames, err := readFrames(t, filepath.Join(dir, "zeek", "ipv4__fragmented-syn.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(DecoderConfig{})
	produced, p := decodeAll(d, frames)
	if len(produced) != 1 || produced[0] != len(frames)-1 {
		t.Fatalf("produced at %v of %d frames; stats %+v", produced, len(frames), d.Stats)
	}
	if !p.Flags.Has(FlagSYN) || p.Flags.Has(FlagACK) || !p.Fragmented {
		t.Errorf("not a reassembled SYN: %v %+v", p.Flags, p)
	}
	if p.Timestamp != frames[len(frames)-1].Timestamp {
		t.Errorf("timestamp %d, want the last fragment's %d", p.Timestamp, frames[len(frames)-1].Timestamp)
	}
	t.Logf("%v:%d -> %v:%d %v seq %d payload %d, options %+v; stats %+v",
		p.SrcAddr(), p.SrcPort, p.DstAddr(), p.DstPort, p.Flags, p.Seq, p.PayloadLen, p.Options, d.Stats)
}

// ipv6FragmentFrame returns an Ethernet frame carrying bytes [offset,
// offset+len(data)) of an IPv6 TCP datagram with identification id.
func ipv6FragmentFrame(data []byte, offset int, more bool, id uint32) []byte {
	fh := ipv6FragmentHeader(ipProtocolTCP, offset, more)
	binary.BigEndian.PutUint32(fh[4:], id)
	return ethernet(etherTypeIPv6, ipv6Packet(ipv6Fragment, fh, data))
}

// ipv6Fragments splits segment into IPv6 fragments of size bytes (a
// multiple of 8) with identification id, after the unfragmentable
// extension headers ext (chained, first one named by next, the last naming
// the fragment header), one millisecond apart.
func ipv6Fragments(segment []byte, size int, id uint32, next byte, ext []byte) []Frame {
	var frames []Frame
	for off := 0; off < len(segment); off += size {
		end := min(off+size, len(segment))
		fh := ipv6FragmentHeader(ipProtocolTCP, off, end < len(segment))
		binary.BigEndian.PutUint32(fh[4:], id)
		frames = append(frames, Frame{Data: ethernet(etherTypeIPv6, ipv6Packet(next, cat(ext, fh), segment[off:end])),
			LinkType: LinkTypeEthernet, Timestamp: 1e18 + int64(len(frames))*1e6})
	}
	return frames
}

// TestIPv6Fragments checks IPv6 reassembly against the unfragmented packet
// and the rules it shares with IPv4 (Linux's ipv6/reassembly.c): every
// order, overlap drops the datagram, a duplicate is dropped alone, a
// non-last fragment whose length is not a multiple of 8 is dropped alone,
// identifications and families kept apart, the timeout, and the counters.
func TestIPv6Fragments(t *testing.T) {
	segment := fragmentedSYN
	var whole Packet
	if !NewDecoder(DecoderConfig{}).Decode(&Frame{Data: ethernet(etherTypeIPv6, ipv6Packet(ipProtocolTCP, nil, segment)), LinkType: LinkTypeEthernet}, &whole) {
		t.Fatal("unfragmented segment not decoded")
	}
	check := func(t *testing.T, p Packet, last Frame, hdrLen uint16) {
		t.Helper()
		want := whole
		want.Fragmented, want.IPOffset = true, 0
		want.Timestamp, want.CapLen, want.WireLen = last.Timestamp, uint32(len(last.Data)), last.WireLen
		want.IPHdrLen, want.IPLen = hdrLen, uint32(hdrLen)+uint32(len(segment))
		if p != want {
			t.Errorf("reassembled\n got %+v\nwant %+v", p, want)
		}
	}
	for _, size := range []int{8, 24, 48, 136} {
		for _, reverse := range []bool{false, true} {
			frames := ipv6Fragments(segment, size, 7, ipv6Fragment, nil)
			if reverse {
				for i, j := 0, len(frames)-1; i < j; i, j = i+1, j-1 {
					frames[i], frames[j] = frames[j], frames[i]
				}
			}
			d := NewDecoder(DecoderConfig{})
			produced, p := decodeAll(d, frames)
			if len(produced) != 1 || produced[0] != len(frames)-1 {
				t.Fatalf("size %d reverse %v: produced at %v of %d: %+v", size, reverse, produced, len(frames), d.Stats)
			}
			check(t, p, frames[len(frames)-1], ipv6HeaderLen)
			s := d.Stats
			if s.IPv6Fragments != uint64(len(frames)) || s.IPv6FragmentsDone != 1 || s.TCP != 1 || s.Fragments != 0 || d.frags.inUse != 0 {
				t.Errorf("size %d: stats %+v", size, s)
			}
			checkFragmentAccounting(t, d, uint64(len(frames)))
		}
	}

	// Unfragmentable extension headers before the fragment header.
	ext := ipv6Extension(ipv6Fragment, 0) // destination options, 8 bytes
	frames := ipv6Fragments(segment, 64, 7, ipv6DestOptions, ext)
	d := NewDecoder(DecoderConfig{})
	produced, p := decodeAll(d, frames)
	if len(produced) != 1 {
		t.Fatalf("after destination options: produced at %v: %+v", produced, d.Stats)
	}
	check(t, p, frames[len(frames)-1], ipv6HeaderLen+8)

	base := ipv6Fragments(segment, 48, 7, ipv6Fragment, nil) // 3 fragments: 48, 48, 44
	other := ipv6Fragments(segment, 48, 8, ipv6Fragment, nil)
	// Bytes 40-55, overlapping the first fragment (0-47).
	overlap := Frame{Data: ipv6FragmentFrame(segment[40:56], 40, true, 7), LinkType: LinkTypeEthernet, Timestamp: 1e18}
	// 47 bytes with more to come: not a multiple of 8.
	odd := Frame{Data: ipv6FragmentFrame(segment[48:95], 48, true, 7), LinkType: LinkTypeEthernet, Timestamp: 1e18}
	late := base[2]
	late.Timestamp = base[0].Timestamp + int64(DefaultFragmentTimeout) + 1
	for _, tc := range []struct {
		name              string
		frames            []Frame
		produced          []int
		completed         uint64
		dropped, received uint64
	}{
		{"overlap", []Frame{base[0], overlap, base[1], base[2]}, nil, 0, 2, 4}, // the last two wait in a new datagram
		{"duplicate", []Frame{base[0], base[0], base[1], base[2]}, []int{3}, 3, 1, 4},
		{"not-multiple-of-8", []Frame{base[0], odd, base[1], base[2]}, []int{3}, 3, 1, 4},
		{"ids-kept-apart", []Frame{base[0], other[1], base[1], other[2], base[2]}, []int{4}, 3, 0, 5},
		{"timeout", []Frame{base[0], base[1], late}, nil, 0, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(DecoderConfig{})
			produced, _ := decodeAll(d, tc.frames)
			if fmt.Sprint(produced) != fmt.Sprint(tc.produced) {
				t.Errorf("produced at %v, want %v", produced, tc.produced)
			}
			if d.Stats.IPv6Fragments != tc.received || d.Stats.IPv6FragmentsDropped != tc.dropped {
				t.Errorf("stats %+v", d.Stats)
			}
			checkFragmentAccounting(t, d, tc.completed)
		})
	}

	// IPv4 and IPv6 datagrams share the table and its bound.
	d = NewDecoder(DecoderConfig{MaxFragmentDatagrams: 2})
	v4 := fragmentFrames(segment, 48, false)
	mixed := []Frame{base[0], v4[0], other[0]} // the third evicts the oldest, IPv6 id 7
	decodeAll(d, mixed)
	if d.Stats.IPv6FragmentsDropped != 1 || d.Stats.FragmentsDropped != 0 || d.frags.inUse != 2 {
		t.Errorf("shared bound: stats %+v, in use %d", d.Stats, d.frags.inUse)
	}
	checkFragmentAccounting(t, d, 0)

	// A fragment of another protocol is not TCP.
	udp := ethernet(etherTypeIPv6, ipv6Packet(ipv6Fragment, ipv6FragmentHeader(17, 0, true), make([]byte, 16)))
	d = NewDecoder(DecoderConfig{})
	var q Packet
	if d.Decode(&Frame{Data: udp, LinkType: LinkTypeEthernet}, &q) || d.Stats.NonTCP != 1 || d.Stats.IPv6Fragments != 0 {
		t.Errorf("UDP fragment: stats %+v", d.Stats)
	}

	// No allocation per fragment.
	d = NewDecoder(DecoderConfig{})
	allocs := testing.AllocsPerRun(100, func() {
		for i := range base {
			d.Decode(&base[i], &q)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per datagram", allocs)
	}
}
