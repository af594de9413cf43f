//go:build linux

package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/peers"
)

// TestLiveFileOutputSIGHUP runs the real 'tcptap run' with the file
// output while real connections close between the lab's client and
// server: SIGHUP, after the file was moved away as logrotate's create
// does, does not stop the daemon (it used to kill it) and makes it write
// to a new file at the path; the two files hold one record per
// connection, each once, with the configured sensor name, a uid and a
// Community ID.
func TestLiveFileOutputSIGHUP(t *testing.T) {
	netlab.Require(t)
	root := peers.ModuleRoot(t)
	bin, err := buildTcptap(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	lab := netlab.New(t, netlab.Options{})
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	path := filepath.Join(dir, "records.json")
	p := startRun(t, bin, lab.Tap, sock, "-i", netlab.ClientPort, "--control.socket", sock,
		"--output.file.path", path, "--output.records", "all", "--sensor.name", "lab-sensor",
		"--trace.close_linger", "100ms")

	srvAddr := net.JoinHostPort(lab.Server.Addr("tcp4").String(), "0")
	ln, err := lab.Server.ListenTCP("tcp4", srvAddr, netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	connect := func(n int) {
		for range n {
			c, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
	}
	lines := func(name string) []string {
		f, err := os.Open(name)
		if err != nil {
			return nil
		}
		defer f.Close()
		var out []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		return out
	}
	waitLines := func(name string, n int) {
		deadline := time.Now().Add(20 * time.Second)
		for len(lines(name)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d lines, want %d\n%s", name, len(lines(name)), n, p.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	const n1, n2 = 20, 30
	connect(n1)
	waitLines(path, n1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("tcptap run exited on SIGHUP: %v\n%s", p.err, p.stderr)
	default:
	}
	connect(n2)
	waitLines(path, n2)
	p.stop(t)

	old, cur := lines(path+".1"), lines(path)
	if len(old) != n1 || len(cur) != n2 {
		t.Fatalf("%d lines before the SIGHUP, %d after; want %d and %d", len(old), len(cur), n1, n2)
	}
	uids := map[string]bool{}
	for _, l := range append(old, cur...) {
		var r struct {
			UID, Sensor, Reason string
			CommunityID         string `json:"community_id"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if r.Sensor != "lab-sensor" || len(r.UID) != 18 || len(r.CommunityID) != 30 || uids[r.UID] {
			t.Errorf("record %s", l)
		}
		uids[r.UID] = true
	}
	t.Logf("%d records before SIGHUP in the moved file, %d after in the new one, each once", len(old), len(cur))
}
