package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real binary on a pipe: `... | tcptap read --format json -` writes
// each record once its connection finished and the pipe paused, long
// before the end of input; the records carry --sensor and the
// Community ID of --community-id-seed.
func TestReadPipeStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "tcptap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile("../../testdata/scenarios/AN-client-closes_tcp4.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "read", "--format", "json", "--cache-mode", "all", "--close-linger", "300ms", "--sensor", "pipe-sensor", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if _, err := stdin.Write(data); err != nil {
		t.Fatal(err)
	}
	// Both connections' records, input still open.
	lines := make(chan string, 4)
	go func() {
		buf := make([]byte, 1<<16)
		var acc string
		for {
			n, err := stdout.Read(buf)
			acc += string(buf[:n])
			for {
				i := strings.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- acc[:i]
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	start := time.Now()
	for range 2 {
		select {
		case l := <-lines:
			var r struct{ Sensor, UID, Reason string }
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.Sensor != "pipe-sensor" || r.Reason != "AN" || r.UID == "" {
				t.Errorf("record %v: %.200s", err, l)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no record within 10 s, the pipe still open")
		}
	}
	t.Logf("2 records %v after the capture was written, input still open", time.Since(start).Round(time.Millisecond))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if l, ok := <-lines; ok {
		t.Errorf("more output at the end of input: %.100s", l)
	}
}
