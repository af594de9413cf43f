package netlab

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CaptureOptions configures [Lab.StartCapture]. The zero value captures the
// TCP packets crossing the bridge port that faces the client.
type CaptureOptions struct {
	// Port is the bridge port to capture on: [ClientPort] (default) or
	// [ServerPort].
	Port string
	// Filter is a pcap-filter(7) expression; empty means "tcp". AllPackets
	// ignores it and captures everything (ARP, ICMPv6, ...).
	Filter     string
	AllPackets bool
}

// CaptureStats are tcpdump's closing counters.
type CaptureStats struct {
	Captured, ReceivedByFilter, DroppedByKernel int
}

// Capture is a running tcpdump in the tap namespace, writing a pcap file
// with full packets (-s 0), packet-buffered (-U) and in immediate mode.
type Capture struct {
	// Path is the pcap file. It grows packet by packet while the capture
	// runs, so [ReadSegments] may read it before Stop.
	Path string

	t     testing.TB
	cmd   *exec.Cmd
	done  chan struct{} // closed when tcpdump has exited
	mu    sync.Mutex
	lines []string // tcpdump's stderr
	once  sync.Once
	stats CaptureStats
	err   error
}

// StartCapture starts tcpdump on a bridge port and returns once tcpdump
// reports it is listening (bounded: 10 s, else the test fails). A relative
// file name is placed in t.TempDir(), or in $NETLAB_PCAP_DIR (prefixed with
// the test name) when that is set, to keep the files. The capture is stopped
// by t.Cleanup if the test does not call [Capture.Stop].
func (l *Lab) StartCapture(t testing.TB, file string, opts CaptureOptions) *Capture {
	t.Helper()
	path := file
	if !filepath.IsAbs(path) {
		if dir := os.Getenv("NETLAB_PCAP_DIR"); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatalf("netlab: %v", err)
			}
			path = filepath.Join(dir, sanitize(t.Name())+"-"+file)
		} else {
			path = filepath.Join(t.TempDir(), file)
		}
	}
	port := opts.Port
	if port == "" {
		port = ClientPort
	}
	args := []string{"netns", "exec", l.Tap.Name, "tcpdump",
		// -B: a 32 MiB kernel buffer (tcpdump's default is 2 MiB), so
		// bursts of paced bulk transfers on a loaded CI machine are not
		// dropped before tcpdump reads them.
		"--immediate-mode", "-U", "-B", "32768", "-n", "-s", "0", "-Z", "root", "-i", port, "-w", path}
	if !opts.AllPackets {
		filter := opts.Filter
		if filter == "" {
			filter = "tcp"
		}
		args = append(args, filter)
	}
	c := &Capture{Path: path, t: t, done: make(chan struct{})}
	c.cmd = exec.Command("ip", args...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatalf("netlab: tcpdump: %v", err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("netlab: start tcpdump: %v", err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signaled := false
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.lines = append(c.lines, line)
			c.mu.Unlock()
			if !signaled && strings.Contains(line, "listening on") {
				signaled = true
				close(listening)
			}
		}
		c.err = c.cmd.Wait() // after stderr hit EOF, as StderrPipe requires
		close(c.done)
	}()
	t.Cleanup(func() { c.Stop() })
	select {
	case <-listening:
	case <-c.done:
		c.Stop()
		t.Fatalf("netlab: tcpdump exited before listening: %v: %s", c.err, c.output())
	case <-time.After(10 * time.Second):
		c.Stop()
		t.Fatalf("netlab: tcpdump not listening after 10s: %s", c.output())
	}
	return c
}

// Stop waits until the file has not grown for 150 ms (at most 2 s), so
// packets already on the wire are written; then stops tcpdump with SIGINT
// (SIGKILL after 5 s) and returns the pcap path. Errors are reported with
// t.Errorf. Stop is idempotent and safe from any goroutine.
func (c *Capture) Stop() string {
	c.once.Do(c.stop)
	return c.Path
}

func (c *Capture) stop() {
	select {
	case <-c.done:
	default:
		// tcpdump drops what it has not read yet when it gets SIGINT: wait
		// until the file has stopped growing long enough that a loaded
		// machine has scheduled it.
		c.quiesce(400*time.Millisecond, 5*time.Second)
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
			c.t.Errorf("netlab: tcpdump ignored SIGINT for 5s and was killed: %s", c.output())
			return
		}
	}
	if c.err != nil {
		c.t.Errorf("netlab: tcpdump: %v: %s", c.err, c.output())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range c.lines {
		m := statRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		switch m[2] {
		case "captured":
			c.stats.Captured = n
		case "received by filter":
			c.stats.ReceivedByFilter = n
		case "dropped by kernel":
			c.stats.DroppedByKernel = n
		}
	}
	if c.stats.DroppedByKernel > 0 {
		c.t.Errorf("netlab: tcpdump on %s: %d packets dropped by kernel", c.Path, c.stats.DroppedByKernel)
	}
}

var statRE = regexp.MustCompile(`^(\d+) packets? (captured|received by filter|dropped by kernel)`)

// quiesce waits until the file size is stable for quiet, at most limit.
func (c *Capture) quiesce(quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, lastChange := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		var size int64
		if fi, err := os.Stat(c.Path); err == nil {
			size = fi.Size()
		}
		if size != last {
			last, lastChange = size, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stats returns tcpdump's closing counters; zero before Stop.
func (c *Capture) Stats() CaptureStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Pid returns the process ID of tcpdump.
func (c *Capture) Pid() int { return c.cmd.Process.Pid }

func (c *Capture) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
}
