package exporter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// pcTestConns are the connections the pcap tests export: IPv4 and IPv6,
// each with TCP options and one record without header bytes (packet 8).
var pcTestConns = []struct{ name, client, server string }{
	{"ipv4", "10.0.0.1:40123", "10.0.0.2:80"},
	{"ipv6", "[fd00::1]:40123", "[fd00::2]:443"},
}

// pcSynthIndex is the record ptRTConnection builds without header bytes.
const pcSynthIndex = 7

// pcExpectedSynth is the header WritePcap must synthesize for a record
// without header bytes, built independently with gopacket: IPv4 without
// options, flags or DF, TTL 64 (IPv6: hop limit 64), TCP without options,
// lengths for the payload, the IPv4 header checksum computed and the TCP
// checksum the recorded one.
func pcExpectedSynth(t *testing.T, rec *record.Record, p *flightrec.PacketRecord) []byte {
	t.Helper()
	src, dst := rec.Client, rec.Server
	if p.From == reassembly.Server {
		src, dst = dst, src
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: p.Seq, Ack: p.Ack, Window: p.Window,
		SYN: p.Flags.Has(capture.FlagSYN), ACK: p.Flags.Has(capture.FlagACK), PSH: p.Flags.Has(capture.FlagPSH),
		FIN: p.Flags.Has(capture.FlagFIN), RST: p.Flags.Has(capture.FlagRST)}
	var ip gopacket.SerializableLayer
	ipLen := 20
	if src.Addr().Is4() {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Id: p.IPID,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	} else {
		ipLen = 40
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip.(gopacket.NetworkLayer)); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(make([]byte, p.PayloadLen))); err != nil {
		t.Fatal(err)
	}
	hdr := append([]byte{}, buf.Bytes()[:ipLen+20]...)
	binary.BigEndian.PutUint16(hdr[ipLen+16:], p.Checksum)
	return hdr
}

// pcWrite exports a connection to a file in a temporary directory.
func pcWrite(t *testing.T, rec *record.Record, pkts []flightrec.PacketRecord) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), PcapFileName(rec))
	var b bytes.Buffer
	if err := WritePcap(&b, rec, pkts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWritePcapReadBack reads the export with gopacket's pcapgo: file
// header, timestamps, lengths and the header bytes, exactly.
func TestWritePcapReadBack(t *testing.T) {
	for _, c := range pcTestConns {
		t.Run(c.name, func(t *testing.T) {
			rec, pkts := ptRTConnection(t, c.client, c.server)
			if pkts[pcSynthIndex].HdrLen != 0 {
				t.Fatal("test data: the record to synthesize has header bytes")
			}
			f, err := os.Open(pcWrite(t, rec, pkts))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			if r.LinkType() != layers.LinkTypeRaw || r.Resolution() != gopacket.TimestampResolutionNanosecond ||
				r.Snaplen() != flightrec.MaxHeaderBytes {
				t.Errorf("file header: link type %v, resolution %v, snaplen %d", r.LinkType(), r.Resolution(), r.Snaplen())
			}
			for i := range pkts {
				p := &pkts[i]
				data, ci, err := r.ReadPacketData()
				if err != nil {
					t.Fatalf("packet %d: %v", i+1, err)
				}
				if !ci.Timestamp.Equal(time.Unix(0, p.Timestamp)) {
					t.Errorf("packet %d: time %v, want %v", i+1, ci.Timestamp, time.Unix(0, p.Timestamp))
				}
				want, wantLen := p.Hdr[:p.HdrLen], int(p.WireLen)
				if i == pcSynthIndex {
					want = pcExpectedSynth(t, rec, p)
					wantLen = len(want) + int(p.PayloadLen)
				}
				if !bytes.Equal(data, want) {
					t.Errorf("packet %d: header bytes\n got %x\nwant %x", i+1, data, want)
				}
				if ci.CaptureLength != len(want) || ci.Length != wantLen {
					t.Errorf("packet %d: captured %d of %d, want %d of %d", i+1, ci.CaptureLength, ci.Length, len(want), wantLen)
				}
				// gopacket decodes the truncated packet's headers.
				pkt := gopacket.NewPacket(data, layers.LayerTypeIPv4, gopacket.Default)
				if rec.Family == "ipv6" {
					pkt = gopacket.NewPacket(data, layers.LayerTypeIPv6, gopacket.Default)
				}
				tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if tcp == nil || tcp.Seq != p.Seq || tcp.Ack != p.Ack || tcp.Checksum != p.Checksum {
					t.Errorf("packet %d: gopacket decodes %v", i+1, pkt)
				}
				if ip4, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ip4 != nil && capture.IPv4HeaderChecksum(data[:ip4.IHL*4]) != 0 {
					t.Errorf("packet %d: bad IPv4 header checksum", i+1)
				}
			}
			if _, _, err := r.ReadPacketData(); err != io.EOF {
				t.Errorf("after the last packet: %v, want EOF", err)
			}
		})
	}
}

// TestWritePcapTshark opens the export with tshark and checks that it
// shows each record's TCP header: ports, raw seq/ack, flags, window,
// checksum, IP ID, and the true lengths.
//
// tshark computes tcp.len from the IP header's length field (ip.len or
// ipv6.plen minus the headers), not from the captured bytes, so a
// header-only record shows the payload length it had on the wire
// ("152 bytes on wire, 52 bytes captured ... Len: 100"); its TCP analysis
// works too (the retransmissions are flagged as such).
func TestWritePcapTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed; CI must have it")
		}
		t.Skip("tshark is not installed")
	}
	fields := []string{"frame.len", "frame.cap_len", "frame.time_epoch", "tcp.srcport", "tcp.dstport",
		"tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.len", "tcp.window_size_value", "tcp.checksum",
		"ip.len", "ipv6.plen", "ip.id", "ip.checksum.status", "tcp.analysis.retransmission"}
	for _, c := range pcTestConns {
		t.Run(c.name, func(t *testing.T) {
			rec, pkts := ptRTConnection(t, c.client, c.server)
			path := pcWrite(t, rec, pkts)
			args := []string{"-n", "-r", path, "-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "separator=|"}
			for _, f := range fields {
				args = append(args, "-e", f)
			}
			cmd := exec.Command(tshark, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tshark: %v\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) != len(pkts) {
				t.Fatalf("tshark shows %d packets, want %d:\n%s\n%s", len(lines), len(pkts), out, stderr.String())
			}
			for i, line := range lines {
				p := &pkts[i]
				got := map[string]string{}
				for j, v := range strings.Split(line, "|") {
					got[fields[j]] = v
				}
				src, dst := rec.Client, rec.Server
				if p.From == reassembly.Server {
					src, dst = dst, src
				}
				hdrLen, wireLen := int(p.HdrLen), int(p.WireLen)
				ipHdr := 20
				if rec.Family == "ipv6" {
					ipHdr = 40
				}
				if i == pcSynthIndex {
					hdrLen = ipHdr + 20
					wireLen = hdrLen + int(p.PayloadLen)
				}
				want := map[string]string{
					"frame.len":                   strconv.Itoa(wireLen),
					"frame.cap_len":               strconv.Itoa(hdrLen),
					"frame.time_epoch":            fmt.Sprintf("%d.%09d", p.Timestamp/1e9, p.Timestamp%1e9),
					"tcp.srcport":                 strconv.Itoa(int(src.Port())),
					"tcp.dstport":                 strconv.Itoa(int(dst.Port())),
					"tcp.seq_raw":                 strconv.FormatUint(uint64(p.Seq), 10),
					"tcp.ack_raw":                 strconv.FormatUint(uint64(p.Ack), 10),
					"tcp.flags":                   fmt.Sprintf("0x%04x", uint16(p.Flags)),
					"tcp.len":                     strconv.FormatUint(uint64(p.PayloadLen), 10),
					"tcp.window_size_value":       strconv.Itoa(int(p.Window)),
					"tcp.checksum":                fmt.Sprintf("0x%04x", p.Checksum),
					"ip.len":                      "",
					"ipv6.plen":                   "",
					"ip.id":                       "",
					"ip.checksum.status":          "",
					"tcp.analysis.retransmission": map[bool]string{true: "1", false: ""}[p.Analysis&reassembly.Retransmission != 0],
				}
				if rec.Family == "ipv4" {
					want["ip.len"] = strconv.Itoa(wireLen)
					want["ip.id"] = fmt.Sprintf("0x%04x", p.IPID)
					want["ip.checksum.status"] = "1" // good
				} else {
					want["ipv6.plen"] = strconv.Itoa(wireLen - 40)
				}
				for _, f := range fields {
					if got[f] != want[f] {
						t.Errorf("packet %d: %s = %q, want %q", i+1, f, got[f], want[f])
					}
				}
			}
		})
	}
}

func TestWritePcapWithoutConnection(t *testing.T) {
	rec, pkts := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	if err := WritePcap(io.Discard, nil, pkts[:pcSynthIndex]); err != nil {
		t.Errorf("records with headers, no connection: %v", err)
	}
	if err := WritePcap(io.Discard, nil, pkts); err == nil {
		t.Error("a record to synthesize without a connection was accepted")
	}
	if err := WritePcap(io.Discard, rec, nil); err != nil {
		t.Errorf("no records: %v", err)
	}
	var b bytes.Buffer
	if err := WritePcap(&b, rec, nil); err != nil || b.Len() != 24 {
		t.Errorf("no records: %d bytes, %v; want the 24-byte file header", b.Len(), err)
	}
}

type pcFailWriter struct{ n int }

func (w *pcFailWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWritePcapRobust(t *testing.T) {
	rec, pkts := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	if err := WritePcap(&pcFailWriter{n: 10}, rec, pkts); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error: %v", err)
	}
	// Out-of-range values never panic and keep the file readable.
	bad := pkts[3]
	bad.HdrLen, bad.WireLen = 255, 0
	huge := pkts[pcSynthIndex]
	huge.PayloadLen = 1 << 20
	odd := pkts[pcSynthIndex]
	odd.Family = 0
	v4in6 := *rec
	v4in6.Client = netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.0.0.1"), 40123)
	var b bytes.Buffer
	if err := WritePcap(&b, &v4in6, []flightrec.PacketRecord{bad, huge, odd}); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]int{{flightrec.MaxHeaderBytes, flightrec.MaxHeaderBytes}, {40, 0xffff}, {40, 140}} {
		data, ci, err := r.ReadPacketData()
		if err != nil || ci.CaptureLength != want[0] || ci.Length != want[1] || len(data) != want[0] {
			t.Errorf("packet %d: %d of %d (%v), want %v", i+1, ci.CaptureLength, ci.Length, err, want)
		}
		if i > 0 && (data[0] != 0x45 || !bytes.Equal(data[12:16], []byte{10, 0, 0, 1})) {
			t.Errorf("packet %d: not an IPv4 header from the mapped address: %x", i+1, data)
		}
	}
	// An IPv4 record between IPv6 addresses cannot be synthesized.
	v6 := *rec
	v6.Client = netip.MustParseAddrPort("[fd00::1]:40123")
	if err := WritePcap(io.Discard, &v6, []flightrec.PacketRecord{pkts[pcSynthIndex]}); err == nil {
		t.Error("IPv4 record between IPv6 addresses accepted")
	}
}

func TestPcapFileName(t *testing.T) {
	rec, _ := ptRTConnection(t, "10.0.0.1:40123", "10.0.0.2:80")
	if got, want := PcapFileName(rec), "10.0.0.1_40123-10.0.0.2_80_RT_17.pcap"; got != want {
		t.Errorf("IPv4: %q, want %q", got, want)
	}
	rec, _ = ptRTConnection(t, "[fd00::1]:40123", "[2001:db8::a:2]:443")
	rec.ID, rec.Reason = 4711, ""
	name := PcapFileName(rec)
	if want := "fd00..1_40123-2001.db8..a.2_443_none_4711.pcap"; name != want {
		t.Errorf("IPv6: %q, want %q", name, want)
	}
	if strings.ContainsAny(name, `:/\%[]*?"<>| `) {
		t.Errorf("IPv6 name %q has characters some filesystem refuses", name)
	}
}
