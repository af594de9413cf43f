package peers

import (
	"bytes"
	"sync"
)

// Output collects what a child process or a logger writes, and can be read
// while it writes: its copier goroutines, the test's reads and the
// writer's own goroutines may all run at once.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
