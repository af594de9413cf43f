//go:build linux

package daemon_test

// The load test of issue 5: a sender replays a large synthetic capture at
// top speed into one end of a veth pair; the daemon captures on the other
// end with 1, then 2 workers. It reports the kernel's and the daemon's
// counters and checks that they add up; it does not require zero drops
// (how fast the daemon is, is a separate question).
//
// It needs root (netlab.Require) and tcpreplay (Debian package tcpreplay)
// or, failing that, trafgen (package netsniff-ng); without either it
// skips, also in CI. -short skips it.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/internal/netlab"
)

// Load test size: loadConns connections of loadPerConn segments each
// (handshake, data both ways, FIN close), interleaved so that every
// connection is open at once. TCPTAP_LOAD_PACKETS overrides the total
// (the connection count stays; each connection gets more or fewer
// segments).
const (
	loadConns   = 10_000
	loadPerConn = 100
	loadPayload = 32
)

// Interfaces of the load veth pair, both in the lab's tap namespace: the
// sender writes on loadTx, the daemon captures on loadRx.
const (
	loadTx = "ld0"
	loadRx = "ld1"
)

// loadSender says which replay tool to use: tcpreplay, else trafgen;
// TCPTAP_LOAD_SENDER=trafgen forces trafgen.
func loadSender() (string, string) {
	want := os.Getenv("TCPTAP_LOAD_SENDER")
	for _, tool := range []string{"tcpreplay", "trafgen"} {
		if want != "" && want != tool {
			continue
		}
		if path, err := exec.LookPath(tool); err == nil {
			return tool, path
		}
	}
	return "", ""
}

func TestLoadReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	netlab.Require(t)
	tool, _ := loadSender()
	if tool == "" {
		t.Skip("load test needs tcpreplay (apt-get install tcpreplay) or trafgen (apt-get install netsniff-ng); skipping")
	}
	began := time.Now()
	perConn := loadPerConn
	if s := os.Getenv("TCPTAP_LOAD_PACKETS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < loadConns*8 {
			t.Fatalf("TCPTAP_LOAD_PACKETS=%q: want a number of at least %d", s, loadConns*8)
		}
		perConn = n / loadConns
	}

	lab := netlab.New(t, netlab.Options{})
	for _, args := range [][]string{
		{"link", "add", loadTx, "type", "veth", "peer", "name", loadRx},
		{"link", "set", loadTx, "up"},
		{"link", "set", loadRx, "up"},
	} {
		if out, err := lab.Tap.Exec("ip", args...); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	waitLinkUp(t, lab.Tap, loadRx)

	var pcap string
	var total int
	if tool == "tcpreplay" {
		start := time.Now()
		pcap = filepath.Join(t.TempDir(), "load.pcap")
		n, err := writeLoadPcap(pcap, loadConns, perConn)
		if err != nil {
			t.Fatal(err)
		}
		total = n
		fi, _ := os.Stat(pcap)
		t.Logf("generated %s: %d packets, %d connections, %d MB in %v", pcap, n, loadConns, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
	} else {
		total = loadConns * perConn
	}

	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			runLoad(t, lab, tool, pcap, total, workers, "default ring", capture.LiveConfig{Promiscuous: true})
		})
	}
	// A ring of two 4 KiB blocks (about 60 frames) cannot absorb the
	// bursts: the kernel drops, and the counters must still add up.
	t.Run("tiny-ring", func(t *testing.T) {
		runLoad(t, lab, tool, pcap, total, 1, "ring 2x4KiB", capture.LiveConfig{Promiscuous: true, BlockSize: 4096, NumBlocks: 2})
	})
	t.Logf("TestLoadReplay took %v", time.Since(began).Round(time.Millisecond))
}

// runLoad starts a daemon on loadRx, replays the load, waits until the
// daemon has read everything the kernel queued, and checks and reports the
// counters.
func runLoad(t *testing.T, lab *netlab.Lab, tool, pcap string, total, workers int, ring string, live capture.LiveConfig) {
	ld := startLive(t, lab.Tap, loadRx, workers, daemon.Options{}, live)
	before := linkStats(t, lab.Tap)
	cpuBefore := processCPU()

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	start := time.Now()
	var out string
	var err error
	switch tool {
	case "tcpreplay":
		out, err = lab.Tap.ExecContext(ctx, "tcpreplay", "--topspeed", "-i", loadTx, pcap)
	case "trafgen":
		cfg := filepath.Join(t.TempDir(), "load.trafgen")
		if werr := os.WriteFile(cfg, []byte(trafgenConfig()), 0o600); werr != nil {
			t.Fatal(werr)
		}
		// One CPU; leave the host's socket memory sysctls
		// and IRQ affinities alone.
		out, err = lab.Tap.ExecContext(ctx, "trafgen", "-o", loadTx, "-i", cfg, "-n", strconv.Itoa(total), "-P", "1", "--no-sock-mem", "--notouch-irq", "--no-cpu-stats")
	}
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	sent, rate := parseSender(t, tool, out, total, elapsed)

	// Wait until every worker has read all the kernel queued (frames +
	// drops = packets) and the counters stand still.
	var stats []daemon.WorkerStats
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
	drained := time.Since(start)
	cpu := processCPU() - cpuBefore
	if err := ld.Stop(); err != nil {
		t.Errorf("daemon stop: %v", err)
	}
	after := linkStats(t, lab.Tap)

	var kp, kd, kf, fr, seg, opened uint64
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
			t.Errorf("worker %d of %d got no packet: the fanout did not spread %d connections", i+1, workers, loadConns)
		}
		kp, kd, kf, fr, seg, opened = kp+w.Kernel.Packets, kd+w.Kernel.Drops, kf+w.Kernel.QueueFreezes, fr+w.Frames, seg+w.Table.Packets, opened+w.Table.Opened
	}
	rx := after.rx.sub(before.rx)
	tx := after.tx.sub(before.tx)
	t.Logf("LOAD %s workers=%d %s: offered %d packets in %v (%.0f packets/s by %s); %s tx %d packets (dropped %d), %s rx %d packets (dropped %d, missed %d); kernel to the daemon %d packets, %d dropped (%.2f%%), %d queue freezes; frames read %d, segments %d, connections %d; drained %v after the start; test process CPU %v (%.0f%% of one core over that time)",
		tool, workers, ring, sent, elapsed.Round(time.Millisecond), rate, tool, loadTx, tx.Packets, tx.Dropped, loadRx, rx.Packets, rx.Dropped, rx.Missed,
		kp, kd, pct(kd, kp), kf, fr, seg, opened, drained.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/drained.Seconds())
	if kp == 0 {
		t.Errorf("the daemon's sockets saw no packet")
	}
	if kp > uint64(sent) {
		t.Errorf("the kernel counted %d packets for the daemon, more than the %d sent", kp, sent)
	}
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

// senderRE finds the sender's counts in its output.
var (
	tcpreplaySent = regexp.MustCompile(`Successful packets:\s+(\d+)`)
	tcpreplayRate = regexp.MustCompile(`Rated: .*?([\d.]+) pps`)
	trafgenSent   = regexp.MustCompile(`(\d+) packets outgoing`)
)

// parseSender returns the packets the sender reports sent and the rate it
// reports (packets/s; measured from elapsed when it reports none).
func parseSender(t *testing.T, tool, out string, total int, elapsed time.Duration) (int, float64) {
	t.Helper()
	re := tcpreplaySent
	if tool == "trafgen" {
		re = trafgenSent
	}
	sent := total
	if m := re.FindStringSubmatch(out); m != nil {
		sent, _ = strconv.Atoi(m[1])
	} else {
		t.Logf("%s output without a packet count; assuming %d sent:\n%s", tool, total, out)
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
	t.Logf("%s: %s", tool, strings.Join(lines, "; "))
	return sent, rate
}

// trafgenConfig is the trafgen equivalent of the synthetic capture:
// small TCP segments (ACK|PSH with loadPayload bytes) whose client port
// counts through loadConns values, so that the fanout hash sees loadConns
// flows. They are mid-stream connections: trafgen does not play a
// handshake per flow.
func trafgenConfig() string {
	return fmt.Sprintf("{ eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01), ipv4(sa=10.64.0.1, da=10.128.0.1, ttl=64), "+
		"tcp(sp=dinc(1024, %d), dp=80, seq=dinc(), aseq=1, ack, psh, win=65535), fill(0x41, %d) }\n", 1024+loadConns-1, loadPayload)
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

// writeLoadPcap writes the synthetic load: conns connections of perConn
// segments each (perConn ≥ 8: SYN, SYN-ACK, ACK, data and acknowledgments
// both ways, FIN, FIN-ACK, ACK), every tenth over IPv6, round-robin so
// that all are open at once. Frames are addressed to MAC addresses no
// interface of the lab has. It returns the packet count.
func writeLoadPcap(path string, conns, perConn int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return 0, err
	}
	macC := net.HardwareAddr{0x02, 0x6c, 0x64, 0, 0, 1}
	macS := net.HardwareAddr{0x02, 0x6c, 0x64, 0, 0, 2}
	payload := make([]byte, loadPayload)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	type conn struct {
		v6         bool
		cAddr      net.IP
		sAddr      net.IP
		cPort      uint16
		cSeq, sSeq uint32
	}
	cs := make([]conn, conns)
	for i := range cs {
		c := &cs[i]
		c.v6 = i%10 == 9
		if c.v6 {
			c.cAddr = net.ParseIP("fd00:64::").To16()
			c.cAddr = append(net.IP(nil), c.cAddr...)
			binary.BigEndian.PutUint32(c.cAddr[12:], uint32(i+1))
			c.sAddr = net.ParseIP("fd00:128::1")
		} else {
			c.cAddr = net.IPv4(10, 64, byte(i>>8), byte(i)).To4()
			c.sAddr = net.IPv4(10, 128, 0, 1).To4()
		}
		c.cPort = uint16(1024 + i%60000)
		c.cSeq, c.sSeq = uint32(i)*7919, uint32(i)*104729+1<<31
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	dataRounds := (perConn - 6) / 2
	for step := 0; step < perConn; step++ {
		for i := range cs {
			c := &cs[i]
			// What segment step is for this connection.
			fromClient := true
			var flags struct{ syn, ack, psh, fin bool }
			var data []byte
			switch {
			case step == 0:
				flags.syn = true
			case step == 1:
				fromClient, flags.syn, flags.ack = false, true, true
			case step == 2:
				flags.ack = true
			case step < 3+2*dataRounds:
				fromClient = (step-3)%2 == 0
				flags.ack, flags.psh, data = true, true, payload
			case step == 3+2*dataRounds:
				flags.ack, flags.fin = true, true
			case step == 4+2*dataRounds:
				fromClient, flags.ack, flags.fin = false, true, true
			case step == 5+2*dataRounds:
				flags.ack = true
			default:
				// Keep-alive-free filler when perConn is odd: a pure ACK.
				flags.ack = true
			}
			tcp := &layers.TCP{SrcPort: layers.TCPPort(c.cPort), DstPort: 80, Window: 65535,
				SYN: flags.syn, ACK: flags.ack, PSH: flags.psh, FIN: flags.fin}
			tcp.Seq, tcp.Ack = c.cSeq, c.sSeq
			eth := &layers.Ethernet{SrcMAC: macC, DstMAC: macS}
			src, dst := c.cAddr, c.sAddr
			if !fromClient {
				tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
				tcp.Seq, tcp.Ack = c.sSeq, c.cSeq
				eth.SrcMAC, eth.DstMAC = macS, macC
				src, dst = dst, src
			}
			if !flags.ack {
				tcp.Ack = 0
			}
			var ip gopacket.SerializableLayer
			if c.v6 {
				eth.EthernetType = layers.EthernetTypeIPv6
				ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
				_ = tcp.SetNetworkLayerForChecksum(ip6)
				ip = ip6
			} else {
				eth.EthernetType = layers.EthernetTypeIPv4
				ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst, Flags: layers.IPv4DontFragment}
				_ = tcp.SetNetworkLayerForChecksum(ip4)
				ip = ip4
			}
			if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(data)); err != nil {
				return n, err
			}
			// Advance the sequence numbers by what the segment occupies.
			adv := uint32(len(data))
			if flags.syn || flags.fin {
				adv++
			}
			if fromClient {
				c.cSeq += adv
			} else {
				c.sSeq += adv
			}
			ts = ts.Add(time.Microsecond)
			frame := buf.Bytes()
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
				return n, err
			}
			n++
		}
	}
	if err := bw.Flush(); err != nil {
		return n, err
	}
	return n, f.Close()
}
