package capture

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxRecordLen is the longest captured frame the file readers accept, in
// bytes: tcpdump's MAXIMUM_SNAPLEN. A record or block that claims more is
// reported as a *FormatError instead of being allocated, so a corrupt length
// field cannot make a reader reserve gigabytes.
const MaxRecordLen = 256 << 10

// readBufferSize is the buffer under each reader: large enough that a
// reader of a fast disk or pipe makes few system calls.
const readBufferSize = 1 << 20

// ErrEmptyInput is returned by Open and NewReader for input with no bytes at
// all (an empty file, or a pipe closed before the writer wrote the header).
var ErrEmptyInput = errors.New("empty file (no capture header)")

// ErrUnknownFormat is returned (wrapped, with the first bytes of the input in
// the message) by Open and NewReader when the input is neither pcap, pcapng
// nor gzip-compressed.
var ErrUnknownFormat = errors.New("not a pcap or pcapng file")

// OffsetSource is a Source that knows how far into its input it has read.
// Both file readers implement it.
type OffsetSource interface {
	Source
	// Offset returns the number of bytes of the (decompressed) input consumed
	// so far. After Next returns a frame it is the offset of the next record.
	Offset() int64
}

// Size returns the total number of bytes that src's Offset reaches at the end
// of its input, or -1 when that is unknown: for pipes, for gzip-compressed
// input (Offset counts decompressed bytes), and for sources that do not say.
// Together with Offset it drives progress bars.
func Size(src Source) int64 {
	if s, ok := src.(interface{ Size() int64 }); ok {
		return s.Size()
	}
	return -1
}

// Magic numbers that identify the input formats, as they appear in the file.
var (
	magicGzip        = []byte{0x1f, 0x8b}
	magicPcapngSHB   = []byte{0x0a, 0x0d, 0x0d, 0x0a}
	magicPcapMicroLE = []byte{0xd4, 0xc3, 0xb2, 0xa1}
	magicPcapMicroBE = []byte{0xa1, 0xb2, 0xc3, 0xd4}
	magicPcapNanoLE  = []byte{0x4d, 0x3c, 0xb2, 0xa1}
	magicPcapNanoBE  = []byte{0xa1, 0xb2, 0x3c, 0x4d}
	magicsPcap       = [][]byte{magicPcapMicroLE, magicPcapMicroBE, magicPcapNanoLE, magicPcapNanoBE}
	magicsCapture    = [][]byte{magicPcapngSHB, magicPcapMicroLE, magicPcapMicroBE, magicPcapNanoLE, magicPcapNanoBE}
)

// Open opens a pcap or pcapng capture file, possibly gzip-compressed, and
// returns a Source of its frames. The path "-" reads standard input (which
// Close then leaves open).
//
// The format is recognised from the first bytes, not from the file name. For
// gzip-compressed input the readers work on the decompressed stream:
// FormatError offsets and Offset count decompressed bytes, and Size is -1.
//
// Errors name the file; a *FormatError stays reachable with errors.As. The
// returned Source also implements OffsetSource.
func Open(path string) (Source, error) {
	name := path
	var f *os.File
	var closer io.Closer
	if path == "-" {
		name = "standard input"
		f = os.Stdin
	} else {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err // *fs.PathError already names the file
		}
		closer = f
	}
	src, err := newSource(f, closer, readBufferSize)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return src, nil
}

// NewReader returns a Source reading a pcap or pcapng capture, possibly
// gzip-compressed, from r; the format is recognised as by Open. Reads go
// through a 1 MiB buffer; offsets count the bytes the reader consumed from
// r (decompressed bytes for gzip input), whatever r's own position is.
// Close does not close r. The returned Source also implements OffsetSource.
func NewReader(r io.Reader) (Source, error) {
	return newSource(r, nil, readBufferSize)
}

// newSource sniffs the format of r and returns the matching reader, reading
// through buffers of bufSize bytes. closer, if not nil, is closed by the
// reader's Close.
func newSource(r io.Reader, closer io.Closer, bufSize int) (Source, error) {
	in := newInput(r, bufSize)
	in.size = inputSize(r)
	in.closer = closer
	magic, err := in.b.peek(len(magicPcapngSHB))
	if len(magic) >= len(magicGzip) && bytes.Equal(magic[:len(magicGzip)], magicGzip) {
		zr, err := gzip.NewReader(in.b)
		if errors.Is(err, gzip.ErrHeader) {
			return nil, &FormatError{Offset: 0, Msg: "corrupt gzip header", Err: err}
		} else if err != nil {
			return nil, in.readError(0, "gzip header", err)
		}
		// Offsets are of the decompressed stream, so the compressed file
		// size says nothing about where the end is.
		in.b = newInbuf(zr, bufSize)
		in.size = -1
		magic, err = in.b.peek(len(magicPcapngSHB))
		if err != nil && err != io.EOF {
			return nil, in.readError(0, "file header", err)
		}
	} else if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case len(magic) == 0:
		return nil, ErrEmptyInput
	case bytes.Equal(magic, magicPcapngSHB):
		return newPcapngReader(in)
	case len(magic) == len(magicPcapngSHB):
		for _, m := range magicsPcap {
			if bytes.Equal(magic, m) {
				return newPcapReader(in)
			}
		}
	default: // fewer than 4 bytes: a cut-off header, or something else
		for _, m := range magicsCapture {
			if bytes.HasPrefix(m, magic) {
				return nil, &FormatError{Offset: 0, Msg: "truncated file header", Err: io.ErrUnexpectedEOF}
			}
		}
	}
	return nil, fmt.Errorf("%w (starts with 0x%x)", ErrUnknownFormat, magic)
}

// inputSize returns how many bytes r will deliver, when r says so: the rest
// of a regular file from its current position, or the unread length of an
// in-memory reader. It returns -1 otherwise (pipes, sockets, terminals).
func inputSize(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Len() int }: // bytes.Reader, strings.Reader, bytes.Buffer
		return int64(r.Len())
	case *os.File:
		fi, err := r.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		// Standard input redirected from a file may be partly consumed.
		pos, err := r.Seek(0, io.SeekCurrent)
		if err != nil || pos > fi.Size() {
			return -1
		}
		return fi.Size() - pos
	}
	return -1
}

// input is the byte stream under a reader: a buffered reader over the
// (decompressed) capture and the count of bytes consumed from it. Readers
// consume it only through readFull and discard so that off stays exact.
type input struct {
	b      *inbuf
	off    int64     // bytes consumed from b
	size   int64     // bytes b will deliver in total, -1 if unknown
	closer io.Closer // what Close closes; nil when the caller owns the stream
}

func newInput(r io.Reader, bufSize int) input {
	return input{b: newInbuf(r, bufSize), size: -1}
}

// readFull reads exactly len(p) bytes. Like io.ReadFull it returns io.EOF if
// no byte was read and io.ErrUnexpectedEOF if some but not all were.
func (in *input) readFull(p []byte) error {
	n, err := io.ReadFull(in.b, p)
	in.off += int64(n)
	return err
}

// take returns the next n bytes and consumes them. When the buffer can
// hold n bytes the slice points into it (no copy), valid until the next
// read; otherwise they are copied into *spill, grown as needed. Running out
// of input is io.EOF if no byte was left and io.ErrUnexpectedEOF if some
// but not all were, as readFull.
func (in *input) take(n int, spill *[]byte) ([]byte, error) {
	// n >= 0: callers pass lengths they checked.
	if b := in.b; b.w-b.r >= n {
		r := b.r
		b.r += n
		in.off += int64(n)
		return b.buf[r:b.r:b.r], nil
	}
	return in.takeSlow(n, spill)
}

// takeSlow is take when the n bytes are not all buffered.
func (in *input) takeSlow(n int, spill *[]byte) ([]byte, error) {
	if n > len(in.b.buf) {
		*spill = grow(*spill, n)
		if err := in.readFull(*spill); err != nil {
			return nil, err
		}
		return *spill, nil
	}
	b, err := in.b.peek(n)
	if len(b) == n {
		in.b.r += n
		in.off += int64(n)
		return b[:n:n], nil
	}
	// Short: consume what there was, so offsets and errors match readFull.
	d, _ := in.b.discard(len(b))
	in.off += int64(d)
	switch {
	case err == io.EOF && len(b) > 0:
		err = io.ErrUnexpectedEOF
	case err == nil:
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// discard skips n bytes. Running out of input is io.ErrUnexpectedEOF: it is
// only called in the middle of a record or block.
func (in *input) discard(n int64) error {
	for n > 0 {
		chunk := min(n, 1<<30) // Discard takes an int, which may be 32 bits
		d, err := in.b.discard(int(chunk))
		in.off += int64(d)
		n -= int64(d)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readError turns a failed read of the record or block starting at start
// into the error Next returns. Running out of input is truncation and a
// damaged gzip stream is corrupt input, both *FormatError; any other error
// (an I/O error of the file or pipe) is passed on with the offset added.
func (in *input) readError(start int64, what string, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return &FormatError{Offset: start, Msg: "truncated " + what, Err: io.ErrUnexpectedEOF}
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.As(err, &corrupt):
		return &FormatError{Offset: start, Msg: what + ": corrupt gzip stream", Err: err}
	}
	return fmt.Errorf("reading %s at byte offset %d: %w", what, start, err)
}

// close closes what the input owns and makes later reads fail.
func (in *input) close() error {
	var err error
	if in.closer != nil {
		err = in.closer.Close()
		in.closer = nil
	}
	return err
}

// errSourceClosed is what Next returns after Close.
var errSourceClosed = fmt.Errorf("capture source: %w", fs.ErrClosed)

// grow returns buf resized to n bytes, reallocating only when n exceeds its
// capacity. n is at most MaxRecordLen, checked by the callers, so the buffer
// a reader keeps is bounded whatever the input claims.
func grow(buf []byte, n int) []byte {
	if n <= cap(buf) {
		return buf[:n]
	}
	c := max(n, min(2*cap(buf), MaxRecordLen), 2048)
	return make([]byte, n, c)
}
