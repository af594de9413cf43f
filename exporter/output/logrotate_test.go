package output

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Debian's logrotate rotates the file output while records stream into
// it: with create (rename, then SIGHUP from postrotate) no record is lost
// or duplicated; with copytruncate (copy, then truncate in place) none is
// duplicated and the file never holds a partial line or a hole, but the
// records written between logrotate's copy and its truncation are lost,
// as logrotate's manual says of copytruncate: counted, not asserted.
func TestLogrotate(t *testing.T) {
	bin, err := exec.LookPath("logrotate")
	if err != nil {
		t.Skip("logrotate not installed (apt-get install logrotate); skipping")
	}
	for _, mode := range []string{"create", "copytruncate"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "records.json")
			s, err := New(Config{File: &FileConfig{Path: path}}, Options{QueueBytes: 64 << 20, FlushTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			// What tcptap run does on SIGHUP (cmd/tcptap handleSignals).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			hups := 0
			go func() {
				for range hup {
					hups++
					s.Reopen()
				}
			}()
			post := ""
			if mode == "create" {
				post = fmt.Sprintf("  postrotate\n    kill -HUP %d\n  endscript\n", os.Getpid())
			}
			conf := filepath.Join(dir, "logrotate.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf("%s {\n  rotate 20\n  %s\n  missingok\n  nocompress\n%s}\n", path, mode, post)), 0o644); err != nil {
				t.Fatal(err)
			}
			recs := makeRecords(t, 6000)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range recs {
					s.Write(&recs[i])
					if i%50 == 49 {
						time.Sleep(12 * time.Millisecond) // ~1.5 s of records
					}
				}
			}()
			rotations := 0
			for i := 0; ; i++ {
				select {
				case <-done:
				case <-time.After(100 * time.Millisecond):
					out, err := exec.Command(bin, "-f", "-s", filepath.Join(dir, "state"), conf).CombinedOutput()
					if err != nil {
						t.Fatalf("logrotate: %v: %s", err, out)
					}
					rotations++
					continue
				}
				break
			}
			s.Close()
			var lines []string
			for i := 20; i >= 1; i-- {
				name := fmt.Sprintf("%s.%d", path, i)
				if _, err := os.Stat(name); err == nil {
					lines = append(lines, checkedLines(t, name)...)
				}
			}
			lines = append(lines, checkedLines(t, path)...)
			// Each line is a record, in order, at most once.
			next := 0
			for _, l := range lines {
				for next < len(recs) && jsonLine(&recs[next]) != l {
					next++
				}
				if next == len(recs) {
					t.Fatalf("a line out of order or twice: %.80s", l)
				}
				next++
			}
			lost := len(recs) - len(lines)
			t.Logf("%s: %d rotations, %d SIGHUPs, %d records, %d lines in the files, %d lost", mode, rotations, hups, len(recs), len(lines), lost)
			if rotations < 3 {
				t.Errorf("only %d rotations during the stream", rotations)
			}
			if mode == "create" && lost != 0 {
				t.Errorf("create: %d records lost", lost)
			}
		})
	}
}

// checkedLines returns a file's lines, failing on a partial line or NUL
// bytes (a hole left by a write past a truncated end).
func checkedLines(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("%s ends in a partial line", name)
	}
	if strings.IndexByte(string(data), 0) >= 0 {
		t.Errorf("%s holds NUL bytes", name)
	}
	return readLines(t, name)
}
