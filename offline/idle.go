package offline

import (
	"io"
	"time"
)

// idleReader reads a pipe through a goroutine so that, while no input
// arrives, the reading goroutine wakes every interval and runs onIdle:
// `tcpdump -U -w - | tcptap read --format json -` then writes each record
// when its connection finishes rather than at the end of the input. The
// cost on a busy pipe is a channel hand-off per read (up to 64 KiB, a few
// hundred packets), none per packet.
type idleReader struct {
	chunks   chan chunk
	free     chan []byte
	cur      []byte // unread part of the chunk being read
	curBuf   []byte // the chunk's whole buffer, handed back when read
	err      error
	interval time.Duration
	timer    *time.Timer
	onIdle   func()
	lastData time.Time // when the last chunk arrived
}

type chunk struct {
	buf []byte
	n   int
	err error
}

const idleChunkSize = 64 << 10

func newIdleReader(r io.Reader, interval time.Duration, onIdle func()) *idleReader {
	ir := &idleReader{chunks: make(chan chunk, 4), free: make(chan []byte, 5), interval: interval, onIdle: onIdle}
	for range 5 {
		ir.free <- make([]byte, idleChunkSize)
	}
	ir.timer = time.NewTimer(interval)
	ir.timer.Stop()
	go func() {
		for {
			buf := <-ir.free
			n, err := r.Read(buf)
			ir.chunks <- chunk{buf, n, err}
			if err != nil {
				return
			}
		}
	}()
	return ir
}

func (ir *idleReader) Read(p []byte) (int, error) {
	for len(ir.cur) == 0 {
		if ir.curBuf != nil {
			ir.free <- ir.curBuf
			ir.curBuf = nil
		}
		if ir.err != nil {
			return 0, ir.err
		}
		var c chunk
		select {
		case c = <-ir.chunks:
		default:
			// Nothing waiting: wait, waking every interval.
			ir.timer.Reset(ir.interval)
		wait:
			for {
				select {
				case c = <-ir.chunks:
					break wait
				case <-ir.timer.C:
					ir.onIdle()
					ir.timer.Reset(ir.interval)
				}
			}
			ir.timer.Stop()
		}
		ir.cur, ir.curBuf, ir.err = c.buf[:c.n], c.buf, c.err
		if c.n > 0 {
			ir.lastData = time.Now()
		}
	}
	n := copy(p, ir.cur)
	ir.cur = ir.cur[n:]
	return n, nil
}
