package output

import (
	"io"
	"os"
)

// stdout writes JSON Lines to standard output (containers, journald), a
// batch per write.
type stdout struct{ w io.Writer }

func newStdout() *stdout { return &stdout{w: os.Stdout} }

func (s *stdout) open() error  { return nil }
func (s *stdout) close() error { return nil }

func (s *stdout) send(b *batch) (int, int, error) {
	if _, err := s.w.Write(b.data); err != nil {
		return 0, 0, err
	}
	return b.len(), 0, nil
}
