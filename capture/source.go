package capture

import (
	"fmt"
)

// Source yields captured frames in capture order.
type Source interface {
	// Next returns the next frame. Frame.Data is valid only until the next
	// call. At the clean end of input it returns io.EOF; on corrupt or
	// truncated input it returns a *FormatError, after which the source is
	// finished.
	Next() (Frame, error)
	// Close releases the underlying file or stream.
	Close() error
}

// EndTimeSource is a Source whose format can record when capturing ended,
// apart from its frames' times: pcapng's Interface Statistics Blocks carry
// isb_endtime, which dumpcap and tcpdump write when the capture stops. It is
// evidence that nothing was captured between the last frame and that time.
type EndTimeSource interface {
	Source
	// EndTime returns the latest end time the input has recorded so
	// far, in nanoseconds since the epoch; 0 when it recorded none.
	EndTime() int64
}

// FormatError reports corrupt or truncated capture data at a byte offset of
// the (decompressed) input.
type FormatError struct {
	Offset int64  // byte offset where the bad block or record starts
	Msg    string // what is wrong, e.g. "truncated packet record"
	Err    error  // underlying cause, if any (io.ErrUnexpectedEOF for truncation)
}

func (e *FormatError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("at byte offset %d: %s: %v", e.Offset, e.Msg, e.Err)
	}
	return fmt.Sprintf("at byte offset %d: %s", e.Offset, e.Msg)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Add adds o's counts to s: the sockets of one interface summed.
func (s *LiveStats) Add(o *LiveStats) {
	s.Packets += o.Packets
	s.Drops += o.Drops
	s.QueueFreezes += o.QueueFreezes
	s.LinkDowns += o.LinkDowns
}
