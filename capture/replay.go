package capture

import (
	"io"
	"time"
)

// Replay is a Source that yields the frames of another source and, once
// that one ends, behaves like a quiet live link: Next waits Pause and
// returns ErrTimeout. It runs the live pipeline (the daemon) over a
// capture file, which is how the daemon is tested without root.
type Replay struct {
	Src   Source
	Pause time.Duration // between timeouts once Src is exhausted; default 5 ms
	done  bool
}

// Next returns Src's next frame, or ErrTimeout after Src's end.
func (r *Replay) Next() (Frame, error) {
	if !r.done {
		f, err := r.Src.Next()
		if err != io.EOF {
			return f, err
		}
		r.done = true
	}
	p := r.Pause
	if p <= 0 {
		p = 5 * time.Millisecond
	}
	time.Sleep(p)
	return Frame{}, ErrTimeout
}

// Close closes Src.
func (r *Replay) Close() error { return r.Src.Close() }
