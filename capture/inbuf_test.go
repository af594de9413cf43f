package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestInbufReadsLikeTheSource checks peek, discard, Read and ReadByte
// against the bytes of the source, whatever sizes the source's reads come
// in and whether its last read carries the data with io.EOF.
func TestInbufReadsLikeTheSource(t *testing.T) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sources := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(data) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
	}
	for name, src := range sources {
		for _, size := range []int{16, 17, 64, 4096} {
			b := newInbuf(src(), size)
			var got []byte
			pos := 0
			for step := 0; pos < len(data); step++ {
				switch step % 4 {
				case 0:
					p, err := b.peek(min(size, 13))
					if n := min(13, size, len(data)-pos); len(p) < n || !bytes.Equal(p[:n], data[pos:pos+n]) {
						t.Fatalf("%s, buffer %d: peek at %d = %x, %v", name, size, pos, p, err)
					}
				case 1:
					n, err := b.discard(min(5, len(data)-pos))
					got = append(got, data[pos:pos+n]...)
					pos += n
					if err != nil {
						t.Fatalf("%s, buffer %d: discard at %d: %v", name, size, pos, err)
					}
				case 2:
					c, err := b.ReadByte()
					if err != nil || c != data[pos] {
						t.Fatalf("%s, buffer %d: ReadByte at %d = %x, %v", name, size, pos, c, err)
					}
					got = append(got, c)
					pos++
				case 3:
					p := make([]byte, min(40, len(data)-pos))
					n, err := io.ReadFull(b, p)
					if err != nil || !bytes.Equal(p[:n], data[pos:pos+n]) {
						t.Fatalf("%s, buffer %d: ReadFull at %d: %v", name, size, pos, err)
					}
					got = append(got, p[:n]...)
					pos += n
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s, buffer %d: read bytes differ from the source", name, size)
			}
			if _, err := b.ReadByte(); err != io.EOF {
				t.Errorf("%s, buffer %d: after the end ReadByte: %v, want EOF", name, size, err)
			}
			if p, err := b.peek(1); len(p) != 0 || err != io.EOF {
				t.Errorf("%s, buffer %d: after the end peek: %d bytes, %v", name, size, len(p), err)
			}
			if n, err := b.discard(1); n != 0 || err != io.EOF {
				t.Errorf("%s, buffer %d: after the end discard: %d, %v", name, size, n, err)
			}
		}
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

type errorAfter struct {
	r   io.Reader
	err error
}

func (e *errorAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		err = e.err
	}
	return n, err
}

// TestInbufErrors: a source that never returns bytes or an error ends in
// io.ErrNoProgress instead of a spin, and a source's error comes after the
// bytes it delivered, through take as through the readers.
func TestInbufErrors(t *testing.T) {
	b := newInbuf(emptyReader{}, 64)
	if _, err := b.peek(4); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("peek of a reader returning nothing: %v, want io.ErrNoProgress", err)
	}
	boom := errors.New("disk on fire")
	in := newInput(&errorAfter{bytes.NewReader([]byte("abcdef")), boom}, 64)
	var spill []byte
	if p, err := in.take(4, &spill); err != nil || string(p) != "abcd" {
		t.Fatalf("take 4: %q, %v", p, err)
	}
	if _, err := in.take(4, &spill); err != boom {
		t.Errorf("take past the source's error: %v, want %v", err, boom)
	}
	if in.off != 6 {
		t.Errorf("consumed %d bytes, want the 6 delivered", in.off)
	}
}
