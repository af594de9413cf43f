//go:build linux

package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/internal/synth"
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

// TestLiveFileOutputCrash kills the real 'tcptap run' (SIGKILL) while
// records stream into its file output: the file holds only whole lines,
// each a record, since every batch is one write(2) of whole lines.
func TestLiveFileOutputCrash(t *testing.T) {
	netlab.Require(t)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		t.Skip("needs tcpreplay (apt-get install tcpreplay); skipping")
	}
	root := peers.ModuleRoot(t)
	bin, err := buildTcptap(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	lab := netlab.New(t, netlab.Options{})
	const tx, rx = "ck0", "ck1"
	for _, args := range [][]string{
		{"ip", "link", "add", tx, "type", "veth", "peer", "name", rx},
		{"sysctl", "-qw", "net.ipv6.conf." + tx + ".disable_ipv6=1", "net.ipv6.conf." + rx + ".disable_ipv6=1"},
		{"ip", "link", "set", tx, "up"},
		{"ip", "link", "set", rx, "up"},
	} {
		if out, err := lab.Tap.Exec(args[0], args[1:]...); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	waitLinkUp(t, lab.Tap, rx)
	pcap := filepath.Join(t.TempDir(), "mix.pcap")
	if _, err := synth.WriteFile(pcap, synth.Config{Connections: 20000, Packets: 400000, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	path := filepath.Join(dir, "records.json")
	p := startRun(t, bin, lab.Tap, sock, "-i", rx, "--control.socket", sock, "--output.file.path", path,
		"--trace.idle_timeout", "500ms", "--trace.close_linger", "50ms")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	replayed := make(chan error, 1)
	go func() {
		_, err := lab.Tap.ExecContext(ctx, "tcpreplay", "--pps", "100000", "-K", "--no-flow-stats", "-i", tx, pcap)
		replayed <- err
	}()
	// Kill it while records flow: once the file has grown for a while.
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err == nil && fi.Size() > 2<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file output did not reach 2 MB: %v\n%s", err, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	cancel()
	<-replayed
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("the file (%d bytes) ends in a partial line", len(data))
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %d: %v: %.200s", n+1, err, l)
		}
		n++
	}
	t.Logf("killed with %d bytes written: %d whole records, no partial line", len(data), n)
}
