package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/peers"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// collectFrames reads src to its end and returns copies of its frames and
// the error that ended it (io.EOF for a clean end). It gives up after
// limit frames so that a reader that never ends fails the test instead of
// hanging it.
func collectFrames(t testing.TB, src Source, limit int) ([]Frame, error) {
	t.Helper()
	var frames []Frame
	for range limit + 1 {
		f, err := src.Next()
		if err != nil {
			return frames, err
		}
		f.Data = bytes.Clone(f.Data)
		frames = append(frames, f)
	}
	t.Fatalf("source still returning frames after %d", limit)
	return nil, nil
}

// diffFrames describes the first difference between two frame lists, or
// returns "" if they are equal.
func diffFrames(got, want []Frame) string {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		switch {
		case !bytes.Equal(g.Data, w.Data):
			return fmt.Sprintf("frame %d: data %x, want %x", i, g.Data, w.Data)
		case g.Timestamp != w.Timestamp:
			return fmt.Sprintf("frame %d: timestamp %d, want %d", i, g.Timestamp, w.Timestamp)
		case g.WireLen != w.WireLen:
			return fmt.Sprintf("frame %d: wire length %d, want %d", i, g.WireLen, w.WireLen)
		case g.LinkType != w.LinkType:
			return fmt.Sprintf("frame %d: link type %d, want %d", i, g.LinkType, w.LinkType)
		case g.Interface != w.Interface:
			return fmt.Sprintf("frame %d: interface %d, want %d", i, g.Interface, w.Interface)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d frames, want %d", len(got), len(want))
	}
	return ""
}

// wantFormatError fails the test unless err is a *FormatError at offset
// whose message contains msg.
func wantFormatError(t testing.TB, err error, offset int64, msg string) *FormatError {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	if fe.Offset != offset || !strings.Contains(fe.Msg, msg) {
		t.Fatalf("error %q, want offset %d and a message containing %q", err, offset, msg)
	}
	return fe
}

// samplePcap returns a little-endian microsecond pcap written by pcapgo and
// the frames it holds.
func samplePcap(t testing.TB) ([]byte, []Frame) {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	var want []Frame
	for i := range 5 {
		data := bytes.Repeat([]byte{byte(i + 1)}, 20+i*7)
		ts := time.Unix(1700000000+int64(i), int64(i)*1001000).UTC()
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data) + i}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		want = append(want, Frame{Data: data, Timestamp: ts.UnixNano(), WireLen: uint32(len(data) + i), LinkType: LinkTypeEthernet})
	}
	return buf.Bytes(), want
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenFormats(t *testing.T) {
	pcapData, pcapFrames := samplePcap(t)
	ng := sampleNgFile()
	ngData, ngFrames := ng.bytes(), ng.frames
	for _, tc := range []struct {
		name     string
		data     []byte
		want     []Frame
		wantSize int64 // -1: unknown
	}{
		{"pcap", pcapData, pcapFrames, int64(len(pcapData))},
		{"pcapng", ngData, ngFrames, int64(len(ngData))},
		{"pcap.gz", gzipBytes(t, pcapData), pcapFrames, -1},
		{"pcapng.gz", gzipBytes(t, ngData), ngFrames, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Open(writeTemp(t, "capture."+tc.name, tc.data))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if got := Size(src); got != tc.wantSize {
				t.Errorf("Size = %d, want %d", got, tc.wantSize)
			}
			got, err := collectFrames(t, src, 1000)
			if err != io.EOF {
				t.Fatalf("ended with %v, want io.EOF", err)
			}
			if d := diffFrames(got, tc.want); d != "" {
				t.Fatal(d)
			}
			// Offset counts decompressed bytes, so it reaches the length of
			// the plain capture even for gzip input.
			plainLen := int64(len(pcapData))
			if strings.HasPrefix(tc.name, "pcapng") {
				plainLen = int64(len(ngData))
			}
			if off := src.(OffsetSource).Offset(); off != plainLen {
				t.Errorf("Offset at EOF = %d, want %d", off, plainLen)
			}
			if err := src.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if _, err := src.Next(); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Next after Close: %v, want fs.ErrClosed", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	pcapData, _ := samplePcap(t)
	for _, tc := range []struct {
		name    string
		data    []byte
		wantMsg string
		wantIs  error
		wantFE  bool // a *FormatError must be reachable
	}{
		{"empty", nil, "empty file (no capture header)", ErrEmptyInput, false},
		{"elf", []byte("\x7fELF\x02\x01\x01"), "not a pcap or pcapng file (starts with 0x7f454c46)", ErrUnknownFormat, false},
		{"text", []byte("hi"), "not a pcap or pcapng file (starts with 0x6869)", ErrUnknownFormat, false},
		{"short magic", pcapData[:3], "truncated file header", io.ErrUnexpectedEOF, true},
		{"short header", pcapData[:10], "truncated file header", io.ErrUnexpectedEOF, true},
		{"short pcapng", sampleNgFile().bytes()[:20], "truncated section header block", io.ErrUnexpectedEOF, true},
		{"gzip empty payload", gzipBytes(t, nil), "empty file (no capture header)", ErrEmptyInput, false},
		{"gzip of text", gzipBytes(t, []byte("hello")), "not a pcap or pcapng file (starts with 0x68656c6c)", ErrUnknownFormat, false},
		{"gzip truncated header", gzipBytes(t, pcapData)[:5], "truncated gzip header", io.ErrUnexpectedEOF, true},
		{"gzip bad header", []byte{0x1f, 0x8b, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "corrupt gzip header", gzip.ErrHeader, true},
		{"pcap bad version", func() []byte {
			b := bytes.Clone(pcapData)
			b[4] = 9
			return b
		}(), "unsupported pcap version 9.4", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "x.pcap", tc.data)
			src, err := Open(path)
			if err == nil {
				src.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q, want %q prefixed with the path", err, tc.wantMsg)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %v", err, tc.wantIs)
			}
			var fe *FormatError
			if errors.As(err, &fe) != tc.wantFE {
				t.Errorf("errors.As(%q, *FormatError) = %v, want %v", err, !tc.wantFE, tc.wantFE)
			}
		})
	}

	path := filepath.Join(t.TempDir(), "missing.pcap")
	if _, err := Open(path); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a missing file: %v, want fs.ErrNotExist naming the path", err)
	}
}

// TestNewReaderGzipDamage checks that damage inside the compressed stream
// is reported as a *FormatError, not passed on as a bare flate error.
func TestNewReaderGzipDamage(t *testing.T) {
	pcapData, want := samplePcap(t)
	gz := gzipBytes(t, pcapData)

	t.Run("truncated", func(t *testing.T) {
		src, err := NewReader(bytes.NewReader(gz[:len(gz)-12]))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectFrames(t, src, 100)
		// The error is at the start of the record the stream ends in.
		recordStart := int64(pcapFileHeaderLen)
		for _, f := range got {
			recordStart += pcapRecordHeaderLen + int64(len(f.Data))
		}
		wantFormatError(t, err, recordStart, "truncated packet record")
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("error %v, want io.ErrUnexpectedEOF", err)
		}
		if d := diffFrames(got, want[:len(got)]); d != "" {
			t.Error(d)
		}
	})
	t.Run("checksum", func(t *testing.T) {
		bad := bytes.Clone(gz)
		bad[len(bad)-8] ^= 0xff // CRC-32 of the trailer
		src, err := NewReader(bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectFrames(t, src, 100)
		var fe *FormatError
		if !errors.As(err, &fe) || !errors.Is(err, gzip.ErrChecksum) || !strings.Contains(fe.Msg, "corrupt gzip stream") {
			t.Fatalf("error %v, want a *FormatError wrapping gzip.ErrChecksum", err)
		}
		// The checksum is only checked at the end, so every frame was read.
		if d := diffFrames(got, want); d != "" {
			t.Error(d)
		}
	})
}

func TestNewReaderSize(t *testing.T) {
	pcapData, _ := samplePcap(t)
	src, err := NewReader(bytes.NewReader(pcapData))
	if err != nil {
		t.Fatal(err)
	}
	if got := Size(src); got != int64(len(pcapData)) {
		t.Errorf("Size of a bytes.Reader source = %d, want %d", got, len(pcapData))
	}
	src, err = NewReader(io.MultiReader(bytes.NewReader(pcapData)))
	if err != nil {
		t.Fatal(err)
	}
	if got := Size(src); got != -1 {
		t.Errorf("Size of an opaque reader = %d, want -1", got)
	}
	if got := Size(nil); got != -1 {
		t.Errorf("Size(nil) = %d, want -1", got)
	}
}

// replaceStdin points os.Stdin at f for the rest of the test.
func replaceStdin(t *testing.T, f *os.File) {
	old := os.Stdin
	os.Stdin = f
	t.Cleanup(func() { os.Stdin = old })
}

func TestOpenStdinPipe(t *testing.T) {
	pcapData, want := samplePcap(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	replaceStdin(t, pr)
	// Write in small pieces so the reader sees short reads, as from tcpdump.
	go func() {
		defer pw.Close()
		for b := pcapData; len(b) > 0; {
			n := min(len(b), 7)
			if _, err := pw.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	src, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	if got := Size(src); got != -1 {
		t.Errorf("Size of a pipe = %d, want -1", got)
	}
	got, err := collectFrames(t, src, 100)
	if err != io.EOF {
		t.Fatalf("ended with %v, want io.EOF", err)
	}
	if d := diffFrames(got, want); d != "" {
		t.Fatal(d)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	// Close must leave standard input open: other code may still use it.
	if _, err := pr.Stat(); err != nil {
		t.Errorf("standard input closed by Close: %v", err)
	}
}

func TestOpenStdinErrorsNameStdin(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	replaceStdin(t, pr)
	pw.Close()
	_, err = Open("-")
	if err == nil || err.Error() != "standard input: empty file (no capture header)" {
		t.Fatalf("Open(\"-\") of an empty pipe: %v", err)
	}
}

// TestOpenStdinRedirectedFile covers `tcptap read - < file.pcap`: the size is
// known, and counts from where standard input is positioned.
func TestOpenStdinRedirectedFile(t *testing.T) {
	pcapData, want := samplePcap(t)
	prefixed := append([]byte("garbage!"), pcapData...)
	f, err := os.Open(writeTemp(t, "stdin.pcap", prefixed))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(8, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	replaceStdin(t, f)
	src, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	if got := Size(src); got != int64(len(pcapData)) {
		t.Errorf("Size = %d, want %d", got, len(pcapData))
	}
	got, err := collectFrames(t, src, 100)
	if err != io.EOF {
		t.Fatalf("ended with %v, want io.EOF", err)
	}
	if d := diffFrames(got, want); d != "" {
		t.Fatal(d)
	}
}

// peerCorpusDir returns the shared peer capture corpus (see internal/peers).
func peerCorpusDir(t *testing.T) string { return peers.Dir(t) }

// readWithPcapgo reads a capture with gopacket's pcapgo readers and returns
// its frames and the error that ended the read (io.EOF for a clean end).
// pcapgo reports interfaces per section, so Interface is left 0.
func readWithPcapgo(t *testing.T, data []byte) ([]Frame, error) {
	t.Helper()
	var next func() ([]byte, gopacket.CaptureInfo, LinkType, error)
	if bytes.HasPrefix(data, magicPcapngSHB) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, err
		}
		next = func() ([]byte, gopacket.CaptureInfo, LinkType, error) {
			d, ci, err := r.ReadPacketData()
			if err != nil {
				return nil, ci, 0, err
			}
			return d, ci, LinkType(ci.AncillaryData[0].(layers.LinkType)), nil
		}
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		// pcapgo keeps all 32 bits of the header's link-type field; the
		// upper ones are FCS information that tcptap ignores.
		lt := LinkType(r.LinkType() & 0xffff)
		next = func() ([]byte, gopacket.CaptureInfo, LinkType, error) {
			d, ci, err := r.ReadPacketData()
			return d, ci, lt, err
		}
	}
	var frames []Frame
	for {
		d, ci, lt, err := next()
		if err != nil {
			return frames, err
		}
		f := Frame{Data: d, WireLen: uint32(max(ci.Length, ci.CaptureLength)), LinkType: lt}
		// pcapgo gives Simple Packet Blocks the zero time; tcptap carries
		// the previous frame's timestamp forward. Mark it for the caller.
		f.Timestamp = -1
		if !ci.Timestamp.IsZero() {
			f.Timestamp = ci.Timestamp.UnixNano()
		}
		frames = append(frames, f)
	}
}

// TestPeerCorpusMatchesPcapgo reads every capture of the peer corpus with
// Open and with pcapgo and requires the same frames.
func TestPeerCorpusMatchesPcapgo(t *testing.T) {
	peers := peerCorpusDir(t)
	var manifest struct {
		Files []struct {
			File    string `json:"file"`
			Packets *int   `json:"packets"`
		} `json:"files"`
	}
	if b, err := os.ReadFile(filepath.Join(peers, "manifest.json")); err == nil {
		if err := json.Unmarshal(b, &manifest); err != nil {
			t.Fatalf("manifest.json: %v", err)
		}
	}
	packets := map[string]*int{}
	for _, f := range manifest.Files {
		packets[filepath.FromSlash(f.File)] = f.Packets
	}

	var paths []string
	err := filepath.WalkDir(filepath.Join(peers, "pcaps"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no captures in the peer corpus")
	}
	for _, path := range paths {
		rel, _ := filepath.Rel(peers, path)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := readWithPcapgo(t, data)
			src, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v (pcapgo read %d frames, then %v)", err, len(want), wantErr)
			}
			defer src.Close()
			got, err := collectFrames(t, src, 1<<20)
			// Simple Packet Blocks have no timestamp: take ours as given.
			for i := range min(len(got), len(want)) {
				if want[i].Timestamp == -1 {
					want[i].Timestamp = got[i].Timestamp
				}
			}
			// pcapgo numbers interfaces per section; ours are per file and
			// are checked by the pcapng tests instead.
			for i := range got {
				got[i].Interface = 0
			}
			if wantErr == io.EOF {
				if err != io.EOF {
					t.Fatalf("ended with %v after %d frames; pcapgo read all %d", err, len(got), len(want))
				}
				if d := diffFrames(got, want); d != "" {
					t.Fatal(d)
				}
				if n := packets[rel]; n != nil && *n != len(got) {
					t.Errorf("%d frames, manifest says %d", len(got), *n)
				}
				if off := src.(OffsetSource).Offset(); off != int64(len(data)) {
					t.Errorf("Offset at EOF = %d, want the file size %d", off, len(data))
				}
				return
			}
			// pcapgo failed (test901: a second section of version 2.0).
			// It does not say where, so require that we fail with a
			// *FormatError no later than it, in frames, after the same
			// frames.
			t.Logf("pcapgo: %d frames, then %v", len(want), wantErr)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("ended with %v after %d frames; pcapgo failed with %v after %d, want a *FormatError", err, len(got), wantErr, len(want))
			}
			t.Logf("tcptap: %d frames, then %v", len(got), err)
			if len(got) > len(want) {
				t.Fatalf("%d frames, more than pcapgo's %d before its error", len(got), len(want))
			}
			if d := diffFrames(got, want[:len(got)]); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestPeerBadSecondSection pins the behaviour on the gopacket capture whose
// second section header has version 2.0: the first section's packet, then a
// FormatError at the second section header (offset 480).
func TestPeerBadSecondSection(t *testing.T) {
	path := filepath.Join(peerCorpusDir(t), "pcaps", "gopacket", "pcapgo__tests__le__test901.pcapng")
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := collectFrames(t, src, 100)
	wantFormatError(t, err, 480, "section header block: unsupported pcapng version 2.0")
	if len(got) != 1 || len(got[0].Data) != 314 {
		t.Fatalf("got %d frames before the error, want the first section's one 314-byte frame", len(got))
	}
	if _, again := src.Next(); again != err {
		t.Errorf("Next after the error returned %v, want the same error", again)
	}
}
