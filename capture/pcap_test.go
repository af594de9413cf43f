package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// testByteOrder is a byte order that can both read and append.
type testByteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// span is where one record or block lies in a test capture, and whether the
// reader returns a frame for it.
type span struct {
	start, end int
	frame      bool
}

// pcapFile builds a classic pcap capture byte by byte, with the frames a
// reader must return and the span of each record.
type pcapFile struct {
	order    testByteOrder
	nanos    bool
	linkType LinkType
	buf      []byte
	spans    []span
	frames   []Frame
}

func newPcapFile(order testByteOrder, nanos bool, major, minor uint16, snaplen, network uint32) *pcapFile {
	p := &pcapFile{order: order, nanos: nanos, linkType: LinkType(network)}
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	p.buf = order.AppendUint32(p.buf, magic)
	p.buf = order.AppendUint16(p.buf, major)
	p.buf = order.AppendUint16(p.buf, minor)
	p.buf = order.AppendUint32(p.buf, 0) // thiszone
	p.buf = order.AppendUint32(p.buf, 0) // sigfigs
	p.buf = order.AppendUint32(p.buf, snaplen)
	p.buf = order.AppendUint32(p.buf, network)
	return p
}

// rawRecord appends a record with the given header fields and the frame the
// reader must return for it.
func (p *pcapFile) rawRecord(sec, frac, caplen, wirelen uint32, data []byte, want Frame) {
	start := len(p.buf)
	p.buf = p.order.AppendUint32(p.buf, sec)
	p.buf = p.order.AppendUint32(p.buf, frac)
	p.buf = p.order.AppendUint32(p.buf, caplen)
	p.buf = p.order.AppendUint32(p.buf, wirelen)
	p.buf = append(p.buf, data...)
	p.spans = append(p.spans, span{start, len(p.buf), true})
	p.frames = append(p.frames, want)
}

// record appends an ordinary record of data (frac in the file's unit).
func (p *pcapFile) record(sec, frac uint32, data []byte, wirelen uint32) {
	unit := int64(1000)
	if p.nanos {
		unit = 1
	}
	p.rawRecord(sec, frac, uint32(len(data)), wirelen, data, Frame{
		Data:      data,
		Timestamp: int64(sec)*1e9 + int64(frac)*unit,
		WireLen:   max(wirelen, uint32(len(data))),
		LinkType:  p.linkType,
	})
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func TestPcapReaderPcapgoWriters(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newW     func(io.Writer) *pcapgo.Writer
		linkType layers.LinkType
		nanos    bool
	}{
		{"micro ethernet", pcapgo.NewWriter, layers.LinkTypeEthernet, false},
		{"nano raw", pcapgo.NewWriterNanos, layers.LinkTypeRaw, true},
		{"micro null", pcapgo.NewWriter, layers.LinkTypeNull, false},
		{"nano sll", pcapgo.NewWriterNanos, layers.LinkTypeLinuxSLL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := tc.newW(&buf)
			if err := w.WriteFileHeader(262144, tc.linkType); err != nil {
				t.Fatal(err)
			}
			var want []Frame
			for i := range 20 {
				data := payload(i*37%1500, byte(i))
				ts := time.Unix(1600000000+int64(i)*3, int64(i)*123456789).UTC()
				if !tc.nanos {
					ts = ts.Truncate(time.Microsecond)
				}
				wire := len(data) + i%3*100
				if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: wire}, data); err != nil {
					t.Fatal(err)
				}
				want = append(want, Frame{Data: data, Timestamp: ts.UnixNano(), WireLen: uint32(wire), LinkType: LinkType(tc.linkType)})
			}
			r, err := NewPcapReader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if r.LinkType() != LinkType(tc.linkType) || r.Snaplen() != 262144 || r.Nanosecond() != tc.nanos {
				t.Errorf("header: link type %d, snaplen %d, nanosecond %v", r.LinkType(), r.Snaplen(), r.Nanosecond())
			}
			got, err := collectFrames(t, r, 100)
			if err != io.EOF {
				t.Fatalf("ended with %v", err)
			}
			if d := diffFrames(got, want); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestPcapReaderHandBuilt(t *testing.T) {
	for _, order := range []testByteOrder{binary.BigEndian, binary.LittleEndian} {
		for _, nanos := range []bool{false, true} {
			t.Run(order.String()+map[bool]string{false: "/micro", true: "/nano"}[nanos], func(t *testing.T) {
				p := newPcapFile(order, nanos, 2, 4, 64, uint32(LinkTypeEthernet))
				p.record(1700000000, 999999, payload(60, 1), 60)
				p.record(1700000001, 1, payload(0, 0), 0)       // empty frame
				p.record(1700000002, 5, payload(64, 2), 1514)   // snapped
				p.record(1700000003, 7, payload(100, 3), 100)   // caplen > snaplen: tolerated
				p.record(1700000004, 9, payload(80, 4), 70)     // caplen > wirelen: WireLen = caplen
				p.record(0xffffffff, 0, payload(20, 5), 20)     // seconds are unsigned (year 2106)
				p.record(1700000005, 2000000, payload(8, 6), 8) // fraction past one second: carried
				r, err := NewPcapReader(bytes.NewReader(p.buf))
				if err != nil {
					t.Fatal(err)
				}
				got, err := collectFrames(t, r, 100)
				if err != io.EOF {
					t.Fatalf("ended with %v", err)
				}
				if d := diffFrames(got, p.frames); d != "" {
					t.Fatal(d)
				}
			})
		}
	}
}

// TestPcapReaderLinkTypeFCSBits checks that FCS information in the upper bits
// of the link-type field does not change the link type.
func TestPcapReaderLinkTypeFCSBits(t *testing.T) {
	const fcsLen4 = 1<<26 | 2<<28 // F bit set, FCS length 2 16-bit words
	p := newPcapFile(binary.LittleEndian, false, 2, 4, 65535, fcsLen4|uint32(LinkTypeEthernet))
	r, err := NewPcapReader(bytes.NewReader(p.buf))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != LinkTypeEthernet {
		t.Errorf("link type %d, want %d", r.LinkType(), LinkTypeEthernet)
	}
}

// TestPcapReaderOldVersions checks the length order of files older than 2.4:
// before 2.3 the wire length came first; 2.3 files may have either order.
func TestPcapReaderOldVersions(t *testing.T) {
	for _, tc := range []struct {
		major, minor uint16
		hdrCap, wire uint32 // third and fourth header fields
		wantCap      uint32
		wantWire     uint32
	}{
		{2, 2, 1514, 60, 60, 1514},
		{2, 2, 60, 60, 60, 60},
		{543, 0, 1514, 60, 60, 1514},
		{2, 3, 1514, 60, 60, 1514}, // impossible in order: swapped
		{2, 3, 60, 1514, 60, 1514}, // plausible in order: kept
		{2, 4, 60, 1514, 60, 1514},
	} {
		p := newPcapFile(binary.LittleEndian, false, tc.major, tc.minor, 65535, 1)
		data := payload(int(tc.wantCap), 9)
		p.rawRecord(10, 20, tc.hdrCap, tc.wire, data, Frame{
			Data: data, Timestamp: 10e9 + 20e3, WireLen: tc.wantWire, LinkType: 1,
		})
		r, err := NewPcapReader(bytes.NewReader(p.buf))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectFrames(t, r, 10)
		if err != io.EOF {
			t.Fatalf("version %d.%d: ended with %v", tc.major, tc.minor, err)
		}
		if d := diffFrames(got, p.frames); d != "" {
			t.Errorf("version %d.%d: %s", tc.major, tc.minor, d)
		}
	}
}

func TestPcapReaderCorrupt(t *testing.T) {
	t.Run("captured length over the maximum", func(t *testing.T) {
		p := newPcapFile(binary.LittleEndian, false, 2, 4, 0xffffffff, 1)
		p.record(1, 2, payload(10, 1), 10)
		start := len(p.buf)
		p.rawRecord(1, 2, MaxRecordLen+1, MaxRecordLen+1, payload(100, 1), Frame{})
		r, err := NewPcapReader(bytes.NewReader(p.buf))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectFrames(t, r, 10)
		wantFormatError(t, err, int64(start), "packet record: captured length 262145 exceeds the maximum of 262144")
		if len(got) != 1 {
			t.Errorf("%d frames before the error, want 1", len(got))
		}
		if cap(r.buf) > 4096 {
			t.Errorf("buffer grew to %d bytes for a record that was refused", cap(r.buf))
		}
		if _, again := r.Next(); again != err {
			t.Errorf("Next after the error: %v, want the same error", again)
		}
	})
	t.Run("maximum captured length is accepted", func(t *testing.T) {
		p := newPcapFile(binary.BigEndian, true, 2, 4, 65535, 1)
		p.record(1, 2, payload(MaxRecordLen, 3), MaxRecordLen)
		r, err := NewPcapReader(bytes.NewReader(p.buf))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectFrames(t, r, 10)
		if err != io.EOF || diffFrames(got, p.frames) != "" {
			t.Fatalf("ended with %v after %d frames", err, len(got))
		}
	})
	t.Run("header", func(t *testing.T) {
		good := newPcapFile(binary.LittleEndian, false, 2, 4, 65535, 1).buf
		for _, tc := range []struct {
			name   string
			data   []byte
			offset int64
			msg    string
		}{
			{"bad magic", append([]byte{1, 2, 3, 4}, good[4:]...), 0, "not a pcap file: magic number 0x01020304"},
			{"pcapng", sampleNgFile().bytes(), 0, "not a pcap file: magic number 0x0a0d0d0a"},
			{"version 1", append(bytes.Clone(good[:4]), append([]byte{1, 0, 0, 0}, good[8:]...)...), 4, "unsupported pcap version 1.0"},
			{"truncated", good[:23], 0, "truncated file header"},
		} {
			_, err := NewPcapReader(bytes.NewReader(tc.data))
			wantFormatError(t, err, tc.offset, tc.msg)
		}
		if _, err := NewPcapReader(bytes.NewReader(nil)); !errors.Is(err, ErrEmptyInput) {
			t.Errorf("empty input: %v, want ErrEmptyInput", err)
		}
	})
}

// checkTruncations reads every prefix of a capture (through the sniffing
// path, with a small buffer) and requires the frames of the records that
// end within the prefix, then io.EOF if the prefix ends on a record
// boundary, or else a *FormatError at the start of the record it cuts.
// headerEnd is where the file header (pcapng: the first section header)
// ends; spans are the records or blocks after it.
func checkTruncations(t *testing.T, data []byte, headerEnd int, spans []span, frames []Frame) {
	t.Helper()
	for n := 0; n <= len(data); n++ {
		src, err := newSource(bytes.NewReader(data[:n]), nil, 64)
		switch {
		case n == 0:
			if !errors.Is(err, ErrEmptyInput) {
				t.Fatalf("empty prefix: %v, want ErrEmptyInput", err)
			}
			continue
		case n < headerEnd:
			fe := wantFormatError(t, err, 0, "truncated")
			if fe.Err != io.ErrUnexpectedEOF {
				t.Fatalf("prefix %d: error %v does not wrap io.ErrUnexpectedEOF", n, err)
			}
			continue
		case err != nil:
			t.Fatalf("prefix %d: %v", n, err)
		}
		got, err := collectFrames(t, src, len(frames))
		wantN, cut := 0, -1
		for _, s := range spans {
			if s.end <= n && s.frame {
				wantN++
			}
			if s.start < n && n < s.end {
				cut = s.start
			}
		}
		if d := diffFrames(got, frames[:wantN]); d != "" {
			t.Fatalf("prefix %d: %s", n, d)
		}
		if cut < 0 {
			if err != io.EOF {
				t.Fatalf("prefix %d ends on a boundary: %v, want io.EOF", n, err)
			}
			if off := src.(OffsetSource).Offset(); off != int64(n) {
				t.Fatalf("prefix %d: Offset at EOF = %d", n, off)
			}
			continue
		}
		fe := wantFormatError(t, err, int64(cut), "truncated")
		if fe.Err != io.ErrUnexpectedEOF {
			t.Fatalf("prefix %d: error %v does not wrap io.ErrUnexpectedEOF", n, err)
		}
	}
}

func TestPcapReaderTruncation(t *testing.T) {
	p := newPcapFile(binary.BigEndian, true, 2, 4, 65535, 1)
	p.record(1, 2, payload(40, 1), 40)
	p.record(3, 4, payload(0, 0), 0)
	p.record(5, 6, payload(17, 2), 1500)
	p.record(7, 8, payload(3, 3), 3)
	checkTruncations(t, p.buf, pcapFileHeaderLen, p.spans, p.frames)
}

func TestPcapReaderOffset(t *testing.T) {
	p := newPcapFile(binary.LittleEndian, false, 2, 4, 65535, 1)
	for i := range 5 {
		p.record(uint32(i), 0, payload(i*11, 0), uint32(i*11))
	}
	r, err := NewPcapReader(bytes.NewReader(p.buf))
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset() != pcapFileHeaderLen {
		t.Errorf("Offset after the header = %d", r.Offset())
	}
	for i, s := range p.spans {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if r.Offset() != int64(s.end) {
			t.Errorf("Offset after record %d = %d, want %d", i, r.Offset(), s.end)
		}
	}
}

// manyPackets returns a pcap of n equal-size records.
func manyPackets(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	data := payload(1514, 0)
	for i := range n {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestPcapReaderAllocs(t *testing.T) {
	r, err := NewPcapReader(bytes.NewReader(manyPackets(t, 1100)))
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Next, want 0", allocs)
	}
}

func BenchmarkPcapReader(b *testing.B) {
	data := manyPackets(b, 10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewPcapReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
