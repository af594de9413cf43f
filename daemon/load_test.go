//go:build linux

package daemon_test

// The load test (issues 5 and 8): tcpreplay replays the synthetic capture
// (internal/synth: small segments, IPv6, VLANs, retransmissions, every
// ending) into one end of a veth pair; the daemon captures on the other
// end.
//
//   - paced: 2 workers, at loadPacedRate packets/s: no kernel drop, and
//     every packet sent is read and every connection opened;
//   - top-speed: 1 worker, as fast as tcpreplay goes: reported, and the
//     counters must add up (drops included);
//   - tiny-ring: a two-page ring that cannot absorb the bursts: the kernel
//     drops, and the counters must still add up.
//
// Only the paced run asserts zero drops. A sender at top speed on a veth
// goes as fast as its core allows, which on a bigger machine can outrun a
// worker; a fixed rate keeps the assertion independent of the machine.
// loadPacedRate is about half of what tcpreplay reaches into a capturing
// daemon on a loaded 2-core CI machine (180-250k packets/s; 330k without a
// capture socket), the worker needs a sixth of a core for it, and a
// default 64 MiB ring holds over two seconds of it: a busy neighbour can
// slow the test, not make it drop. scripts/bench-live.sh measures the high
// rates.
//
// It needs root (netlab.Require) and tcpreplay (Debian package tcpreplay);
// without it it skips, also in CI. -short skips it. TCPTAP_LOAD_PACKETS
// sets the size of the capture (default loadPackets).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/synth"
)

// The load: loadPackets packets of loadConns connections (the synthetic
// mix, seed 1).
const (
	loadPackets   = 500_000
	loadConns     = 10_000
	loadPacedRate = 100_000 // packets/s of the run that must not drop
)

// Interfaces of the load veth pair, both in the lab's tap namespace: the
// sender writes on loadTx, the daemon captures on loadRx.
const (
	loadTx = "ld0"
	loadRx = "ld1"
)

// newLoadLab returns a lab whose tap namespace has the load veth pair up.
func newLoadLab(t *testing.T) *netlab.Lab {
	lab := netlab.New(t, netlab.Options{})
	for _, args := range [][]string{
		{"ip", "link", "add", loadTx, "type", "veth", "peer", "name", loadRx},
		// No IPv6 on the pair: its neighbour discovery would add frames
		// to the interface counters the test compares.
		{"sysctl", "-qw", "net.ipv6.conf." + loadTx + ".disable_ipv6=1", "net.ipv6.conf." + loadRx + ".disable_ipv6=1"},
		{"ip", "link", "set", loadTx, "up"},
		{"ip", "link", "set", loadRx, "up"},
	} {
		if out, err := lab.Tap.Exec(args[0], args[1:]...); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	waitLinkUp(t, lab.Tap, loadRx)
	return lab
}

func TestLoadReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	netlab.Require(t)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		t.Skip("load test needs tcpreplay (apt-get install tcpreplay); skipping")
	}
	began := time.Now()
	packets := loadPackets
	if s := os.Getenv("TCPTAP_LOAD_PACKETS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 20*loadConns {
			t.Fatalf("TCPTAP_LOAD_PACKETS=%q: want a number of at least %d", s, 20*loadConns)
		}
		packets = n
	}

	lab := newLoadLab(t)

	start := time.Now()
	pcap := filepath.Join(t.TempDir(), "load.pcap")
	st, err := synth.WriteFile(pcap, synth.Config{Connections: loadConns, Packets: packets, Seed: 1, Payload: synth.PayloadSmall})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %s: %d packets, %d connections (%d IPv6, %d VLAN), %d MB in %v",
		pcap, st.Packets, st.Connections, st.IPv6, st.VLAN, st.Bytes>>20, time.Since(start).Round(time.Millisecond))
	load := loadRun{pcap: pcap, packets: st.Packets, conns: st.Connections}

	t.Run("paced", func(t *testing.T) {
		r := runLoad(t, lab, load, 2, loadPacedRate, capture.LiveConfig{Promiscuous: true})
		if r.drops != 0 || r.frames != uint64(load.packets) || r.delivered != uint64(load.packets) || r.opened != uint64(load.conns) {
			t.Errorf("at %d packets/s: %d packets sent, %d delivered, %d dropped by the kernel, %d read, %d of %d connections opened; want no drop and all of them",
				loadPacedRate, r.sent, r.delivered, r.drops, r.frames, r.opened, load.conns)
		}
	})
	t.Run("top-speed", func(t *testing.T) {
		runLoad(t, lab, load, 1, 0, capture.LiveConfig{Promiscuous: true})
	})
	// A ring of two 4 KiB blocks (about 30 frames) cannot absorb the
	// bursts: the kernel drops, and the counters must still add up.
	t.Run("tiny-ring", func(t *testing.T) {
		r := runLoad(t, lab, load, 1, 0, capture.LiveConfig{Promiscuous: true, BlockSize: 4096, NumBlocks: 2})
		if r.drops == 0 {
			t.Logf("a two-page ring kept up with %d packets: no drop to check the accounting of", r.kernel)
		}
	})
	t.Logf("TestLoadReplay took %v", time.Since(began).Round(time.Millisecond))
}

// loadRun is the capture to replay.
type loadRun struct {
	pcap           string
	packets, conns int
}

// loadResult is what one run counted.
type loadResult struct {
	sent                     int    // by tcpreplay
	delivered                uint64 // loadRx rx_packets
	kernel, drops, frames    uint64 // the daemon's sockets and workers
	opened                   uint64 // connections its tables opened
	elapsed, drained, cpuRun time.Duration
}

// runLoad starts a daemon on loadRx with workers sockets, replays the load
// at rate packets/s (0: top speed), waits until the daemon has read
// everything the kernel queued, and checks that the counters add up.
func runLoad(t *testing.T, lab *netlab.Lab, load loadRun, workers, rate int, live capture.LiveConfig) loadResult {
	ld := startLive(t, lab.Tap, loadRx, workers, daemon.Options{}, live)
	before := linkStats(t, lab.Tap)
	cpuBefore := processCPU()

	// Bounded: at the paced rate the replay takes packets/rate seconds.
	limit := 60*time.Second + time.Duration(load.packets/loadPacedRate)*2*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	speed := []string{"--topspeed"}
	if rate > 0 {
		speed = []string{"--pps", strconv.Itoa(rate)}
	}
	// -K: read the capture into memory first, so that the file reader
	// does not pace the sender.
	args := append(speed, "-K", "--no-flow-stats", "-i", loadTx, load.pcap)
	start := time.Now()
	out, err := lab.Tap.ExecContext(ctx, "tcpreplay", args...)
	var r loadResult
	r.elapsed = time.Since(start)
	if err != nil {
		t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	var achieved float64
	r.sent, achieved = parseTcpreplay(t, out, load.packets, r.elapsed)
	if r.sent != load.packets {
		t.Errorf("tcpreplay sent %d packets of %d", r.sent, load.packets)
	}

	// Wait until every worker has read all the kernel queued (frames +
	// drops = packets) and the counters stand still.
	var stats []metrics.Worker
	deadline := time.Now().Add(15 * time.Second)
	stable := 0
	var last uint64
	for {
		time.Sleep(150 * time.Millisecond)
		stats = ld.Stats()
		var frames uint64
		done := true
		for _, w := range stats {
			frames += w.Frames
			if w.Frames+w.Kernel.Drops != w.Kernel.Packets {
				done = false
			}
		}
		if done && frames == last {
			stable++
		} else {
			stable = 0
		}
		last = frames
		if stable >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the workers did not catch up with the kernel within 15s of the end of the replay")
			break
		}
	}
	r.drained = time.Since(start)
	r.cpuRun = processCPU() - cpuBefore
	if err := ld.Stop(); err != nil {
		t.Errorf("daemon stop: %v", err)
	}
	after := linkStats(t, lab.Tap)

	var freezes, segments uint64
	for i, w := range stats {
		t.Logf("worker %d/%d: kernel packets %d, kernel drops %d (%.2f%%), queue freezes %d; frames read %d; table segments %d, connections opened %d; decode %+v",
			i+1, len(stats), w.Kernel.Packets, w.Kernel.Drops, pct(w.Kernel.Drops, w.Kernel.Packets), w.Kernel.QueueFreezes,
			w.Frames, w.Table.Packets, w.Table.Opened, w.Decode)
		if w.Kernel.Packets != w.Frames+w.Kernel.Drops {
			t.Errorf("worker %d: kernel packets %d != frames read %d + kernel drops %d", i+1, w.Kernel.Packets, w.Frames, w.Kernel.Drops)
		}
		if w.Table.Packets > w.Frames {
			t.Errorf("worker %d: %d segments in the table, more than the %d frames read", i+1, w.Table.Packets, w.Frames)
		}
		if workers > 1 && w.Kernel.Packets == 0 {
			t.Errorf("worker %d of %d got no packet: the fanout did not spread %d connections", i+1, workers, load.conns)
		}
		r.kernel += w.Kernel.Packets
		r.drops += w.Kernel.Drops
		r.frames += w.Frames
		r.opened += w.Table.Opened
		freezes += w.Kernel.QueueFreezes
		segments += w.Table.Packets
	}
	rx := after.rx.sub(before.rx)
	tx := after.tx.sub(before.tx)
	r.delivered = rx.Packets
	rateName := "top speed"
	if rate > 0 {
		rateName = fmt.Sprintf("%d packets/s", rate)
	}
	ring := "default ring"
	if live.NumBlocks != 0 {
		ring = fmt.Sprintf("ring %dx%d B", live.NumBlocks, live.BlockSize)
	}
	t.Logf("LOAD workers=%d %s at %s: tcpreplay sent %d packets in %v (%.0f packets/s); %s tx %d (dropped %d), %s rx %d (dropped %d, missed %d); kernel to the daemon %d packets, %d dropped (%.2f%%), %d queue freezes; frames read %d, segments %d, connections %d of %d; drained %v after the start; daemon CPU %v (%.0f%% of one core over that time, %.2f µs per frame)",
		workers, ring, rateName,
		r.sent, r.elapsed.Round(time.Millisecond), achieved, loadTx, tx.Packets, tx.Dropped, loadRx, rx.Packets, rx.Dropped, rx.Missed,
		r.kernel, r.drops, pct(r.drops, r.kernel), freezes, r.frames, segments, r.opened, load.conns, r.drained.Round(time.Millisecond),
		r.cpuRun.Round(time.Millisecond), 100*r.cpuRun.Seconds()/r.drained.Seconds(), perFrame(r.cpuRun, r.frames))
	// The pair carries nothing but the replay, all of it TCP: every frame
	// the veth delivered passes the filter, and no frame is counted that
	// was not sent.
	if r.kernel != r.delivered {
		t.Errorf("the kernel counted %d packets for the daemon, the interface received %d", r.kernel, r.delivered)
	}
	if r.delivered != uint64(r.sent) {
		t.Errorf("%s received %d packets, tcpreplay sent %d", loadRx, r.delivered, r.sent)
	}
	return r
}

// processCPU returns the user and system CPU time of the test process
// (the daemon's workers, not the sender: that is a child process).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) * 100 / float64(b)
}

func perFrame(d time.Duration, frames uint64) float64 {
	if frames == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(frames)
}

// tcpreplay's counts in its output.
var (
	tcpreplaySent = regexp.MustCompile(`Successful packets:\s+(\d+)`)
	tcpreplayRate = regexp.MustCompile(`Rated: .*?([\d.]+) pps`)
)

// parseTcpreplay returns the packets tcpreplay reports sent and the rate
// it reports (packets/s; measured from elapsed when it reports none).
func parseTcpreplay(t *testing.T, out string, total int, elapsed time.Duration) (int, float64) {
	t.Helper()
	sent := total
	if m := tcpreplaySent.FindStringSubmatch(out); m != nil {
		sent, _ = strconv.Atoi(m[1])
	} else {
		t.Errorf("tcpreplay output without a packet count:\n%s", out)
	}
	rate := float64(sent) / elapsed.Seconds()
	if m := tcpreplayRate.FindStringSubmatch(out); m != nil {
		rate, _ = strconv.ParseFloat(m[1], 64)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Warning") {
			lines = append(lines, l)
		}
	}
	t.Logf("tcpreplay: %s", strings.Join(lines, "; "))
	return sent, rate
}

// linkCounters are one direction's counters of a link.
type linkCounters struct {
	Packets uint64 `json:"packets"`
	Dropped uint64 `json:"dropped"`
	Missed  uint64 `json:"missed"`
}

func (a linkCounters) sub(b linkCounters) linkCounters {
	return linkCounters{a.Packets - b.Packets, a.Dropped - b.Dropped, a.Missed - b.Missed}
}

type loadLinks struct{ tx, rx linkCounters }

// linkStats reads the sender's tx and the capture side's rx counters.
func linkStats(t *testing.T, ns *netlab.Namespace) loadLinks {
	t.Helper()
	read := func(dev string) (rx, tx linkCounters) {
		out, err := ns.Exec("ip", "-s", "-j", "link", "show", dev)
		if err != nil {
			t.Fatalf("ip -s link show %s: %v", dev, err)
		}
		var v []struct {
			Stats64 struct {
				RX linkCounters `json:"rx"`
				TX linkCounters `json:"tx"`
			} `json:"stats64"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
			t.Fatalf("ip -s -j link show %s: %v: %s", dev, err, out)
		}
		return v[0].Stats64.RX, v[0].Stats64.TX
	}
	var l loadLinks
	_, l.tx = read(loadTx)
	l.rx, _ = read(loadRx)
	return l
}

// waitLinkUp waits (bounded) until dev in ns has its carrier.
func waitLinkUp(t *testing.T, ns *netlab.Namespace, dev string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := ns.Exec("ip", "-o", "link", "show", dev)
		if err == nil && strings.Contains(out, "LOWER_UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up after 5s: %v %s", dev, err, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
