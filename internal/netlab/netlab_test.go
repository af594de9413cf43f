package netlab_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/netlab"
)

// TestMain fails the run if any namespace or child process of this test
// binary outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		if left := leftovers(); left != "" {
			fmt.Fprintln(os.Stderr, "netlab: leftovers after tests:", left)
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers lists this process's tt-* namespaces and child processes.
func leftovers() string {
	var left []string
	prefix := "tt-" + strconv.Itoa(os.Getpid()) + "-"
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				left = append(left, "namespace "+e.Name())
			}
		}
	}
	for _, pid := range children() {
		left = append(left, "process "+strconv.Itoa(pid))
	}
	return strings.Join(left, ", ")
}

// children returns the PIDs whose parent is this process.
func children() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// conn4 filters the segments of one connection and names their direction.
type conn4 struct {
	client, server netip.AddrPort
}

func (c conn4) fromClient(s netlab.Segment) bool { return s.Src == c.client && s.Dst == c.server }
func (c conn4) fromServer(s netlab.Segment) bool { return s.Src == c.server && s.Dst == c.client }

func dumpSegments(t *testing.T, segs []netlab.Segment, max int) {
	t.Helper()
	for i, s := range segs {
		if i == max {
			t.Logf("... %d more", len(segs)-max)
			break
		}
		t.Logf("  %v", s)
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// TestTransfer sends 1 MB client→server over IPv4 and over IPv6, closes
// with FINs both ways, and checks the capture on the client-facing port.
func TestTransfer(t *testing.T) {
	netlab.Require(t)
	t.Parallel()
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			lab := netlab.New(t, netlab.Options{})
			ln, err := lab.Server.ListenTCP(network, "", netlab.SocketOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			capture := lab.StartCapture(t, network+".pcap", netlab.CaptureOptions{})

			const size = 1 << 20
			type result struct {
				n   int64
				err error
			}
			served := make(chan result, 1)
			go func() {
				c, err := ln.AcceptTCP()
				if err != nil {
					served <- result{err: err}
					return
				}
				defer c.Close() // FIN after the client's FIN
				c.SetDeadline(deadline(ctx))
				n, err := io.Copy(io.Discard, c)
				served <- result{n, err}
			}()

			c, err := lab.Client.DialTCP(ctx, network, ln.Addr().String(), netlab.DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(deadline(ctx))
			payload := make([]byte, size)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range payload {
				payload[i] = byte(rng.Uint32())
			}
			if _, err := c.Write(payload); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatalf("close write: %v", err)
			}
			if n, err := io.Copy(io.Discard, c); n != 0 || err != nil {
				t.Fatalf("client read: %d bytes, %v; want EOF", n, err)
			}
			var r result
			select {
			case r = <-served:
			case <-ctx.Done():
				t.Fatal("server did not finish")
			}
			if r.err != nil || r.n != size {
				t.Fatalf("server read %d bytes, %v; want %d", r.n, r.err, size)
			}
			c.Close()

			path := capture.Stop()
			segs, err := netlab.ReadSegments(path)
			if err != nil {
				t.Fatal(err)
			}
			cn := conn4{
				client: netip.MustParseAddrPort(c.LocalAddr().String()),
				server: netip.MustParseAddrPort(ln.Addr().String()),
			}
			if cn.client.Addr() != lab.Client.Addr(network) || cn.server.Addr() != lab.Server.Addr(network) {
				t.Fatalf("connection %v -> %v does not use the lab addresses", cn.client, cn.server)
			}
			var (
				syn, synAck, finC, finS, rst bool
				isn                          uint32
				clientBytes                  int
				maxEnd                       uint32
				maxFrame                     int
			)
			for _, s := range segs {
				if !cn.fromClient(s) && !cn.fromServer(s) {
					t.Errorf("segment of another connection: %v", s)
					continue
				}
				if !s.ChecksumOK {
					t.Errorf("bad checksum: %v", s)
				}
				maxFrame = max(maxFrame, s.FrameLen)
				switch {
				case s.Flags&netlab.RST != 0:
					rst = true
				case cn.fromClient(s) && s.Flags == netlab.SYN:
					syn, isn = true, s.Seq
				case cn.fromServer(s) && s.Flags == netlab.SYN|netlab.ACK:
					synAck = true
				}
				if cn.fromClient(s) && s.Flags&netlab.FIN != 0 {
					finC = true
				}
				if cn.fromServer(s) && s.Flags&netlab.FIN != 0 {
					finS = true
				}
				if cn.fromClient(s) && s.Len > 0 {
					clientBytes += s.Len
					maxEnd = max(maxEnd, s.Seq-isn-1+uint32(s.Len))
				}
			}
			if !syn || !synAck || !finC || !finS || rst {
				dumpSegments(t, segs, 20)
				t.Fatalf("SYN %v, SYN-ACK %v, client FIN %v, server FIN %v, RST %v; want all but RST", syn, synAck, finC, finS, rst)
			}
			if maxEnd != size || clientBytes < size {
				t.Errorf("captured client data: highest byte %d, %d bytes in total; want %d", maxEnd, clientBytes, size)
			}
			if maxFrame > 1514 {
				t.Errorf("largest frame %d bytes; offloads not disabled (want <= 1514)", maxFrame)
			}
			if st := capture.Stats(); st.Captured != len(segs) {
				t.Errorf("tcpdump captured %d packets, file has %d", st.Captured, len(segs))
			}
			t.Logf("%s: %d segments, %d client payload bytes, largest frame %d, took %v",
				network, len(segs), clientBytes, maxFrame, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestRetransmitTimeout blackholes server→client after the handshake: the
// client's data is retransmitted until tcp_retries2=3 gives up with
// ETIMEDOUT, silently (no RST).
func TestRetransmitTimeout(t *testing.T) {
	netlab.Require(t)
	t.Parallel()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lab := netlab.New(t, netlab.Options{
		ClientSysctls: map[string]string{"net.ipv4.tcp_retries2": "3"},
	})
	for _, c := range []struct {
		ns   *netlab.Namespace
		want string
	}{{lab.Client, "3"}, {lab.Server, ""}} {
		v, err := c.ns.Sysctl("net.ipv4.tcp_retries2")
		if err != nil {
			t.Fatal(err)
		}
		if c.want != "" && v != c.want {
			t.Fatalf("tcp_retries2 in %s = %s, want %s", c.ns.Role, v, c.want)
		}
		if c.want == "" && v == "3" {
			t.Fatalf("tcp_retries2 leaked into the %s namespace", c.ns.Role)
		}
	}
	ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	capture := lab.StartCapture(t, "rt.pcap", netlab.CaptureOptions{})
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sc *net.TCPConn
	select {
	case sc = <-accepted:
	case <-ctx.Done():
	}
	if sc == nil {
		t.Fatal("no accepted connection")
	}
	defer sc.Close()

	fault := lab.Blackhole(t, netlab.ServerToClient)
	sent := time.Now()
	if _, err := c.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(deadline(ctx))
	_, err = c.Read(make([]byte, 100))
	elapsed := time.Since(sent)
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("client read: %v after %v; want ETIMEDOUT", err, elapsed)
	}
	if elapsed > 12*time.Second {
		t.Errorf("ETIMEDOUT after %v, want ~7s", elapsed)
	}
	if n, err := fault.Packets(); err != nil || n == 0 {
		t.Errorf("blackhole counter: %d, %v; want > 0", n, err)
	}

	segs, err := netlab.ReadSegments(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	cn := conn4{
		client: netip.MustParseAddrPort(c.LocalAddr().String()),
		server: netip.MustParseAddrPort(ln.Addr().String()),
	}
	var sends []time.Time // transmissions of the data segment
	var dataSeq uint32
	for _, s := range segs {
		if s.Flags&netlab.RST != 0 {
			t.Errorf("RST on the wire: %v", s)
		}
		if cn.fromClient(s) && s.Len > 0 {
			if len(sends) == 0 {
				dataSeq = s.Seq
			}
			if s.Seq == dataSeq {
				sends = append(sends, s.Time)
			}
		}
		if cn.fromServer(s) && s.Time.After(sent) {
			t.Errorf("server segment crossed the blackhole: %v", s)
		}
	}
	if len(sends) < 4 {
		dumpSegments(t, segs, 30)
		t.Fatalf("data segment sent %d times, want the original and >= 3 retransmissions", len(sends))
	}
	var gaps []string
	for i := 1; i < len(sends); i++ {
		gaps = append(gaps, sends[i].Sub(sends[i-1]).Round(time.Millisecond).String())
	}
	first, last := sends[1].Sub(sends[0]), sends[len(sends)-1].Sub(sends[len(sends)-2])
	if last < 2*first {
		t.Errorf("retransmission gaps %v do not back off", gaps)
	}
	t.Logf("%d retransmissions, gaps %v, ETIMEDOUT after %v; test took %v",
		len(sends)-1, gaps, elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestResets covers the reset tools: a netfilter reset forged in the server
// namespace, and "ss -K" run there through Exec.
func TestResets(t *testing.T) {
	netlab.Require(t)
	t.Parallel()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lab := netlab.New(t, netlab.Options{})
	capture := lab.StartCapture(t, "rst.pcap", netlab.CaptureOptions{})
	for _, network := range []string{"tcp4", "tcp6"} {
		ln, err := lab.Server.ListenTCP(network, "", netlab.SocketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		pair := func() (*net.TCPConn, *net.TCPConn) {
			t.Helper()
			c, err := lab.Client.DialTCP(ctx, network, ln.Addr().String(), netlab.DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetDeadline(deadline(ctx))
			sc, err := ln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(deadline(ctx))
			return c, sc
		}

		// Forged RST: the server's netfilter answers the data.
		c, sc := pair()
		fault := lab.RejectWithReset(t, lab.Server, netlab.Rule{DstPort: port})
		c.Write([]byte("hello"))
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s: read after forged reset: %v, want ECONNRESET", network, err)
		}
		if info, err := netlab.TCPInfo(sc); err != nil || info.State != 1 /* TCP_ESTABLISHED */ {
			t.Errorf("%s: server socket after the forged reset: %+v, %v; want still established", network, info, err)
		}
		if err := fault.Remove(); err != nil {
			t.Fatal(err)
		}
		if err := fault.Remove(); err != nil {
			t.Errorf("second Remove: %v", err)
		}
		c.Close()
		sc.Close()

		// Administrative kill with ss -K in the server namespace.
		c, sc = pair()
		local := netip.MustParseAddrPort(c.LocalAddr().String())
		// ss wants IPv6 addresses in brackets.
		dst := "[" + local.Addr().String() + "]"
		out, err := lab.Server.Exec("ss", "-K", "-t", "dst", dst, "dport", "=", strconv.Itoa(int(local.Port())))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s: read after ss -K: %v, want ECONNRESET (ss said %q)", network, err, out)
		}
		c.Close()
		sc.Close()
	}
	segs, err := netlab.ReadSegments(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	// Per family, from the server: the forged RST (bare, its seq is the
	// client's ack) and the RST|ACK of ss -K. The client's stack also
	// answers the server's later FIN on the forged-reset connection with a
	// bare RST, as a host with no socket does.
	var rsts []netlab.Segment
	forged, killed := 0, 0
	for _, s := range segs {
		if s.Flags&netlab.RST == 0 {
			continue
		}
		rsts = append(rsts, s)
		switch {
		case s.Src.Addr() != lab.Server.IPv4 && s.Src.Addr() != lab.Server.IPv6:
		case s.Flags == netlab.RST:
			forged++
		case s.Flags == netlab.RST|netlab.ACK:
			killed++
		}
	}
	if forged != 2 || killed != 2 {
		dumpSegments(t, segs, 40)
		t.Fatalf("server sent %d bare RSTs and %d RST|ACKs, want 2 and 2", forged, killed)
	}
	t.Logf("RSTs: %v; test took %v", rsts, time.Since(start).Round(time.Millisecond))
}

// TestLossAndLink: random loss slows a transfer down but it completes; a
// server link down makes connects fail until it comes back.
func TestLossAndLink(t *testing.T) {
	netlab.Require(t)
	t.Parallel()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	lab := netlab.New(t, netlab.Options{})
	ln, err := lab.Server.ListenTCP("tcp6", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(deadline(ctx))
				io.Copy(io.Discard, c)
			}()
		}
	}()

	loss := lab.Loss(t, 10, netlab.BothWays)
	c, err := lab.Client.DialTCP(ctx, "tcp6", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(deadline(ctx))
	if _, err := c.Write(make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("lossy transfer: %v", err)
	}
	c.Close()
	dropped, err := loss.Packets()
	if err != nil || dropped == 0 {
		t.Errorf("loss rule dropped %d packets, %v; want some", dropped, err)
	}
	loss.Remove()

	lab.SetLink(t, lab.Server, false)
	short, cancelShort := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = lab.Client.DialTCP(short, "tcp6", ln.Addr().String(), netlab.DialOptions{})
	cancelShort()
	if err == nil {
		t.Fatal("connected while the server link was down")
	}
	lab.SetLink(t, lab.Server, true)
	c, err = lab.Client.DialTCP(ctx, "tcp6", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatalf("connect after link up: %v", err)
	}
	c.Close()
	t.Logf("loss dropped %d packets; test took %v", dropped, time.Since(start).Round(time.Millisecond))
}

// TestCleanup checks that a finished lab leaves no namespace and no tcpdump
// behind, even with the capture, a fault and sockets still open at the end,
// and that CleanupStale removes namespaces of dead processes.
func TestCleanup(t *testing.T) {
	netlab.Require(t)
	t.Parallel()
	start := time.Now()
	var (
		names []string
		pid   int
	)
	t.Run("lab", func(t *testing.T) {
		lab := netlab.New(t, netlab.Options{})
		capture := lab.StartCapture(t, "left.pcap", netlab.CaptureOptions{AllPackets: true})
		lab.Blackhole(t, netlab.BothWays)
		ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		pid = capture.Pid()
		// Nothing leaves the lab: no default route, off-lab addresses are
		// unreachable before a packet is sent.
		for _, ns := range []*netlab.Namespace{lab.Client, lab.Server} {
			for _, fam := range []string{"-4", "-6"} {
				if out, err := ns.Exec("ip", fam, "route", "show", "default"); err != nil || strings.TrimSpace(out) != "" {
					t.Errorf("%s: ip %s route show default = %q, %v; want nothing", ns.Role, fam, out, err)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := lab.Client.DialTCP(ctx, "tcp4", "192.0.2.1:80", netlab.DialOptions{}); !errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("dial outside the lab: %v, want ENETUNREACH", err)
		}
		for _, n := range lab.Namespaces() {
			names = append(names, n.Name)
		}
		out, err := exec.Command("ip", "netns", "list").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !strings.Contains(string(out), n) {
				t.Fatalf("namespace %s missing from ip netns list:\n%s", n, out)
			}
		}
	})
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s left behind:\n%s", n, out)
		}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("tcpdump (pid %d) still exists: kill 0 = %v", pid, err)
	}

	// A namespace named after a dead process is stale.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("tt-%d-1-c", dead.Process.Pid)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", stale, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })
	removed, err := netlab.CleanupStale()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(removed, " "), stale) {
		t.Errorf("CleanupStale removed %v, want %s", removed, stale)
	}
	if _, err := os.Stat("/run/netns/" + stale); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", stale, err)
	}
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}

// TestSocketOptions checks that dial and listen options reach the sockets,
// that accepted sockets inherit the listener's, and that optional sysctls
// ("-" prefix) are skipped when the kernel lacks them.
func TestSocketOptions(t *testing.T) {
	netlab.Require(t)
	t.Parallel()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lab := netlab.New(t, netlab.Options{
		Sysctls: map[string]string{
			"net.ipv4.tcp_keepalive_time":       "3600",
			"-net.ipv4.tcp_no_such_sysctl":      "1",
			"-net.ipv4.tcp_syn_linear_timeouts": "4",
		},
		ServerSysctls: map[string]string{"net.ipv4.tcp_keepalive_time": "60"},
	})
	for ns, want := range map[*netlab.Namespace]string{lab.Client: "3600", lab.Server: "60"} {
		if v, err := ns.Sysctl("net.ipv4.tcp_keepalive_time"); err != nil || v != want {
			t.Errorf("%s tcp_keepalive_time = %q, %v; want %s", ns.Role, v, err, want)
		}
	}
	opts := netlab.SocketOptions{
		RcvBuf: 4096, SndBuf: 8192,
		Keepalive: true, KeepIdle: 2 * time.Second, KeepIntvl: time.Second, KeepCnt: 3,
		UserTimeout: 1500 * time.Millisecond,
		MSS:         1000,
		Nagle:       true,
	}
	ln, err := lab.Server.ListenTCP("tcp4", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{SocketOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln.SetDeadline(deadline(ctx))
	sc, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	get := func(conn *net.TCPConn, level, opt int) int {
		t.Helper()
		rc, err := conn.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) })
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}
	const (
		tcpKeepIdle    = 4  // TCP_KEEPIDLE
		tcpKeepIntvl   = 5  // TCP_KEEPINTVL
		tcpKeepCnt     = 6  // TCP_KEEPCNT
		tcpUserTimeout = 18 // TCP_USER_TIMEOUT
	)
	for name, conn := range map[string]*net.TCPConn{"dialed": c, "accepted": sc} {
		for _, o := range []struct {
			what       string
			level, opt int
			want       int
		}{
			{"SO_RCVBUF", syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2 * 4096},
			{"SO_SNDBUF", syscall.SOL_SOCKET, syscall.SO_SNDBUF, 2 * 8192},
			{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, tcpKeepIdle, 2},
			{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, tcpKeepIntvl, 1},
			{"TCP_KEEPCNT", syscall.IPPROTO_TCP, tcpKeepCnt, 3},
			{"TCP_USER_TIMEOUT", syscall.IPPROTO_TCP, tcpUserTimeout, 1500},
		} {
			if got := get(conn, o.level, o.opt); got != o.want {
				t.Errorf("%s %s = %d, want %d", name, o.what, got, o.want)
			}
		}
	}
	if got := get(c, syscall.IPPROTO_TCP, syscall.TCP_NODELAY); got != 0 {
		t.Errorf("dialed TCP_NODELAY = %d, want 0 (Nagle on)", got)
	}
	if got := get(c, syscall.IPPROTO_TCP, syscall.TCP_MAXSEG); got > 1000 {
		t.Errorf("dialed TCP_MAXSEG = %d, want <= 1000", got)
	}
	// Defaults: no keepalive unless asked, unlike the net package.
	c2, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := get(c2, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); got != 0 {
		t.Errorf("default dial SO_KEEPALIVE = %d, want 0", got)
	}
	if err := netlab.SetUserTimeout(c2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := get(c2, syscall.IPPROTO_TCP, tcpUserTimeout); got != 2000 {
		t.Errorf("SetUserTimeout: TCP_USER_TIMEOUT = %d, want 2000", got)
	}
	info, err := netlab.TCPInfo(c2)
	if err != nil || info.State != 1 {
		t.Errorf("TCPInfo = %+v, %v; want state 1 (established)", info, err)
	}
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}
