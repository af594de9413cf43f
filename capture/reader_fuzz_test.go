package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeedPeers adds the first KiB of the peer captures whose names end in
// suffix to the corpus, when the peer corpus is present.
func fuzzSeedPeers(f *testing.F, suffix string) {
	dir, err := os.Getwd()
	if err != nil {
		return
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			return
		}
		dir = filepath.Dir(dir)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "..", "shared", "testdata", "peers", "pcaps", "*", "*"+suffix))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f.Add(b[:min(len(b), 1024)])
	}
}

// fuzzRead reads src to its end and checks the invariants every reader
// keeps on any input: it ends with io.EOF or a *FormatError inside the input
// (an in-memory reader has no I/O errors); it returns at most maxFrames
// frames (each costs at least 16 input bytes), so it cannot loop forever;
// frames are at most MaxRecordLen bytes and WireLen covers them; the error is
// sticky. It returns the frames and the error for comparison.
func fuzzRead(t *testing.T, src OffsetSource, size int) ([]Frame, error) {
	maxFrames := size/16 + 1
	var frames []Frame
	for {
		f, err := src.Next()
		if err != nil {
			var fe *FormatError
			if err != io.EOF && !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is neither io.EOF nor a *FormatError", err, err)
			}
			if fe != nil && (fe.Offset < 0 || fe.Offset > int64(size)) {
				t.Fatalf("error offset %d outside the %d-byte input", fe.Offset, size)
			}
			if _, again := src.Next(); again != err {
				t.Fatalf("error not sticky: %v, then %v", err, again)
			}
			return frames, err
		}
		if len(f.Data) > MaxRecordLen || int(f.WireLen) < len(f.Data) {
			t.Fatalf("frame of %d bytes, wire length %d", len(f.Data), f.WireLen)
		}
		if off := src.Offset(); off > int64(size) {
			t.Fatalf("Offset %d beyond the %d-byte input", off, size)
		}
		f.Data = bytes.Clone(f.Data)
		frames = append(frames, f)
		if len(frames) > maxFrames {
			t.Fatalf("more than %d frames from %d bytes", maxFrames, size)
		}
	}
}

// fuzzCompare reads data with a 16-byte and a 4 KiB buffer through open
// and requires the same outcome: offsets and frames must not depend on how
// the input arrives.
func fuzzCompare(t *testing.T, data []byte, open func(input) (OffsetSource, error), bufferCap func(OffsetSource) int) {
	var outcomes [2]struct {
		frames []Frame
		err    error
	}
	for i, bufSize := range []int{16, 4096} {
		src, err := open(newInput(bytes.NewReader(data), bufSize))
		if err != nil {
			var fe *FormatError
			if !errors.Is(err, ErrEmptyInput) && !errors.As(err, &fe) {
				t.Fatalf("constructor error %v (%T) is neither ErrEmptyInput nor a *FormatError", err, err)
			}
			outcomes[i].err = err
			continue
		}
		outcomes[i].frames, outcomes[i].err = fuzzRead(t, src, len(data))
		if c := bufferCap(src); c > MaxRecordLen {
			t.Fatalf("frame buffer grew to %d bytes", c)
		}
	}
	a, b := outcomes[0], outcomes[1]
	if d := diffFrames(a.frames, b.frames); d != "" {
		t.Fatalf("small and large buffers differ: %s", d)
	}
	if (a.err == nil) != (b.err == nil) || a.err != nil && a.err.Error() != b.err.Error() {
		t.Fatalf("small and large buffers end differently: %v vs %v", a.err, b.err)
	}
}

func FuzzPcapReader(f *testing.F) {
	pcapData, _ := samplePcap(f)
	f.Add(pcapData)
	f.Add(manyPackets(f, 3))
	for _, order := range []testByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, nanos := range []bool{false, true} {
			p := newPcapFile(order, nanos, 2, 3, 64, 1)
			p.record(1, 2, payload(70, 1), 60)
			p.record(3, 4, payload(10, 2), 1000)
			f.Add(p.buf)
			f.Add(p.buf[:len(p.buf)-3])
		}
	}
	fuzzSeedPeers(f, ".pcap")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCompare(t, data,
			func(in input) (OffsetSource, error) { return newPcapReader(in) },
			func(src OffsetSource) int { return cap(src.(*PcapReader).buf) })
	})
}

func FuzzPcapngReader(f *testing.F) {
	f.Add(sampleNgFile().bytes())
	f.Add(manyNgPackets(3))
	b := &ngFile{}
	b.shb(binary.BigEndian)
	b.idb(LinkTypeRaw, 16, tsresol(0x8a), b.tsoffset(-5))
	b.spb(30, payload(30, 1), 16)
	b.pb(0, 99, payload(9, 9), 9, 0)
	f.Add(b.bytes())
	fuzzSeedPeers(f, ".pcapng")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCompare(t, data,
			func(in input) (OffsetSource, error) { return newPcapngReader(in) },
			func(src OffsetSource) int {
				r := src.(*PcapngReader)
				if len(r.ifaces) > maxInterfaces {
					t.Fatalf("%d interfaces in one section", len(r.ifaces))
				}
				return cap(r.buf)
			})
		// The sniffing path must agree with the direct one on which inputs
		// are pcapng.
		if src, err := newSource(bytes.NewReader(data), nil, 64); err == nil {
			if _, ok := src.(*PcapngReader); !ok && bytes.HasPrefix(data, magicPcapngSHB) {
				t.Fatalf("newSource returned %T for input starting with a section header", src)
			}
		} else if bytes.HasPrefix(data, magicPcapngSHB) && strings.Contains(err.Error(), ErrUnknownFormat.Error()) {
			t.Fatalf("newSource: %v", err)
		}
	})
}
