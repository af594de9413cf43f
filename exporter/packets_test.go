package exporter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// ptSeg describes one segment of a hand-built connection.
type ptSeg struct {
	at       time.Duration // after the connection's first packet
	from     reassembly.Role
	flags    capture.Flags
	seq, ack uint32
	win      uint16
	payload  int
	opts     []layers.TCPOption
	ipid     uint16
	states   [2]reassembly.State // by role, after the segment
	analysis reassembly.Analysis
	noHdr    bool // record without header bytes (rebuilt from fragments)
}

var ptStart = time.Date(2019, 7, 1, 20, 20, 1, 3_000_000, time.UTC)

// ptSYNOptions are the options of a Linux SYN: MSS, SACK permitted,
// timestamps, NOP, window scale.
func ptSYNOptions(mss uint16, ws byte) []layers.TCPOption {
	m := make([]byte, 2)
	binary.BigEndian.PutUint16(m, mss)
	ts := make([]byte, 8)
	binary.BigEndian.PutUint32(ts, 123456789)
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: m},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{ws}},
	}
}

// ptTimestampOption is the timestamp option of a segment after the handshake.
func ptTimestampOption() []layers.TCPOption {
	ts := make([]byte, 8)
	binary.BigEndian.PutUint32(ts, 123456999)
	binary.BigEndian.PutUint32(ts[4:], 987654)
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts},
	}
}

// ptSerialize builds the real IP+TCP(+payload) bytes of a segment with
// gopacket, lengths and checksums computed.
func ptSerialize(t *testing.T, src, dst netip.AddrPort, s *ptSeg) []byte {
	t.Helper()
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: s.seq, Ack: s.ack, Window: s.win, Options: s.opts,
		FIN: s.flags.Has(capture.FlagFIN), SYN: s.flags.Has(capture.FlagSYN),
		RST: s.flags.Has(capture.FlagRST), PSH: s.flags.Has(capture.FlagPSH),
		ACK: s.flags.Has(capture.FlagACK), URG: s.flags.Has(capture.FlagURG),
		ECE: s.flags.Has(capture.FlagECE), CWR: s.flags.Has(capture.FlagCWR),
		NS: s.flags.Has(capture.FlagNS),
	}
	var ip gopacket.SerializableLayer
	if src.Addr().Is4() {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Id: s.ipid,
			Flags: layers.IPv4DontFragment, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		if err := tcp.SetNetworkLayerForChecksum(ip4); err != nil {
			t.Fatal(err)
		}
		ip = ip4
	} else {
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		if err := tcp.SetNetworkLayerForChecksum(ip6); err != nil {
			t.Fatal(err)
		}
		ip = ip6
	}
	payload := make([]byte, s.payload)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ptBuild turns segments into packet records as the flight recorder would
// keep them: header bytes from the serialized packet and a sequence
// snapshot tracked per direction. wscale is each role's shift (-1: none).
func ptBuild(t *testing.T, rec *record.Record, segs []ptSeg, wscale [2]int) []flightrec.PacketRecord {
	t.Helper()
	// An endpoint not seen yet has the recorder's snapshot of it: ISN
	// 0 - 1 (the base of an unknown first sequence number), the rest 0.
	snap := [2]flightrec.SeqSnapshot{{ISN: ^uint32(0)}, {ISN: ^uint32(0)}}
	var seen [2]bool
	out := make([]flightrec.PacketRecord, len(segs))
	for i := range segs {
		s := &segs[i]
		src, dst := rec.Client, rec.Server
		if s.from == reassembly.Server {
			src, dst = dst, src
		}
		pkt := ptSerialize(t, src, dst, s)
		ipHL := 40
		family := capture.IPv6
		if src.Addr().Is4() {
			ipHL, family = int(pkt[0]&0x0f)*4, capture.IPv4
		}
		hl := ipHL + int(pkt[ipHL+12]>>4)*4
		if hl != len(pkt)-s.payload {
			t.Fatalf("segment %d: header length %d, packet %d, payload %d", i, hl, len(pkt), s.payload)
		}
		sn := &snap[s.from]
		if !seen[s.from] {
			// The ISN, or as Wireshark counts without the SYN one
			// before the first sequence number seen.
			seen[s.from], sn.ISN, sn.HighSeq = true, s.seq, s.seq
			if !s.flags.Has(capture.FlagSYN) {
				sn.ISN--
			}
		}
		end := s.seq + uint32(s.payload)
		if s.flags.Any(capture.FlagSYN | capture.FlagFIN) {
			end++
		}
		if int32(end-sn.HighSeq) > 0 {
			sn.HighSeq = end
		}
		if s.flags.Has(capture.FlagACK) {
			sn.HighAck = s.ack
		}
		sn.Window = uint32(s.win)
		if !s.flags.Has(capture.FlagSYN) && wscale[0] >= 0 && wscale[1] >= 0 {
			sn.Window <<= wscale[s.from]
		}
		r := flightrec.PacketRecord{
			Timestamp: ptStart.Add(s.at).UnixNano(), Seq: s.seq, Ack: s.ack, PayloadLen: uint32(s.payload),
			Window: s.win, Checksum: binary.BigEndian.Uint16(pkt[ipHL+16:]), IPID: s.ipid, Flags: s.flags,
			From: s.from, States: s.states, Analysis: s.analysis, Snap: snap,
			WireLen: uint32(len(pkt)), Family: family,
		}
		if !s.noHdr {
			r.HdrLen = uint8(copy(r.Hdr[:], pkt[:hl]))
		}
		out[i] = r
	}
	return out
}

const (
	ptClientISN = 3000000000 // relative numbers must wrap correctly
	ptServerISN = 1200
)

// ptRTConnection is a retransmission-timeout connection: handshake, one
// exchange, a segment retransmitted three times, then the client's RST.
func ptRTConnection(t *testing.T, client, server string) (*record.Record, []flightrec.PacketRecord) {
	t.Helper()
	rec := &record.Record{
		ID: 17, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server),
		Family: "ipv4", VLAN: []uint16{}, Interface: "eth1", Local: "client",
		Reason: classifier.RetransmitTimeout, ReasonText: classifier.RetransmitTimeout.Text(), Actor: "client",
		State: "ESTABLISHED", ConnState: "RSTO", History: "ShADadTR",
		FirstSeen: ptStart, LastSeen: ptStart.Add(9500 * time.Millisecond), DurationS: 9.5,
		Packets: record.Pair[uint64]{Client: 7, Server: 3}, Bytes: record.Pair[uint64]{Client: 400, Server: 300},
		Retransmissions: record.Pair[uint32]{Client: 3},
		RTTms:           record.RTT{Handshake: 0.41, Smoothed: 0.52},
		MSS:             record.Pair[uint16]{Client: 1460, Server: 1400}, WScale: record.Pair[int8]{Client: 7, Server: 9},
	}
	if rec.Client.Addr().Is6() {
		rec.Family = "ipv6"
	}
	const c, s = reassembly.Client, reassembly.Server
	est := [2]reassembly.State{reassembly.StateEstablished, reassembly.StateEstablished}
	a, ack := capture.FlagACK, capture.FlagACK|capture.FlagPSH
	cI, sI := uint32(ptClientISN), uint32(ptServerISN)
	segs := []ptSeg{
		{at: 0, from: c, flags: capture.FlagSYN, seq: cI, win: 64240, opts: ptSYNOptions(1460, 7), ipid: 0x1001,
			states: [2]reassembly.State{reassembly.StateSynSent, reassembly.StateListen}},
		{at: 410 * time.Microsecond, from: s, flags: capture.FlagSYN | a, seq: sI, ack: cI + 1, win: 65160,
			opts: ptSYNOptions(1400, 9), states: [2]reassembly.State{reassembly.StateSynSent, reassembly.StateSynReceived}},
		{at: 500 * time.Microsecond, from: c, flags: a, seq: cI + 1, ack: sI + 1, win: 502, opts: ptTimestampOption(), ipid: 0x1002, states: est},
		{at: 1 * time.Millisecond, from: c, flags: ack, seq: cI + 1, ack: sI + 1, win: 502, payload: 100, opts: ptTimestampOption(), ipid: 0x1003, states: est},
		{at: 2 * time.Millisecond, from: s, flags: ack, seq: sI + 1, ack: cI + 101, win: 128, payload: 300, opts: ptTimestampOption(), states: est},
		{at: 3 * time.Millisecond, from: c, flags: ack, seq: cI + 101, ack: sI + 301, win: 500, payload: 100, opts: ptTimestampOption(), ipid: 0x1004, states: est},
		{at: 210 * time.Millisecond, from: c, flags: ack, seq: cI + 101, ack: sI + 301, win: 500, payload: 100, opts: ptTimestampOption(), ipid: 0x1005, states: est,
			analysis: reassembly.Retransmission},
		{at: 620 * time.Millisecond, from: c, flags: ack, seq: cI + 101, ack: sI + 301, win: 500, payload: 100, ipid: 0x1006, states: est,
			analysis: reassembly.Retransmission, noHdr: true},
		{at: 1450 * time.Millisecond, from: c, flags: ack, seq: cI + 101, ack: sI + 301, win: 500, payload: 100, opts: ptTimestampOption(), ipid: 0x1007, states: est,
			analysis: reassembly.Retransmission},
		{at: 9500 * time.Millisecond, from: c, flags: capture.FlagRST, seq: cI + 201, ipid: 0x1008,
			states: [2]reassembly.State{reassembly.StateClosed, reassembly.StateEstablished}},
	}
	return rec, ptBuild(t, rec, segs, [2]int{7, 9})
}

func ptView(t *testing.T, rec *record.Record, pkts []flightrec.PacketRecord, opts PacketViewOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteConnectionPackets(&b, rec, pkts, opts); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// ptBlock returns the block of packet n of a view ("" when absent).
func ptBlock(view string, n int) string {
	head := fmt.Sprintf("\nPacket %d  ", n)
	i := strings.Index(view, head)
	if i < 0 {
		return ""
	}
	rest := view[i+1:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		return rest[:j+1]
	}
	return rest
}

func ptMustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func TestPacketViewHeader(t *testing.T) {
	rec, pkts := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	v := ptView(t, rec, pkts, PacketViewOptions{})
	ptMustContain(t, "header", v,
		"Connection 10.0.0.1:40123 <-> 10.0.0.2:80 (id 17)\n",
		"  Local address           : 10.0.0.1:40123 (client)\n",
		"  Foreign address         : 10.0.0.2:80 (server)\n",
		"  VPN name (VLAN)         : N/A\n",
		"  Reason                  : RT (retransmit timeout)\n",
		"  Actor                   : client\n",
		"  State                   : ESTABLISHED\n",
		"  Connection time         : 2019-07-01 20:20:01.003000 to 2019-07-01 20:20:10.503000 UTC (9.500000 s)\n",
		"  Packets                 : in 3, out 7\n",
		"  Payload bytes           : in 300, out 400\n",
		"  Retransmissions         : in 0, out 3\n",
		"  Handshake RTT           : 0.410 ms\n",
		"  Packet records          : 10 packets recorded\n",
		// Sequence state after the last packet: the client sent 200
		// bytes past its SYN (and a RST at 201, window 0), acknowledged 300.
		"  local (client)     3000000000  3000000201 (rel 201)        1501 (rel 301)              0          1460  7\n",
		"  foreign (server)   1200        1501 (rel 301)              3000000101 (rel 101)        65536      1400  9\n",
	)
	if strings.Contains(v, "overwritten") || strings.Contains(v, "showing") {
		t.Errorf("no records dropped or hidden, yet:\n%s", v)
	}
	for n := 1; n <= 10; n++ {
		if ptBlock(v, n) == "" {
			t.Errorf("packet %d missing", n)
		}
	}
	if strings.Contains(v, "Snapshot") || strings.Contains(v, "Analysis") {
		t.Errorf("non-verbose view shows the snapshot or analysis:\n%s", v)
	}
	if strings.ContainsRune(v, '\x1b') || strings.Contains(v, "\t") {
		t.Error("view has escape sequences or tabs")
	}
}

func TestPacketViewPackets(t *testing.T) {
	rec, pkts := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	v := ptView(t, rec, pkts, PacketViewOptions{})

	syn := ptBlock(v, 1)
	ptMustContain(t, "SYN", syn,
		"Packet 1  2019-07-01 20:20:01.003000 UTC  out (client -> server)\n",
		"  Seq            3000000000 (rel 0)",
		"  Flags          S\n",
		"  Window         64240 (SYN, unscaled)",
		fmt.Sprintf("Checksum       0x%04x\n", pkts[0].Checksum),
		"  IP ID          4097 (0x1001)",
		"  Sender state   SYN_SENT                     Receiver state LISTEN\n")
	if strings.Contains(syn, "Ack            0 (rel") {
		t.Errorf("relative ack shown without the ACK flag:\n%s", syn)
	}
	synack := ptBlock(v, 2)
	ptMustContain(t, "SYN-ACK", synack,
		"Packet 2  2019-07-01 20:20:01.003410 UTC  +0.000410 s  in  (server -> client)\n",
		"  Seq            1200 (rel 0)                 Ack            3000000001 (rel 1)\n",
		"  Flags          S.\n",
		"  Window         65160 (SYN, unscaled)")

	// The data segment, exactly.
	want := fmt.Sprintf(`Packet 4  2019-07-01 20:20:01.004000 UTC  +0.000500 s  out (client -> server)
  Seq            3000000001 (rel 1)           Ack            1201 (rel 1)
  Length         100                          Flags          P.
  Window         502 (scaled 64256)           Checksum       0x%04x
  IP ID          4099 (0x1003)                IP length      %d
  Sender state   ESTABLISHED                  Receiver state ESTABLISHED
`, pkts[3].Checksum, pkts[3].WireLen)
	if got := ptBlock(v, 4); got != want {
		t.Errorf("data packet block\n got:\n%s\nwant:\n%s", got, want)
	}
	if pkts[3].WireLen != 20+32+100 {
		t.Errorf("test data: wire length %d", pkts[3].WireLen)
	}
	ptMustContain(t, "server data", ptBlock(v, 5), "Window         128 (scaled 65536)")
	ptMustContain(t, "RST", ptBlock(v, 10),
		"+8.050000 s  out (client -> server)\n",
		"  Seq            3000000201 (rel 201)         Ack            0\n",
		"  Flags          R\n",
		"  Sender state   CLOSED                       Receiver state ESTABLISHED\n")
}

func TestPacketViewLast(t *testing.T) {
	rec, pkts := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	v := ptView(t, rec, pkts, PacketViewOptions{Last: 3})
	ptMustContain(t, "last 3", v, "  Packet records          : 10 packets recorded; showing the last 3\n")
	if got := strings.Count(v, "\nPacket "); got != 3 {
		t.Errorf("%d packet blocks, want 3:\n%s", got, v)
	}
	for n := 1; n <= 10; n++ {
		if (ptBlock(v, n) != "") != (n >= 8) {
			t.Errorf("packet %d shown: %v", n, ptBlock(v, n) != "")
		}
	}
	// The first shown packet's delta is from its hidden predecessor.
	ptMustContain(t, "packet 8", ptBlock(v, 8), "2019-07-01 20:20:01.623000 UTC  +0.410000 s  out")

	// Last beyond the count shows everything; negative is refused.
	if all, last := ptView(t, rec, pkts, PacketViewOptions{}), ptView(t, rec, pkts, PacketViewOptions{Last: 50}); all != last {
		t.Error("last 50 of 10 differs from all")
	}
	if err := WriteConnectionPackets(&bytes.Buffer{}, rec, pkts, PacketViewOptions{Last: -1}); err == nil {
		t.Error("last -1 accepted")
	}
	if err := WriteConnectionPackets(&bytes.Buffer{}, nil, pkts, PacketViewOptions{}); err == nil {
		t.Error("nil record accepted")
	}
}

func TestPacketViewDropped(t *testing.T) {
	rec, pkts := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	pkts = pkts[4:] // the ring kept the last six
	v := ptView(t, rec, pkts, PacketViewOptions{Dropped: 1234, Last: 2})
	ptMustContain(t, "dropped", v,
		"  Packet records          : 6 packets recorded, 1234 older ones overwritten; showing the last 2\n",
		"\nPacket 1239  ", "\nPacket 1240  ")
	if strings.Count(v, "\nPacket ") != 2 {
		t.Errorf("want 2 blocks:\n%s", v)
	}
	v = ptView(t, rec, pkts, PacketViewOptions{Dropped: 4})
	ptMustContain(t, "dropped", v, "6 packets recorded, 4 older ones overwritten\n",
		// The oldest kept record has no predecessor: no delta.
		"\nPacket 5  2019-07-01 20:20:01.005000 UTC  in  (server -> client)\n")
}

func TestPacketViewVerbose(t *testing.T) {
	rec, pkts := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	v := ptView(t, rec, pkts, PacketViewOptions{Verbose: true})
	ptMustContain(t, "SYN", ptBlock(v, 1),
		"  Snapshot       ISN         Highest sent                Highest acked               Window\n",
		"    client       3000000000  3000000001 (rel 1)          -                           64240\n",
		"    server       (nothing seen yet)\n",
		"  Analysis       none\n")
	ptMustContain(t, "SYN-ACK", ptBlock(v, 2),
		"    client       3000000000  3000000001 (rel 1)          -                           64240\n",
		"    server       1200        1201 (rel 1)                3000000001 (rel 1)          65160\n")
	// The retransmissions, in order, flagged.
	for n := 7; n <= 9; n++ {
		b := ptBlock(v, n)
		ptMustContain(t, fmt.Sprintf("retransmission %d", n), b,
			"  Seq            3000000101 (rel 101)",
			"  Length         100 ",
			"Flags          P.\n",
			"    client       3000000000  3000000201 (rel 201)        1501 (rel 301)              64000\n",
			"  Analysis       retransmission\n")
	}
	// Verbose keeps everything the normal view has.
	normal := ptView(t, rec, pkts, PacketViewOptions{})
	for n := 1; n <= 10; n++ {
		if !strings.HasPrefix(ptBlock(v, n), ptBlock(normal, n)) {
			t.Errorf("verbose block %d does not extend the normal one", n)
		}
	}
}

func TestPacketViewLocalServerIPv6(t *testing.T) {
	rec, pkts := ptRTConnection(t, "[fd00::1]:40123", "[fd00::2]:443")
	rec.Local, rec.VLAN = "server", []uint16{100, 20}
	v := ptView(t, rec, pkts, PacketViewOptions{})
	ptMustContain(t, "local server", v,
		"Connection [fd00::2]:443 <-> [fd00::1]:40123 (id 17)\n",
		"  Local address           : [fd00::2]:443 (server)\n",
		"  VPN name (VLAN)         : 100.20\n",
		"  Packets                 : in 7, out 3\n",
		"  local (server)     1200 ",
		"  foreign (client)   3000000000 ",
		"\nPacket 1  2019-07-01 20:20:01.003000 UTC  in  (client -> server)\n",
		"  +0.000410 s  out (server -> client)\n",
		"  IP ID          -                            IP length      ")
}

func TestPacketViewEmpty(t *testing.T) {
	rec, _ := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	v := ptView(t, rec, nil, PacketViewOptions{Dropped: 3})
	ptMustContain(t, "empty", v, "0 packets recorded, 3 older ones overwritten\n",
		"  local (client)     -           -  ", "(no packets recorded)\n")
}

func TestPacketViewMidstream(t *testing.T) {
	rec, _ := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	rec.Midstream, rec.RTTms, rec.MSS, rec.WScale = true, record.RTT{}, record.Pair[uint16]{}, record.Pair[int8]{Client: -1, Server: -1}
	const c, s = reassembly.Client, reassembly.Server
	est := [2]reassembly.State{reassembly.StateEstablished, reassembly.StateEstablished}
	pkts := ptBuild(t, rec, []ptSeg{
		{from: s, flags: capture.FlagACK | capture.FlagPSH, seq: 5000, ack: 7000, win: 200, payload: 10, states: est},
		{at: time.Millisecond, from: c, flags: capture.FlagACK, seq: 7000, ack: 5010, win: 300, states: est},
	}, [2]int{-1, -1})
	v := ptView(t, rec, pkts, PacketViewOptions{Verbose: true})
	ptMustContain(t, "midstream", v,
		"  Handshake               : not seen (midstream): roles guessed; ISN is one before the first sequence number seen\n",
		"  Handshake RTT           : -\n",
		"  local (client)     6999        7000 (rel 1)                5010 (rel 11)               300        -     -\n",
		"  foreign (server)   4999        5010 (rel 11)               7000 (rel 1)                200        -     -\n")
	// The first packet: the client unseen, so the ack (and the server's
	// highest ack) is not relative and the client's snapshot row says so;
	// the server's first byte is relative 1.
	ptMustContain(t, "first packet", ptBlock(v, 1),
		"  Seq            5000 (rel 1)                 Ack            7000\n",
		"    client       (nothing seen yet)\n",
		"    server       4999        5010 (rel 11)               7000                        200\n")
	ptMustContain(t, "second packet", ptBlock(v, 2),
		"  Seq            7000 (rel 1)                 Ack            5010 (rel 11)\n",
		"    server       4999        5010 (rel 11)               7000 (rel 1)                200\n")
}
