package offline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/oracle"
	"github.com/tcptap/tcptap/record"
	"golang.org/x/sys/unix"
)

// The real-traffic oracle tests: real Linux TCP connections between
// network namespaces (internal/netlab), captured on the bridge port facing
// the client as a mirror port would, then read by tcptap and by tshark with
// the peer corpus's command. Per-direction packets, payload bytes and
// SYN/FIN/RST counts must be equal; the Wireshark-compatible analysis
// counts must be equal too unless realKnown explains why not; and each
// connection must get the reason code the traffic was made to produce
// (docs/reasons.md).

// realConn is one connection a scenario made, with what tcptap must say
// about it.
type realConn struct {
	client, server netip.AddrPort
	reason         classifier.Code
	actor          string // "client", "server" or "none"
}

// realScenario makes traffic in lab while a capture runs and returns the
// connections it made. It must leave nothing in flight: the capture is
// stopped when it returns.
type realScenario struct {
	name string
	// heavy scenarios (bulk transfers) run one at a time: on a small
	// machine several at once make tcpdump drop packets.
	heavy bool
	opts  netlab.Options
	run   func(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn
	check func(t *testing.T, rec *record.Record) // extra assertions on the first connection
}

// realKnown lists, per scenario and tolerant field, where tcptap's
// Wireshark-compatible count may differ from tshark 4.0.17 on real traffic,
// and why. An entry that matches no difference is reported as stale.
var realKnown = []struct{ scenario, field, reason string }{}

// realTimeout bounds each scenario (traffic, capture, tcptap and tshark).
const realTimeout = 40 * time.Second

const transferSize = 2 << 20

func TestRealTraffic(t *testing.T) {
	netlab.Require(t)
	if !oracle.Available() {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark not installed")
		}
		t.Skip("tshark not installed")
	}
	scenarios := []realScenario{
		{name: "transfer/ipv4-upload", heavy: true, run: func(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
			return transfer(t, ctx, lab, "tcp4", true, false)
		}, check: func(t *testing.T, r *record.Record) {
			// Payload bytes count retransmitted bytes again.
			if r.Bytes.Client < transferSize || r.Family != "ipv4" {
				t.Errorf("client payload bytes %d (%s), want at least %d over ipv4", r.Bytes.Client, r.Family, transferSize)
			}
		}},
		{name: "transfer/ipv6-download", heavy: true, run: func(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
			return transfer(t, ctx, lab, "tcp6", false, false)
		}, check: func(t *testing.T, r *record.Record) {
			if r.Bytes.Server < transferSize || r.Family != "ipv6" {
				t.Errorf("server payload bytes %d (%s), want at least %d over ipv6", r.Bytes.Server, r.Family, transferSize)
			}
		}},
		{name: "loss/ipv4-upload", heavy: true, run: func(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
			return transfer(t, ctx, lab, "tcp4", true, true)
		}, check: func(t *testing.T, r *record.Record) {
			if r.Retransmissions.Client == 0 {
				t.Errorf("no client retransmission with 5%% loss")
			}
		}},
		{name: "loss/ipv6-download", heavy: true, run: func(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
			return transfer(t, ctx, lab, "tcp6", false, true)
		}, check: func(t *testing.T, r *record.Record) {
			if r.Retransmissions.Server == 0 {
				t.Errorf("no server retransmission with 5%% loss")
			}
		}},
		{name: "abort/client", run: func(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
			return abort(t, ctx, lab, true)
		}},
		{name: "abort/server", run: func(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
			return abort(t, ctx, lab, false)
		}},
		{name: "refused", run: refused},
		{name: "retransmit-timeout", opts: netlab.Options{ClientSysctls: map[string]string{"net.ipv4.tcp_retries2": "3"}},
			run: retransmitTimeout, check: func(t *testing.T, r *record.Record) {
				if r.Retransmissions.Client < 3 || r.Resets.Client+r.Resets.Server != 0 {
					t.Errorf("retransmissions %+v, resets %+v; want >= 3 client retransmissions and no RST", r.Retransmissions, r.Resets)
				}
			}},
		{name: "zero-window", run: zeroWindow, check: func(t *testing.T, r *record.Record) {
			if r.ZeroWindows.Server == 0 || r.WindowProbes.Client == 0 {
				t.Errorf("zero windows %+v, window probes %+v; want server zero windows and client probes", r.ZeroWindows, r.WindowProbes)
			}
			if r.KeepAlives.Client != 0 {
				t.Errorf("%d client keepalives: persist probes taken for keepalives", r.KeepAlives.Client)
			}
		}},
	}
	start := time.Now()
	all := oracle.NewTally()
	used := make([]bool, len(realKnown))
	t.Run("scenarios", func(t *testing.T) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				if sc.heavy {
					realHeavy.Lock()
					defer realHeavy.Unlock()
				}
				tally := runScenario(t, sc, used)
				realMu.Lock()
				defer realMu.Unlock()
				all.Add(tally)
			})
		}
	})
	for i, k := range realKnown {
		if !used[i] && !t.Failed() {
			t.Errorf("stale realKnown entry %q %s (%s): no such difference any more; delete it", k.scenario, k.field, k.reason)
		}
	}
	t.Logf("real traffic vs tshark: %s", all.Summary())
	t.Logf("real traffic: %d scenarios in %v", len(scenarios), time.Since(start).Round(time.Millisecond))
}

func runScenario(t *testing.T, sc realScenario, used []bool) *oracle.Tally {
	ctx, cancel := context.WithTimeout(context.Background(), realTimeout)
	defer cancel()
	lab := netlab.New(t, sc.opts)
	capture := lab.StartCapture(t, strings.ReplaceAll(sc.name, "/", "-")+".pcap", netlab.CaptureOptions{})
	conns := sc.run(t, ctx, lab)
	pcap := capture.Stop()
	if t.Failed() {
		t.FailNow()
	}

	recs := oracleRun(t, ctx, pcap)
	ts, err := oracle.Run(ctx, "", pcap)
	if err != nil {
		t.Fatal(err)
	}
	if ts.TsharkRC != 0 {
		t.Fatalf("tshark exit status %d: %v", ts.TsharkRC, ts.TsharkStderr)
	}

	// Reasons.
	for i, want := range conns {
		var got []*record.Record
		for j := range recs {
			r := &recs[j]
			if oracle.TupleOf(r.Client, r.Server) == oracle.TupleOf(want.client, want.server) ||
				!want.client.IsValid() && r.Server == want.server {
				got = append(got, r)
			}
		}
		if len(got) != 1 {
			t.Errorf("%s -> %s: %d records, want 1", want.client, want.server, len(got))
			continue
		}
		r := got[0]
		if want.client.IsValid() && r.Client != want.client || r.Server != want.server {
			t.Errorf("record %s -> %s, want client %s and server %s", r.Client, r.Server, want.client, want.server)
		}
		if r.Reason != want.reason || r.Actor != want.actor || r.Local != "client" {
			t.Errorf("%s -> %s: reason %s actor %s local %s, want %s actor %s local client (history %s, conn_state %s, state %s, end %s)",
				r.Client, r.Server, r.Reason, r.Actor, r.Local, want.reason, want.actor, r.History, r.ConnState, r.State, r.End)
		} else {
			t.Logf("%s -> %s: %s (%s), actor %s, conn_state %s, history %s", r.Client, r.Server, r.Reason, r.ReasonText, r.Actor, r.ConnState, r.History)
		}
		if i == 0 && sc.check != nil {
			sc.check(t, r)
		}
	}

	// tshark.
	groups := oracle.Match(ts.Streams, recs)
	diffs, tally := oracle.Compare(groups)
	for _, g := range groups {
		if !g.Paired() {
			t.Errorf("%s: tshark has %d streams, tcptap %d records", g.Tuple, len(g.Streams), len(g.Records))
		}
	}
	for _, d := range diffs {
		explained := false
		if !d.Exact {
			for i, k := range realKnown {
				if k.scenario == sc.name && k.field == d.Field {
					realMu.Lock()
					used[i] = true
					realMu.Unlock()
					explained = true
					t.Logf("known disagreement: %s (%s)", d, k.reason)
				}
			}
		}
		if !explained {
			t.Errorf("tshark disagrees: %s", d)
		}
	}
	return tally
}

// transfer moves transferSize bytes client→server (upload: the client
// closes first, AN) or server→client (download: the server closes first,
// PN), with 5 % random loss each way when loss is set.
func transfer(t *testing.T, ctx context.Context, lab *netlab.Lab, network string, upload, loss bool) []realConn {
	ln, err := lab.Server.ListenTCP(network, "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if loss {
		lab.Loss(t, 5, netlab.BothWays)
	}
	served := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetDeadline(deadline(ctx))
		if upload {
			n, err := io.Copy(io.Discard, c)
			if err == nil && n != transferSize {
				err = fmt.Errorf("server read %d bytes, want %d", n, transferSize)
			}
			served <- err // Close: the server's FIN, after the client's
			return
		}
		if err := pace(c); err != nil {
			served <- err
			return
		}
		_, err = c.Write(make([]byte, transferSize))
		served <- err // Close: the server's FIN first
	}()
	c, err := lab.Client.DialTCP(ctx, network, ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(deadline(ctx))
	want := realConn{client: addrPort(c.LocalAddr()), server: addrPort(ln.Addr())}
	if upload {
		if err := pace(c); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(make([]byte, transferSize)); err != nil {
			t.Fatalf("client write: %v", err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, c); n != 0 || err != nil {
			t.Fatalf("client read %d bytes, %v; want EOF", n, err)
		}
		want.reason, want.actor = classifier.AppNormalClose, "client"
	} else {
		n, err := io.Copy(io.Discard, c)
		if err != nil || n != transferSize {
			t.Fatalf("client read %d bytes, %v; want %d", n, err, transferSize)
		}
		want.reason, want.actor = classifier.PeerNormalClose, "server"
	}
	if err := waitServed(ctx, served); err != nil {
		t.Fatalf("server: %v", err)
	}
	c.Close()
	settle(ctx, loss)
	return []realConn{want}
}

// abort exchanges a request and a response, then one side closes with
// SO_LINGER 0: a RST instead of a FIN (SR when the client aborts, RR when
// the server does).
func abort(t *testing.T, ctx context.Context, lab *netlab.Lab, byClient bool) []realConn {
	ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	aborted := make(chan struct{})
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			served <- err
			return
		}
		c.SetDeadline(deadline(ctx))
		buf := make([]byte, 100)
		if _, err := io.ReadFull(c, buf); err != nil {
			c.Close()
			served <- err
			return
		}
		if _, err := c.Write(buf); err != nil {
			c.Close()
			served <- err
			return
		}
		if !byClient {
			served <- netlab.Abort(c)
			return
		}
		<-aborted
		_, err = c.Read(buf) // the client's RST
		if !errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("server read after the client's abort: %v, want ECONNRESET", err)
		} else {
			err = nil
		}
		c.Close()
		served <- err
	}()
	c, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(deadline(ctx))
	want := realConn{client: addrPort(c.LocalAddr()), server: addrPort(ln.Addr())}
	buf := make([]byte, 100)
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if byClient {
		if err := netlab.Abort(c); err != nil {
			t.Fatal(err)
		}
		close(aborted)
		want.reason, want.actor = classifier.SentReset, "client"
	} else {
		if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("client read after the server's abort: %v, want ECONNRESET", err)
		}
		want.reason, want.actor = classifier.ReceivedReset, "server"
	}
	if err := waitServed(ctx, served); err != nil {
		t.Fatalf("server: %v", err)
	}
	settle(ctx, false)
	return []realConn{want}
}

// refused connects to a port nobody listens on: SYN, then RST|ACK.
func refused(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
	ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closed := addrPort(ln.Addr())
	ln.Close()
	c, err := lab.Client.DialTCP(ctx, "tcp4", closed.String(), netlab.DialOptions{
		LocalAddr: netip.AddrPortFrom(lab.Client.Addr("tcp4"), 0),
	})
	if err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded, want connection refused", closed)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want ECONNREFUSED", closed, err)
	}
	settle(ctx, false)
	// The client's port is not known from a failed dial: the one record
	// on the server's port is it.
	return []realConn{{server: closed, reason: classifier.Refused, actor: "server"}}
}

// retransmitTimeout cuts the path after the handshake (tcp_retries2=3 in
// the client): the client's data is retransmitted until its write times
// out (ETIMEDOUT, no RST). The capture goes on for 2 s; then the path is
// restored and a short connection marks the end of the capture, as the
// next packet on a busy mirror port would: offline, the capture ends at
// its last packet, so the client's silence is only visible with something
// captured after it.
func retransmitTimeout(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
	ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 2)
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
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
		t.Fatal("no accepted connection")
	}
	// The server's socket stays open and silent until the capture is over
	// (closing it would send a FIN, and the client, which has no socket
	// any more, would answer with a RST).
	t.Cleanup(func() { sc.Close() })
	main := realConn{client: addrPort(c.LocalAddr()), server: addrPort(ln.Addr()),
		reason: classifier.RetransmitTimeout, actor: "client"}

	hole := lab.Blackhole(t, netlab.BothWays)
	sent := time.Now()
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(deadline(ctx))
	_, err = c.Read(make([]byte, 100))
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("client read: %v after %v; want ETIMEDOUT", err, time.Since(sent))
	}
	t.Logf("client write timed out after %v", time.Since(sent).Round(time.Millisecond))
	sleep(ctx, 2*time.Second)
	if err := hole.Remove(); err != nil {
		t.Fatal(err)
	}

	// The marker: a request, a response, the client's FIN first (AN).
	m, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.SetDeadline(deadline(ctx))
	var ms *net.TCPConn
	select {
	case ms = <-accepted:
	case <-ctx.Done():
		t.Fatal("marker not accepted")
	}
	defer ms.Close()
	ms.SetDeadline(deadline(ctx))
	marker := realConn{client: addrPort(m.LocalAddr()), server: addrPort(ln.Addr()),
		reason: classifier.AppNormalClose, actor: "client"}
	if _, err := m.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := m.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, ms); err != nil {
		t.Fatal(err)
	}
	ms.Close()
	if _, err := io.Copy(io.Discard, m); err != nil {
		t.Fatal(err)
	}
	settle(ctx, false)
	return []realConn{main, marker}
}

// zeroWindow makes the server's receive window close: a small SO_RCVBUF,
// a server that stops reading for 2 s while the client sends, then reads
// everything; the client probes the zero window (Linux: an empty segment
// at snd_una-1, which tshark calls Keep-Alive) until it opens. The client
// closes first (AN).
func zeroWindow(t *testing.T, ctx context.Context, lab *netlab.Lab) []realConn {
	ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{RcvBuf: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 256 << 10
	served := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetDeadline(deadline(ctx))
		sleep(ctx, 2*time.Second) // not reading: the window closes
		n, err := io.Copy(io.Discard, c)
		if err == nil && n != size {
			err = fmt.Errorf("server read %d bytes, want %d", n, size)
		}
		served <- err
	}()
	c, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(deadline(ctx))
	want := realConn{client: addrPort(c.LocalAddr()), server: addrPort(ln.Addr()),
		reason: classifier.AppNormalClose, actor: "client"}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatalf("client write: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, c); n != 0 || err != nil {
		t.Fatalf("client read %d bytes, %v; want EOF", n, err)
	}
	if err := waitServed(ctx, served); err != nil {
		t.Fatalf("server: %v", err)
	}
	c.Close()
	settle(ctx, false)
	return []realConn{want}
}

// realMu guards what TestRealTraffic's parallel scenarios share;
// realHeavy lets one heavy scenario run at a time.
var realMu, realHeavy sync.Mutex

// transferRate paces bulk senders (SO_MAX_PACING_RATE, bytes per second):
// at full veth speed a 2 MB burst can outrun tcpdump's buffer on a busy
// machine, and a capture with "packets dropped by kernel" is useless.
const transferRate = 8 << 20

func pace(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, transferRate)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_MAX_PACING_RATE: %w", serr)
	}
	return nil
}

func waitServed(ctx context.Context, served <-chan error) error {
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle lets the last segments (the final ACK; with loss, a retransmitted
// FIN and its ACK) reach the capture before it is stopped.
func settle(ctx context.Context, loss bool) {
	d := 100 * time.Millisecond
	if loss {
		d = 700 * time.Millisecond
	}
	sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
