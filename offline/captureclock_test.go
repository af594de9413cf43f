package offline

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// dyingConnection reads a capture of the reason suite (testdata/scenarios)
// and returns the frames of its first connection, the one that dies; the
// scenarios then run a marker connection whose frames kept the capture
// going, which is left out here. gap is the longer of the two directions'
// last gaps between their segments: the retransmitting or probing side's
// last backoff.
func dyingConnection(t *testing.T, name string) (frames []capture.Frame, gap int64) {
	t.Helper()
	src, err := capture.Open(filepath.Join(peers.ModuleRoot(t), "testdata", "scenarios", name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var (
		key  reassembly.Key
		pkt  capture.Packet
		last = map[capture.Addr][2]int64{} // per sender: its last two segments' times
	)
	for {
		f, err := src.Next()
		if err != nil {
			break
		}
		if !dec.Decode(&f, &pkt) {
			t.Fatalf("%s: a frame that is not TCP", name)
		}
		if len(frames) == 0 {
			key = reassembly.KeyOf(&pkt)
		}
		if reassembly.KeyOf(&pkt) == key {
			f.Data = bytes.Clone(f.Data)
			frames = append(frames, f)
			l := last[pkt.Src]
			last[pkt.Src] = [2]int64{l[1], f.Timestamp}
		}
	}
	if len(frames) < 2 {
		t.Fatalf("%s: %d frames in the first connection", name, len(frames))
	}
	for _, l := range last {
		if l[0] != 0 {
			gap = max(gap, l[1]-l[0])
		}
	}
	return frames, gap
}

// arpRequest is a broadcast ARP request: a frame with no TCP in it.
func arpRequest() []byte {
	b := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
		0, 1, 0x08, 0x00, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 201, 0, 1, 0, 0, 0, 0, 0, 0, 10, 201, 0, 2}
	return append(b, make([]byte, 60-len(b))...)
}

// writePcap writes frames as a microsecond pcap of Ethernet frames.
func writePcap(t *testing.T, frames []capture.Frame) string {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.Timestamp), CaptureLength: len(f.Data), Length: int(f.WireLen)}
		if err := w.WritePacket(ci, f.Data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "capture.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// reasonOf runs the pipeline over path and returns the reason of its only
// connection and the run's statistics.
func reasonOf(t *testing.T, path string, opts Options) string {
	t.Helper()
	var recs []record.Record
	if _, err := Run(context.Background(), []string{path}, opts, func(r *record.Record) { recs = append(recs, *r) }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	return string(recs[0].Reason)
}

// TestCaptureClockEveryFrame checks that the end of the capture is evidence
// whatever ends it. The dying connections of the reason suite (real Linux
// retransmissions, window probes and SYN retries) are cut out of their
// captures, so that their last segment is the last TCP frame; the capture
// then ends with an ARP request, an undecodable frame on a second pcapng
// interface, a pcapng isb_endtime, or --capture-end's time, well past the
// silence that makes the sender's timer give up (3 × its last gap + 2 s).
// Each must give the scenario's reason, where the bare capture says OP, and
// a capture ending too soon after the last segment must stay OP.
func TestCaptureClockEveryFrame(t *testing.T) {
	for _, tc := range []struct{ file, reason string }{
		{"RT-blackhole_tcp4.pcap", "RT"},
		{"RT-blackhole_tcp6.pcap", "RT"},
		{"PT-blackhole_tcp4.pcap", "PT"},
		{"PT-user-timeout_tcp6.pcap", "PT"},
		{"ST-syn-dropped_tcp4.pcap", "ST"},
		{"ST-syn-dropped_tcp6.pcap", "ST"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			frames, gap := dyingConnection(t, tc.file)
			lastTS := frames[len(frames)-1].Timestamp
			end := lastTS + 3*gap + int64(2*time.Second)
			opts := Options{Workers: 2}

			if got := reasonOf(t, writePcap(t, frames), opts); got != "OP" {
				t.Errorf("the connection alone: %s, want OP", got)
			}
			arp := capture.Frame{Data: arpRequest(), Timestamp: end, WireLen: 60}
			if got := reasonOf(t, writePcap(t, append(frames, arp)), opts); got != tc.reason {
				t.Errorf("ending with an ARP request %v later: %s, want %s", time.Duration(end-lastTS), got, tc.reason)
			}
			soon := capture.Frame{Data: arpRequest(), Timestamp: lastTS + int64(100*time.Millisecond), WireLen: 60}
			if got := reasonOf(t, writePcap(t, append(frames, soon)), opts); got != "OP" {
				t.Errorf("ending with an ARP request 100 ms later: %s, want OP", got)
			}
			if got := reasonOf(t, writePcapng(t, frames, end, 0), opts); got != tc.reason {
				t.Errorf("ending with a frame of an unknown link type: %s, want %s", got, tc.reason)
			}
			if got := reasonOf(t, writePcapng(t, frames, 0, end), opts); got != tc.reason {
				t.Errorf("pcapng with isb_endtime: %s, want %s", got, tc.reason)
			}
			at := opts
			at.CaptureEnd = func(clock int64) int64 {
				if clock != lastTS {
					t.Errorf("capture clock %d, want the last frame's %d", clock, lastTS)
				}
				return end
			}
			if got := reasonOf(t, writePcap(t, frames), at); got != tc.reason {
				t.Errorf("with CaptureEnd: %s, want %s", got, tc.reason)
			}
		})
	}
}

// writePcapng writes frames as a pcapng on an Ethernet interface; with
// otherAt, a frame of an unknown link type on a second interface at that
// time; with endTime, an interface statistics block with that isb_endtime.
func writePcapng(t *testing.T, frames []capture.Frame, otherAt, endTime int64) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.AddInterface(pcapgo.NgInterface{Name: "can0", LinkType: layers.LinkType(227)}) // SocketCAN: not decoded
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.Timestamp), CaptureLength: len(f.Data), Length: int(f.WireLen)}
		if err := w.WritePacket(ci, f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if otherAt != 0 {
		can := binary.BigEndian.AppendUint32(nil, 0x123)
		can = append(can, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, otherAt), CaptureLength: len(can), Length: len(can), InterfaceIndex: other}
		if err := w.WritePacket(ci, can); err != nil {
			t.Fatal(err)
		}
	}
	if endTime != 0 {
		last := time.Unix(0, frames[len(frames)-1].Timestamp)
		if err := w.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{LastUpdate: last, StartTime: time.Unix(0, frames[0].Timestamp),
			EndTime: time.Unix(0, endTime), PacketsReceived: uint64(len(frames)), PacketsDropped: 0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
