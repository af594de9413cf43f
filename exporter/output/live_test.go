//go:build linux

package output_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	. "github.com/tcptap/tcptap/exporter/output"
	"github.com/tcptap/tcptap/internal/livelab"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// The live daemon with every output at once: tcpreplay replays the
// synthetic mix (internal/synth) into a veth pair in a netlab tap
// namespace, the daemon captures on its other end with its records going
// to a file, rsyslogd (TCP) and nats-server (JetStream). Every connection
// finishes (short idle timeout); each output gets exactly the records the
// daemon made: the file's lines are the records, JetStream's messages are
// byte-identical to them, rsyslogd has as many messages; the kernel
// dropped nothing. Needs root, tcpreplay, rsyslogd and nats-server.
func TestLiveDaemonIntoAllOutputs(t *testing.T) {
	if testing.Short() {
		t.Skip("live outputs test: skipped with -short")
	}
	netlab.Require(t)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		t.Skip("needs tcpreplay (apt-get install tcpreplay); skipping")
	}
	rs := StartRsyslog(t)
	ns := StartNATS(t)

	lab, pcap, st := replayLab(t)
	const rate = 60_000 // packets/s: about 2 s of replay
	path := filepath.Join(t.TempDir(), "records.json")
	outs, err := New(Config{
		File:   &FileConfig{Path: path},
		Syslog: &SyslogConfig{Address: fmt.Sprintf("tcp://127.0.0.1:%d", rs.TCPPort()), Tag: "tcptap", Hostname: "live-sensor"},
		NATS:   &NATSConfig{URL: ns.URL(), Subject: "tcptap.live", Stream: "LIVE"},
	}, Options{QueueBytes: 64 << 20, FlushTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var made atomic.Uint64
	fleet := record.Fleet{Sensor: "live-sensor"}
	opts := daemon.Options{
		Interfaces: []string{liveRx},
		Workers:    2,
		// Short timers so that every connection finishes within seconds of
		// the replay.
		Table: reassembly.Config{IdleTimeout: 2 * time.Second, CloseLinger: 200 * time.Millisecond},
		Fleet: &fleet,
		OnClose: func(rec *record.Record) {
			made.Add(1)
			outs.Write(rec)
		},
		Open: liveOpen(lab),
	}
	d, err := daemon.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()
	time.Sleep(200 * time.Millisecond) // sockets open

	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	replay(t, lab, pcap, st.Packets, rate)
	replayed := time.Since(start)
	// Every connection ends (idle timeout 2 s) and its record leaves.
	var opened uint64
	WaitFor(t, 30*time.Second, "every connection finished", func() bool {
		opened = 0
		for _, w := range d.Stats() {
			opened += w.Table.Opened
		}
		return opened > 0 && made.Load() == opened
	})
	WaitFor(t, 30*time.Second, "every output delivered", func() bool {
		for _, s := range outs.Stats() {
			if s.Sent != made.Load() {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("daemon: %v", err)
	}
	runDone <- nil
	outs.Close()

	var drops, kernel uint64
	for _, w := range d.Stats() {
		drops += w.Kernel.Drops
		kernel += w.Kernel.Packets
	}
	n := made.Load()
	if opened < uint64(st.Connections) {
		t.Errorf("%d connections opened, the capture has %d", opened, st.Connections)
	}
	if drops != 0 {
		t.Errorf("%d kernel drops of %d packets", drops, kernel)
	}
	for _, s := range outs.Stats() {
		if s.Sent != n || s.Dropped != 0 || s.Failed != 0 {
			t.Errorf("output %s: %+v, want %d sent", s.Name, s, n)
		}
	}
	lines := ReadLines(t, path)
	if uint64(len(lines)) != n {
		t.Fatalf("file: %d lines, %d records made", len(lines), n)
	}
	byUID := map[string]string{}
	for _, l := range lines {
		uid := RecordUID([]byte(l))
		if _, dup := byUID[uid]; uid == "" || dup {
			t.Fatalf("line without a uid or with a repeated one: %.120s", l)
		}
		byUID[uid] = l
	}
	msgs := StreamMessages(t, ns.URL(), "LIVE")
	if len(msgs) != len(lines) {
		t.Fatalf("JetStream: %d messages, file %d lines", len(msgs), len(lines))
	}
	// Byte-identical and in the same order: every output gets the records
	// in the order Set.Write queued them.
	for i, m := range msgs {
		if m+"\n" != lines[i] {
			t.Fatalf("message %d differs from the file's line %d:\n%.200s\n%.200s", i, i, m, lines[i])
		}
	}
	var syslogN int
	WaitFor(t, 10*time.Second, "rsyslogd wrote every message", func() bool { syslogN = len(rs.Lines(t, "imtcp")); return uint64(syslogN) >= n })
	if uint64(syslogN) != n {
		t.Errorf("rsyslogd: %d messages, %d records", syslogN, n)
	}
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()) - time.Duration(ru0.Utime.Nano()+ru0.Stime.Nano())
	t.Logf("%d packets replayed in %v (%d kernel packets, %d drops); %d connections, %d records: file %d lines, JetStream %d messages byte-identical, rsyslogd %d messages; all delivered %v after the start; tcptap CPU %v (%.1f µs per packet, daemon and outputs)",
		st.Packets, replayed.Round(time.Millisecond), kernel, drops, opened, n, len(lines), len(msgs), syslogN, elapsed.Round(time.Millisecond),
		cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(st.Packets))
}

// The replay: the synthetic mix, sent by tcpreplay from liveTx into liveRx,
// both in the lab's tap namespace.
const (
	liveConns  = 6000
	liveTx     = "oq0"
	liveRx     = "oq1"
	liveFanout = 3
)

// replayLab builds a lab with the veth pair and generates the capture.
func replayLab(t testing.TB) (*netlab.Lab, string, synth.Stats) {
	t.Helper()
	const (
		conns   = liveConns
		packets = 20 * conns
		tx, rx  = liveTx, liveRx
	)
	lab := netlab.New(t, netlab.Options{})
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
	WaitFor(t, 5*time.Second, rx+" up", func() bool {
		out, err := lab.Tap.Exec("ip", "-o", "link", "show", rx)
		return err == nil && strings.Contains(out, "LOWER_UP")
	})
	pcap := filepath.Join(t.TempDir(), "mix.pcap")
	st, err := synth.WriteFile(pcap, synth.Config{Connections: conns, Packets: packets, Seed: 3, Payload: synth.PayloadSmall})
	if err != nil {
		t.Fatal(err)
	}
	return lab, pcap, st
}

// liveOpen opens the daemon's capture sockets on liveRx in the lab's tap
// namespace.
func liveOpen(lab *netlab.Lab) daemon.OpenFunc {
	return livelab.Open(lab.Tap, capture.LiveConfig{Promiscuous: true}, uint16(os.Getpid())|liveFanout)
}

// replay sends the capture at rate packets/s and checks tcpreplay sent it
// all.
func replay(t testing.TB, lab *netlab.Lab, pcap string, packets, rate int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := lab.Tap.ExecContext(ctx, "tcpreplay", "--pps", strconv.Itoa(rate), "-K", "--no-flow-stats", "-i", liveTx, pcap)
	if err != nil {
		t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Successful packets:\s+(\d+)`).FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(packets) {
		t.Fatalf("tcpreplay did not send the %d packets: %s", packets, out)
	}
}

// With every output down (nothing listening where syslog and NATS should
// be, a file path that is a directory) and small queues, the daemon keeps
// capturing with no kernel drop: each output's queue fills to its bound,
// the rest are dropped and counted, every record accounted for.
func TestLiveDaemonAllOutputsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("live outputs test: skipped with -short")
	}
	netlab.Require(t)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		t.Skip("needs tcpreplay (apt-get install tcpreplay); skipping")
	}
	lab, pcap, st := replayLab(t)
	// A file output that cannot open its file: the path is a directory.
	blocked := filepath.Join(t.TempDir(), "records.json")
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	const queue = 256 << 10
	outs, err := New(Config{
		File:   &FileConfig{Path: blocked},
		Syslog: &SyslogConfig{Address: "tcp://" + dead, Tag: "tcptap"},
		NATS:   &NATSConfig{URL: "nats://" + dead, Subject: "tcptap.records"},
	}, Options{QueueBytes: queue, FlushTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var made atomic.Uint64
	d, err := daemon.New(daemon.Options{
		Interfaces: []string{liveRx},
		Workers:    2,
		Table:      reassembly.Config{IdleTimeout: 2 * time.Second, CloseLinger: 200 * time.Millisecond},
		Fleet:      &record.Fleet{Sensor: "down"},
		OnClose:    func(rec *record.Record) { made.Add(1); outs.Write(rec) },
		Open:       liveOpen(lab),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	replay(t, lab, pcap, st.Packets, 60_000)
	var opened uint64
	WaitFor(t, 30*time.Second, "every connection finished", func() bool {
		opened = 0
		for _, w := range d.Stats() {
			opened += w.Table.Opened
		}
		return opened > 0 && made.Load() == opened
	})
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("daemon: %v", err)
	}
	var drops, kernel uint64
	for _, w := range d.Stats() {
		drops += w.Kernel.Drops
		kernel += w.Kernel.Packets
	}
	n := made.Load()
	stats := outs.Stats()
	// SIGTERM's flush is bounded by the flush timeout (1 s here) even
	// with every destination down.
	closeStart := time.Now()
	outs.Close()
	if d := time.Since(closeStart); d > 2*time.Second {
		t.Errorf("Close took %v with a flush timeout of 1s", d)
	}
	if drops != 0 || kernel != uint64(st.Packets) {
		t.Errorf("kernel: %d packets, %d drops; want %d and none", kernel, drops, st.Packets)
	}
	for _, s := range stats {
		if s.Up || s.Sent != 0 || s.QueueBytes > queue || s.Dropped == 0 || s.Dropped+uint64(s.QueueRecs) != n {
			t.Errorf("output %s: %+v; want down, nothing sent, dropped + queued = %d", s.Name, s, n)
		}
		t.Logf("%s down: %d records queued (%d bytes of %d), %d dropped; last error %q", s.Name, s.QueueRecs, s.QueueBytes, queue, s.Dropped, s.LastFailure)
	}
	t.Logf("%d packets, 0 kernel drops; %d records made with every output down", kernel, n)
}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
