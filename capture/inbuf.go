package capture

import "io"

// inbuf is the read buffer under an input. It is bufio.Reader cut down to
// what the readers need, so that the common case of take (the bytes are
// buffered) is a bounds check and a slice: the bufio Peek and Discard calls
// it replaces were a quarter of the reading goroutine's time.
type inbuf struct {
	src  io.Reader
	buf  []byte
	r, w int   // buf[r:w] is buffered
	err  error // the error that ended src; returned once the buffer is drained
}

func newInbuf(src io.Reader, size int) *inbuf {
	return &inbuf{src: src, buf: make([]byte, size)}
}

// maxEmptyReads bounds reads that return neither bytes nor an error, as
// bufio does, so a broken reader cannot spin forever.
const maxEmptyReads = 100

// fill moves the buffered bytes to the front and reads once more into the
// room after them.
func (b *inbuf) fill() {
	if b.r > 0 {
		copy(b.buf, b.buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
	for i := 0; i < maxEmptyReads; i++ {
		n, err := b.src.Read(b.buf[b.w:])
		if n < 0 || n > len(b.buf)-b.w {
			b.err = io.ErrNoProgress // a reader returning a bad count
			return
		}
		b.w += n
		if err != nil {
			b.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	b.err = io.ErrNoProgress
}

// peek returns the next n bytes (n <= len(buf)) without consuming them, or
// fewer with the error that cut them short.
func (b *inbuf) peek(n int) ([]byte, error) {
	for b.w-b.r < n && b.err == nil {
		b.fill()
	}
	if b.w-b.r < n {
		return b.buf[b.r:b.w], b.err
	}
	return b.buf[b.r : b.r+n], nil
}

// discard skips n bytes and returns how many it skipped, with the error
// that stopped it short.
func (b *inbuf) discard(n int) (int, error) {
	done := 0
	for {
		skip := min(n-done, b.w-b.r)
		b.r += skip
		done += skip
		if done == n {
			return done, nil
		}
		if b.err != nil {
			return done, b.err
		}
		b.fill()
	}
}

// Read implements io.Reader, for io.ReadFull and the gzip decompressor.
func (b *inbuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		b.fill()
		if b.r == b.w {
			return 0, b.err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// ReadByte implements io.ByteReader, which the gzip decompressor reads
// through without a buffer of its own.
func (b *inbuf) ReadByte() (byte, error) {
	for b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		b.fill()
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}
