package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ngOpt is one pcapng option: code and unpadded value.
type ngOpt struct {
	code uint16
	val  []byte
}

// ngFile builds a pcapng capture block by block, with the frames a reader
// must return and the span of each block.
type ngFile struct {
	order   testByteOrder
	buf     []byte
	spans   []span
	frames  []Frame
	ifaces  []LinkType // link types of the current section's interfaces
	ifIndex []uint16   // their Frame.Interface values
	snaps   []uint32
	nIfaces int
	lastTS  int64
}

func (b *ngFile) bytes() []byte { return b.buf }

func (b *ngFile) u16(v uint16) []byte { return b.order.AppendUint16(nil, v) }
func (b *ngFile) u32(v uint32) []byte { return b.order.AppendUint32(nil, v) }
func (b *ngFile) u64(v uint64) []byte { return b.order.AppendUint64(nil, v) }

func pad4(p []byte) []byte {
	for len(p)%4 != 0 {
		p = append(p, 0)
	}
	return p
}

// options encodes opts and the end-of-options marker.
func (b *ngFile) options(opts []ngOpt) []byte {
	if len(opts) == 0 {
		return nil
	}
	var p []byte
	for _, o := range opts {
		p = b.order.AppendUint16(p, o.code)
		p = b.order.AppendUint16(p, uint16(len(o.val)))
		p = pad4(append(p, o.val...))
	}
	return append(p, 0, 0, 0, 0)
}

// block appends a block of the given type around body (padded to 4 bytes)
// and returns its start.
func (b *ngFile) block(typ uint32, body []byte, frame bool) int {
	start := len(b.buf)
	body = pad4(bytes.Clone(body))
	length := uint32(12 + len(body))
	b.buf = b.order.AppendUint32(b.buf, typ)
	b.buf = b.order.AppendUint32(b.buf, length)
	b.buf = append(b.buf, body...)
	b.buf = b.order.AppendUint32(b.buf, length)
	b.spans = append(b.spans, span{start, len(b.buf), frame})
	return start
}

// shb starts a section in the given byte order.
func (b *ngFile) shb(order testByteOrder, opts ...ngOpt) int {
	return b.shbVersion(order, 1, 0, opts...)
}

func (b *ngFile) shbVersion(order testByteOrder, major, minor uint16, opts ...ngOpt) int {
	b.order = order
	b.ifaces, b.ifIndex, b.snaps = nil, nil, nil
	body := b.u32(ngByteOrderMagic)
	body = append(body, b.u16(major)...)
	body = append(body, b.u16(minor)...)
	body = append(body, b.u64(math.MaxUint64)...) // section length unknown
	body = append(body, b.options(opts)...)
	return b.block(ngBlockSectionHeader, body, false)
}

func (b *ngFile) idb(lt LinkType, snaplen uint32, opts ...ngOpt) int {
	b.ifaces = append(b.ifaces, lt)
	b.ifIndex = append(b.ifIndex, uint16(b.nIfaces))
	b.snaps = append(b.snaps, snaplen)
	b.nIfaces++
	body := append(b.u16(uint16(lt)), 0, 0)
	body = append(body, b.u32(snaplen)...)
	body = append(body, b.options(opts)...)
	return b.block(ngBlockInterface, body, false)
}

// packetBody encodes the fixed fields and data of an EPB or PB.
func (b *ngFile) packetBody(idField []byte, ticks uint64, data []byte, wirelen uint32, opts []ngOpt) []byte {
	body := idField
	body = append(body, b.u32(uint32(ticks>>32))...)
	body = append(body, b.u32(uint32(ticks))...)
	body = append(body, b.u32(uint32(len(data)))...)
	body = append(body, b.u32(wirelen)...)
	body = pad4(append(body, data...))
	return append(body, b.options(opts)...)
}

func (b *ngFile) want(ifID int, data []byte, ts int64, wirelen uint32) {
	b.frames = append(b.frames, Frame{
		Data: data, Timestamp: ts, WireLen: max(wirelen, uint32(len(data))),
		LinkType: b.ifaces[ifID], Interface: b.ifIndex[ifID],
	})
	b.lastTS = ts
}

// epb appends an Enhanced Packet Block; wantTS is the timestamp the reader
// must compute from ticks.
func (b *ngFile) epb(ifID uint32, ticks uint64, data []byte, wirelen uint32, wantTS int64, opts ...ngOpt) int {
	start := b.block(ngBlockEnhancedPacket, b.packetBody(b.u32(ifID), ticks, data, wirelen, opts), true)
	b.want(int(ifID), data, wantTS, wirelen)
	return start
}

// pb appends an obsolete Packet Block.
func (b *ngFile) pb(ifID uint16, ticks uint64, data []byte, wirelen uint32, wantTS int64) int {
	id := append(b.u16(ifID), b.u16(7)...) // drop count
	start := b.block(ngBlockPacketObsolete, b.packetBody(id, ticks, data, wirelen, nil), true)
	b.want(int(ifID), data, wantTS, wirelen)
	return start
}

// spb appends a Simple Packet Block holding data; the reader must return
// its first wantLen bytes.
func (b *ngFile) spb(wirelen uint32, data []byte, wantLen int) int {
	start := b.block(ngBlockSimplePacket, append(b.u32(wirelen), data...), true)
	b.want(0, data[:wantLen], b.lastTS, wirelen)
	return start
}

// put32 overwrites the 32-bit field at off in the current byte order.
func (b *ngFile) put32(off int, v uint32) { b.order.PutUint32(b.buf[off:], v) }

func tsresol(v byte) ngOpt { return ngOpt{ngOptTSResol, []byte{v}} }

func (b *ngFile) tsoffset(sec int64) ngOpt {
	return ngOpt{ngOptTSOffset, b.order.AppendUint64(nil, uint64(sec))}
}

// sampleNgFile is a capture of three sections (little-, big-, little-endian)
// with interfaces of several link types, resolutions and offsets, every
// packet block type, and blocks the reader skips.
func sampleNgFile() *ngFile {
	b := &ngFile{}
	const sec = 1700000000
	// Section 1: microsecond Ethernet and nanosecond raw IP.
	b.shb(binary.LittleEndian, ngOpt{4, []byte("tcptap test")})
	b.idb(LinkTypeEthernet, 0, ngOpt{2, []byte("eth0")})
	b.idb(LinkTypeRaw, 128, tsresol(9), ngOpt{2, []byte("tun0")})
	b.block(ngBlockNameResolution, []byte{1, 0, 8, 0, 10, 0, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0}, false)
	b.epb(0, sec*1e6+1, payload(60, 1), 60, sec*1e9+1000)
	b.epb(1, sec*1e9+7, payload(128, 2), 1400, sec*1e9+7, ngOpt{1, []byte("a comment")})
	b.block(ngBlockCustom, []byte{0x7b, 0, 0, 0, 'x'}, false)
	b.block(ngBlockInterfaceStats, make([]byte, 12), false)
	b.pb(1, sec*1e9+9, payload(33, 3), 33, sec*1e9+9)
	b.spb(70, payload(70, 4), 70)
	// Section 2, big-endian: its interface ids start again at 0.
	b.shb(binary.BigEndian)
	b.idb(LinkTypeLinuxSLL, 40, tsresol(0x8a), b.tsoffset(100)) // 2^-10 s, +100 s
	b.epb(0, (sec<<10)+512, payload(20, 5), 20, (sec+100)*1e9+5e8)
	b.spb(100, payload(100, 6), 40) // cut to the snap length
	b.block(ngBlockDecryptSecrets, make([]byte, 8), false)
	b.epb(0, sec<<10+1, payload(40, 7), 9000, (sec+100)*1e9+976562)
	// Section 3: one more interface, distinct from those of section 1.
	b.shb(binary.LittleEndian)
	b.idb(LinkTypeNull, 65535, tsresol(3))
	b.epb(0, sec*1e3+5, payload(44, 8), 44, sec*1e9+5e6)
	return b
}

func TestPcapngReaderSections(t *testing.T) {
	b := sampleNgFile()
	for _, bufSize := range []int{16, 100, readBufferSize} {
		r, err := newPcapngReader(newInput(bytes.NewReader(b.bytes()), bufSize))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectFrames(t, r, 100)
		if err != io.EOF {
			t.Fatalf("buffer %d: ended with %v", bufSize, err)
		}
		if d := diffFrames(got, b.frames); d != "" {
			t.Fatalf("buffer %d: %s", bufSize, d)
		}
		if r.Offset() != int64(len(b.bytes())) {
			t.Errorf("Offset at EOF = %d, want %d", r.Offset(), len(b.bytes()))
		}
	}
}

func TestPcapngReaderNgWriter(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 96})
	if err != nil {
		t.Fatal(err)
	}
	sll2, err := w.AddInterface(pcapgo.NgInterface{Name: "any", LinkType: layers.LinkType(LinkTypeLinuxSLL2)})
	if err != nil {
		t.Fatal(err)
	}
	types := map[int]LinkType{0: LinkTypeEthernet, raw: LinkTypeRaw, sll2: LinkTypeLinuxSLL2}
	var want []Frame
	for i := range 30 {
		iface := i % 3
		data := payload(i*53%1600, byte(i))
		ts := time.Unix(1650000000+int64(i), int64(i)*33333333+1)
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data) + i, InterfaceIndex: iface}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			if err := w.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{LastUpdate: ts, PacketsReceived: 10, PacketsDropped: 0}); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, Frame{Data: data, Timestamp: ts.UnixNano(), WireLen: uint32(len(data) + i), LinkType: types[iface], Interface: uint16(iface)})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := NewPcapngReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := collectFrames(t, r, 100)
	if err != io.EOF {
		t.Fatalf("ended with %v", err)
	}
	if d := diffFrames(got, want); d != "" {
		t.Fatal(d)
	}
}

func TestPcapngTimestampResolutions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     func(*ngFile) []ngOpt
		ticks    uint64
		wantNano int64
	}{
		{"default microseconds", nil, 1_700_000_000_123_456, 1_700_000_000_123_456_000},
		{"milliseconds", func(*ngFile) []ngOpt { return []ngOpt{tsresol(3)} }, 1_700_000_000_123, 1_700_000_000_123_000_000},
		{"nanoseconds", func(*ngFile) []ngOpt { return []ngOpt{tsresol(9)} }, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789},
		{"seconds", func(*ngFile) []ngOpt { return []ngOpt{tsresol(0)} }, 1_700_000_000, 1_700_000_000_000_000_000},
		{"picoseconds", func(*ngFile) []ngOpt { return []ngOpt{tsresol(12)} }, 1_000_000_123_456_789_012, 1_000_000_123_456_789},
		{"10^-19", func(*ngFile) []ngOpt { return []ngOpt{tsresol(19)} }, 12_345_678_901_234_567_890, 1_234_567_890},
		{"2^-10", func(*ngFile) []ngOpt { return []ngOpt{tsresol(0x8a)} }, 1700000000<<10 | 3, 1_700_000_000_002_929_687}, // 3/1024 s = 2929687.5 ns
		{"2^-30", func(*ngFile) []ngOpt { return []ngOpt{tsresol(0x9e)} }, 1700000000<<30 | 1<<29, 1_700_000_000_500_000_000},
		{"2^-63", func(*ngFile) []ngOpt { return []ngOpt{tsresol(0xbf)} }, 1<<63 | 1<<62, 1_500_000_000},
		{"2^0", func(*ngFile) []ngOpt { return []ngOpt{tsresol(0x80)} }, 7, 7e9},
		{"offset", func(b *ngFile) []ngOpt { return []ngOpt{b.tsoffset(1_600_000_000)} }, 100_000_001, 1_600_000_100_000_001_000},
		{"negative offset", func(b *ngFile) []ngOpt { return []ngOpt{tsresol(9), b.tsoffset(-10)} }, 20e9 + 5, 10e9 + 5},
		{"short tsresol ignored", func(*ngFile) []ngOpt { return []ngOpt{{ngOptTSResol, nil}} }, 5, 5000},
		{"long tsresol uses first byte", func(*ngFile) []ngOpt { return []ngOpt{{ngOptTSResol, []byte{9, 1, 2, 3, 4, 5}}} }, 5, 5},
		{"short tsoffset ignored", func(*ngFile) []ngOpt { return []ngOpt{{ngOptTSOffset, []byte{1, 2, 3, 4}}} }, 5, 5000},
	} {
		for _, order := range []testByteOrder{binary.LittleEndian, binary.BigEndian} {
			b := &ngFile{}
			b.shb(order)
			var opts []ngOpt
			if tc.opts != nil {
				opts = tc.opts(b)
			}
			b.idb(LinkTypeEthernet, 0, opts...)
			b.epb(0, tc.ticks, payload(14, 0), 14, tc.wantNano)
			r, err := NewPcapngReader(bytes.NewReader(b.bytes()))
			if err != nil {
				t.Fatal(err)
			}
			f, err := r.Next()
			if err != nil {
				t.Fatalf("%s, %v: %v", tc.name, order, err)
			}
			if f.Timestamp != tc.wantNano {
				t.Errorf("%s, %v: timestamp %d, want %d", tc.name, order, f.Timestamp, tc.wantNano)
			}
		}
	}
}

func TestPcapngSimplePacketLength(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snaplen  uint32
		wirelen  uint32
		body     int // data bytes in the block
		wantData int
	}{
		{"whole packet", 0, 60, 60, 60},
		{"padding not data", 0, 61, 64, 61},
		{"snapped", 40, 60, 40, 40},
		{"snaplen above packet", 1000, 60, 60, 60},
		{"body shorter than both", 1000, 1500, 100, 100},
		{"empty", 0, 0, 0, 0},
	} {
		b := &ngFile{}
		b.shb(binary.BigEndian)
		b.idb(LinkTypeRaw, tc.snaplen)
		b.epb(0, 5, payload(10, 1), 10, 5000)
		b.spb(tc.wirelen, payload(tc.body, 2), tc.wantData)
		r, err := NewPcapngReader(bytes.NewReader(b.bytes()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectFrames(t, r, 10)
		if err != io.EOF {
			t.Fatalf("%s: ended with %v", tc.name, err)
		}
		if d := diffFrames(got, b.frames); d != "" {
			t.Errorf("%s: %s", tc.name, d)
		}
	}
}

func TestPcapngCorrupt(t *testing.T) {
	// base is a valid section with two interfaces and one packet.
	base := func() *ngFile {
		b := &ngFile{}
		b.shb(binary.LittleEndian)
		b.idb(LinkTypeEthernet, 0)
		b.idb(LinkTypeRaw, 0)
		b.epb(0, 1, payload(30, 1), 30, 1000)
		return b
	}
	type result struct {
		frames int    // frames before the error
		offset int    // error offset
		msg    string // error message
	}
	for _, tc := range []struct {
		name  string
		build func() (*ngFile, result)
	}{
		{"block length under 12", func() (*ngFile, result) {
			b := base()
			at := b.block(ngBlockCustom, nil, false)
			b.put32(at+4, 8)
			return b, result{1, at, "custom block: block length 8 is less than the minimum of 12"}
		}},
		{"block length not a multiple of 4", func() (*ngFile, result) {
			b := base()
			at := b.epb(1, 2, payload(5, 1), 5, 0)
			b.put32(at+4, 37)
			return b, result{1, at, "enhanced packet block: block length 37 is not a multiple of 4"}
		}},
		{"enhanced packet block under its minimum", func() (*ngFile, result) {
			b := base()
			at := b.block(ngBlockEnhancedPacket, make([]byte, 16), false)
			return b, result{1, at, "enhanced packet block: block length 28 is less than the minimum of 32"}
		}},
		{"trailing length mismatch", func() (*ngFile, result) {
			b := base()
			at := b.epb(0, 2, payload(20, 1), 20, 0)
			b.put32(len(b.buf)-4, 40)
			return b, result{1, at, "enhanced packet block: trailing length 40 does not match 52"}
		}},
		{"trailing length mismatch in a skipped block", func() (*ngFile, result) {
			b := base()
			at := b.block(ngBlockNameResolution, make([]byte, 8), false)
			b.put32(len(b.buf)-4, 24)
			return b, result{1, at, "name resolution block: trailing length 24 does not match 20"}
		}},
		{"trailing length mismatch in an interface block", func() (*ngFile, result) {
			b := base()
			at := b.idb(LinkTypeRaw, 0, tsresol(9))
			b.put32(len(b.buf)-4, 0)
			return b, result{1, at, "interface description block: trailing length 0 does not match 32"}
		}},
		{"captured length beyond the block", func() (*ngFile, result) {
			b := base()
			at := b.epb(0, 2, payload(20, 1), 20, 0)
			b.put32(at+20, 21)
			return b, result{1, at, "enhanced packet block: captured length 21 does not fit in block length 52"}
		}},
		{"captured length over the maximum", func() (*ngFile, result) {
			b := base()
			at := b.epb(0, 2, payload(20, 1), 20, 0)
			b.put32(at+4, 0x7ffffff0)
			b.put32(at+20, MaxRecordLen+1)
			return b, result{1, at, "enhanced packet block: captured length 262145 exceeds the maximum of 262144"}
		}},
		{"undefined interface", func() (*ngFile, result) {
			b := base()
			at := b.block(ngBlockEnhancedPacket, b.packetBody(b.u32(2), 0, payload(4, 0), 4, nil), true)
			return b, result{1, at, "enhanced packet block: interface id 2 is not defined in this section (it has 2 interfaces)"}
		}},
		{"undefined interface in a packet block", func() (*ngFile, result) {
			b := base()
			at := b.block(ngBlockPacketObsolete, b.packetBody(append(b.u16(9), 0, 0), 0, payload(4, 0), 4, nil), true)
			return b, result{1, at, "packet block: interface id 9 is not defined in this section (it has 2 interfaces)"}
		}},
		{"interfaces do not carry over to the next section", func() (*ngFile, result) {
			b := base()
			b.shb(binary.BigEndian)
			at := b.block(ngBlockEnhancedPacket, b.packetBody(b.u32(0), 0, payload(4, 0), 4, nil), true)
			return b, result{1, at, "enhanced packet block: interface id 0 is not defined in this section (it has 0 interfaces)"}
		}},
		{"simple packet without an interface", func() (*ngFile, result) {
			b := base()
			b.shb(binary.LittleEndian)
			at := b.block(ngBlockSimplePacket, append(b.u32(4), 1, 2, 3, 4), true)
			return b, result{1, at, "simple packet block: no interface description block precedes it in this section"}
		}},
		{"simple packet over the maximum", func() (*ngFile, result) {
			b := base()
			at := b.block(ngBlockSimplePacket, append(b.u32(0xffffffff), 1, 2, 3, 4), true)
			b.put32(at+4, 0xfffffff0)
			return b, result{1, at, "simple packet block: captured length 4294967264 exceeds the maximum of 262144"}
		}},
		{"bad byte-order magic in a later section", func() (*ngFile, result) {
			b := base()
			at := b.shb(binary.LittleEndian)
			b.put32(at+8, 0x12345678)
			return b, result{1, at, "section header block: unknown byte-order magic 0x78563412"}
		}},
		{"unsupported version in a later section", func() (*ngFile, result) {
			b := base()
			at := b.shbVersion(binary.BigEndian, 2, 0)
			b.idb(LinkTypeEthernet, 0)
			b.epb(0, 1, payload(4, 0), 4, 0)
			return b, result{1, at, "section header block: unsupported pcapng version 2.0"}
		}},
		{"unsupported minor version", func() (*ngFile, result) {
			b := base()
			at := b.shbVersion(binary.LittleEndian, 1, 1)
			return b, result{1, at, "section header block: unsupported pcapng version 1.1"}
		}},
		{"section header under its minimum", func() (*ngFile, result) {
			b := base()
			at := b.shb(binary.LittleEndian)
			b.put32(at+4, 24)
			return b, result{1, at, "section header block: block length 24 is less than the minimum of 28"}
		}},
		{"option overruns its block", func() (*ngFile, result) {
			b := base()
			at := b.idb(LinkTypeRaw, 0, ngOpt{2, []byte("eth1")})
			b.buf[at+18] = 40 // length of the if_name option
			return b, result{1, at, "interface description block: option 2 of length 40 overruns the block"}
		}},
		{"decimal resolution too fine", func() (*ngFile, result) {
			b := base()
			at := b.idb(LinkTypeRaw, 0, tsresol(20))
			return b, result{1, at, "interface description block: unsupported timestamp resolution if_tsresol=0x14"}
		}},
		{"binary resolution too fine", func() (*ngFile, result) {
			b := base()
			at := b.idb(LinkTypeRaw, 0, tsresol(0xc0))
			return b, result{1, at, "interface description block: unsupported timestamp resolution if_tsresol=0xc0"}
		}},
		{"huge skipped block in a short file", func() (*ngFile, result) {
			b := base()
			at := b.block(0x12345678, nil, false)
			b.put32(at+4, 0xfffffffc)
			return b, result{1, at, "truncated block of type 0x12345678"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, want := tc.build()
			r, err := NewPcapngReader(bytes.NewReader(b.bytes()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := collectFrames(t, r, 100)
			fe := wantFormatError(t, err, int64(want.offset), want.msg)
			if fe.Msg != want.msg {
				t.Errorf("message %q, want %q", fe.Msg, want.msg)
			}
			if d := diffFrames(got, b.frames[:want.frames]); d != "" {
				t.Error(d)
			}
			if cap(r.buf) > 4096 {
				t.Errorf("buffer grew to %d bytes", cap(r.buf))
			}
			if _, again := r.Next(); again != err {
				t.Errorf("Next after the error: %v, want the same error", again)
			}
		})
	}
}

func TestPcapngReaderHeaderErrors(t *testing.T) {
	pcapData, _ := samplePcap(t)
	_, err := NewPcapngReader(bytes.NewReader(pcapData))
	wantFormatError(t, err, 0, "not a pcapng file: first block has type 0xa1b2c3d4, not a section header block")

	if _, err := NewPcapngReader(bytes.NewReader(nil)); !errors.Is(err, ErrEmptyInput) {
		t.Errorf("empty input: %v, want ErrEmptyInput", err)
	}

	b := &ngFile{}
	b.shbVersion(binary.LittleEndian, 2, 0)
	_, err = NewPcapngReader(bytes.NewReader(b.bytes()))
	wantFormatError(t, err, 0, "section header block: unsupported pcapng version 2.0")

	b = &ngFile{}
	b.shbVersion(binary.BigEndian, 1, 2) // libpcap accepts 1.2 as 1.0
	b.idb(LinkTypeEthernet, 0)
	b.epb(0, 3, payload(3, 3), 3, 3000)
	r, err := NewPcapngReader(bytes.NewReader(b.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := collectFrames(t, r, 10); err != io.EOF || diffFrames(got, b.frames) != "" {
		t.Errorf("version 1.2: %d frames, then %v", len(got), err)
	}
}

func TestPcapngTooManyInterfaces(t *testing.T) {
	b := &ngFile{}
	b.shb(binary.LittleEndian)
	var at int
	for range maxInterfaces + 1 {
		at = b.idb(LinkTypeEthernet, 0)
	}
	r, err := NewPcapngReader(bytes.NewReader(b.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	wantFormatError(t, err, int64(at), "interface description block: more than 65536 interfaces in the file")
}

func TestPcapngReaderTruncation(t *testing.T) {
	b := sampleNgFile()
	checkTruncations(t, b.bytes(), b.spans[0].end, b.spans[1:], b.frames)
}

func TestPcapngReaderOffset(t *testing.T) {
	b := sampleNgFile()
	r, err := NewPcapngReader(bytes.NewReader(b.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset() != int64(b.spans[0].end) {
		t.Errorf("Offset after the section header = %d, want %d", r.Offset(), b.spans[0].end)
	}
	for _, s := range b.spans {
		if !s.frame {
			continue
		}
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if r.Offset() != int64(s.end) {
			t.Errorf("Offset after the block at %d = %d, want %d", s.start, r.Offset(), s.end)
		}
	}
}

// manyNgPackets returns a pcapng of n equal-size packets over two
// interfaces, with a skipped block between packets.
func manyNgPackets(n int) []byte {
	b := &ngFile{}
	b.shb(binary.LittleEndian)
	b.idb(LinkTypeEthernet, 0)
	b.idb(LinkTypeRaw, 0, tsresol(0x94))
	data := payload(1514, 0)
	for i := range n {
		b.epb(uint32(i%2), uint64(i)<<20, data, 1514, 0, ngOpt{1, []byte("c")})
		if i%10 == 0 {
			b.block(ngBlockInterfaceStats, make([]byte, 12), false)
		}
	}
	return b.bytes()
}

func TestPcapngReaderAllocs(t *testing.T) {
	r, err := NewPcapngReader(bytes.NewReader(manyNgPackets(1100)))
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

func BenchmarkPcapngReader(b *testing.B) {
	data := manyNgPackets(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewPcapngReader(bytes.NewReader(data))
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

// isb returns the body of an Interface Statistics Block for interface id
// with the given options.
func (b *ngFile) isb(id uint32, ticks uint64, opts ...ngOpt) []byte {
	body := b.u32(id)
	body = append(body, b.u32(uint32(ticks>>32))...)
	body = append(body, b.u32(uint32(ticks))...)
	return append(body, b.options(opts)...)
}

// ticks64 encodes an ISB timestamp option: high then low 32 bits.
func (b *ngFile) ticks64(code uint16, ticks uint64) ngOpt {
	return ngOpt{code, append(b.u32(uint32(ticks>>32)), b.u32(uint32(ticks))...)}
}

// TestPcapngISBEndTime checks that isb_endtime is read in the interface's
// resolution and byte order, the latest one wins, and an ISB naming an
// undefined interface is an error at its offset.
func TestPcapngISBEndTime(t *testing.T) {
	const sec = 1700000000
	for _, order := range []testByteOrder{binary.LittleEndian, binary.BigEndian} {
		b := &ngFile{}
		b.shb(order)
		b.idb(LinkTypeEthernet, 0)
		b.idb(LinkTypeRaw, 0, tsresol(9))
		b.epb(0, sec*1e6, payload(60, 1), 60, sec*1e9)
		b.block(ngBlockInterfaceStats, b.isb(1, sec*1e9+5, ngOpt{1, []byte("a comment")}, b.ticks64(2, sec*1e9), b.ticks64(3, (sec+30)*1e9+7)), false)
		b.block(ngBlockInterfaceStats, b.isb(0, sec*1e6, b.ticks64(3, (sec+20)*1e6)), false) // earlier: does not win
		r, err := NewPcapngReader(bytes.NewReader(b.bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := collectFrames(t, r, 10); err != io.EOF || len(got) != 1 {
			t.Fatalf("%v: %d frames, %v", order, len(got), err)
		}
		if want := int64(sec+30)*1e9 + 7; r.EndTime() != want {
			t.Errorf("%v: EndTime %d, want %d", order, r.EndTime(), want)
		}
	}

	// dumpcap up to Wireshark 4.0: a nanosecond interface, ISB times in
	// microseconds.
	q := &ngFile{}
	q.shb(binary.LittleEndian)
	q.idb(LinkTypeEthernet, 0, tsresol(9))
	q.epb(0, sec*1e9+3, payload(60, 1), 60, sec*1e9+3)
	q.block(ngBlockInterfaceStats, q.isb(0, (sec+9)*1e6, q.ticks64(2, sec*1e6), q.ticks64(3, (sec+9)*1e6+1)), false)
	r, err := NewPcapngReader(bytes.NewReader(q.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collectFrames(t, r, 10); err != io.EOF {
		t.Fatal(err)
	}
	if want := int64(sec+9)*1e9 + 1000; r.EndTime() != want {
		t.Errorf("dumpcap's microsecond isb_endtime: EndTime %d, want %d", r.EndTime(), want)
	}

	b := &ngFile{}
	b.shb(binary.LittleEndian)
	b.idb(LinkTypeEthernet, 0)
	start := b.block(ngBlockInterfaceStats, b.isb(1, 0, b.ticks64(3, 5)), false)
	r, err = NewPcapngReader(bytes.NewReader(b.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Offset != int64(start) || !strings.Contains(err.Error(), "interface id 1 is not defined") {
		t.Errorf("ISB of an undefined interface: %v, want a format error at %d", err, start)
	}
	if r.EndTime() != 0 {
		t.Errorf("EndTime %d without a valid ISB", r.EndTime())
	}
}
