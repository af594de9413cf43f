package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/netlab"
)

// SYNTimeout: the client's SYNs are dropped on the path (the server
// listens, nothing reaches it) until connect fails with ETIMEDOUT; Linux
// sends no RST. ST by the client, S0.
func SYNTimeout(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, err
	}
	lab.Drop(t, f.c2s(netlab.Rule{Flags: netlab.SYN}))
	c, err := f.dial(ctx, netlab.DialOptions{})
	if err == nil {
		c.Close()
		return nil, fmt.Errorf("connect through dropped SYNs succeeded")
	}
	if err := wantErr("connect", err, syscall.ETIMEDOUT); err != nil {
		return nil, err
	}
	return []Expect{f.expect("ST-syn-dropped", classifier.SYNTimeout, "client", "S0")}, nil
}

// RetransmitTimeout: after the handshake and an exchange the path is cut;
// the client's next data is retransmitted with backing-off gaps until the
// kernel gives up with ETIMEDOUT (tcp_retries2), sending no RST. RT by the
// client, S1.
func RetransmitTimeout(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, _, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	f.blackhole()
	if _, err := c.Write(payload(100)); err != nil {
		return nil, err
	}
	if err := wantErr("client read", readErr(c), syscall.ETIMEDOUT); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RT-blackhole", classifier.RetransmitTimeout, "client", "S1")}, nil
}

// InteractiveLinkDown: a small interactive session (1-byte writes echoed by
// the server); the server's link goes down; the client's next byte is
// retransmitted until ETIMEDOUT. The retransmitted byte has seq = next
// expected - 1 and length 1, which tshark calls a keep-alive: it must still
// be RT by the client, S1. The link is brought back up before returning.
// It takes the whole lab's server down: run it in a lab of its own.
func InteractiveLinkDown(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, err
	}
	c, s, err := f.connect(ctx, netlab.DialOptions{})
	if err != nil {
		return nil, err
	}
	for i := 0; i < 5; i++ {
		if err := send(c, s, 1); err != nil {
			return nil, err
		}
		if err := send(s, c, 1); err != nil {
			return nil, err
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	lab.SetLink(t, lab.Server, false)
	if _, err := c.Write(payload(1)); err != nil {
		return nil, err
	}
	rerr := readErr(c)
	lab.SetLink(t, lab.Server, true)
	if err := wantErr("client read", rerr, syscall.ETIMEDOUT); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RT-interactive-link-down", classifier.RetransmitTimeout, "client", "S1")}, nil
}

// OrphanRetransmit: the path is cut; the client writes 100 bytes and closes
// at once, so its orphaned socket holds data and a FIN; both are
// retransmitted until tcp_orphan_retries runs out, then the socket vanishes
// silently. RT by the client; its FIN was seen, the server's was not: S2.
//
// The data and the FIN leave in one segment (TCP_CORK, write, shutdown, in
// one burst of syscalls): sent separately, a FIN queued after the first
// retransmission timeout (a busy machine delaying close() by 200 ms) waits
// behind the retransmitted data for a congestion window that never opens,
// and never appears on the wire.
func OrphanRetransmit(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, _, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	f.blackhole()
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 1); serr != nil {
			return
		}
		var n int
		if n, serr = unix.Write(int(fd), payload(100)); serr == nil && n != 100 {
			serr = fmt.Errorf("short write: %d bytes", n)
		}
		if serr == nil {
			serr = unix.Shutdown(int(fd), unix.SHUT_WR)
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	filter := ssFilter(f.client.Port(), f.server.Port())
	if err := waitFor(ctx, "the orphaned socket to give up", func() (bool, error) {
		out, err := sockets(ctx, lab.Client, filter)
		if err == nil && out == "" {
			return true, nil
		}
		return false, errors.Join(err, sleep(ctx, 100*time.Millisecond))
	}); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RT-orphan", classifier.RetransmitTimeout, "client", "S2")}, nil
}

// zeroWindow sets up a connection whose server never reads, with a small
// receive buffer, and a client that writes until the server's window is 0
// with nothing in flight: the client is in persist mode, its probe timer
// running. The writer's error arrives on the returned channel.
func zeroWindow(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, userTimeout time.Duration) (*flow, *net.TCPConn, <-chan error, error) {
	f, c, _, werr, err := zeroWindowOf(ctx, t, lab, network, userTimeout, 1<<20)
	return f, c, werr, err
}

// zeroWindowOf is zeroWindow writing total bytes, and it also returns the
// server's side, which can read them to reopen the window.
func zeroWindowOf(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, userTimeout time.Duration, total int) (*flow, *net.TCPConn, *net.TCPConn, <-chan error, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{RcvBuf: 4096})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c, s, err := f.connect(ctx, netlab.DialOptions{SocketOptions: netlab.SocketOptions{UserTimeout: userTimeout}})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload(total))
		werr <- err
	}()
	err = waitFor(ctx, "a zero window with nothing in flight", func() (bool, error) {
		select {
		case err := <-werr:
			return false, fmt.Errorf("writer ended early: %v", err)
		default:
		}
		info, err := netlab.TCPInfo(c)
		if err != nil {
			return false, err
		}
		return info.Snd_wnd == 0 && info.Unacked == 0 && info.Notsent_bytes > 0, nil
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return f, c, s, werr, nil
}

// PersistBlackhole: the server stops reading until its window is 0; then
// the path is cut, so the client's window probes (empty, seq = snd_una - 1)
// go unanswered; after tcp_retries2 probes (or TCP_USER_TIMEOUT, 3 s) the
// client gives up silently. PT by the client, S1.
func PersistBlackhole(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, _, werr, err := zeroWindow(ctx, t, lab, network, 3*time.Second)
	if err != nil {
		return nil, err
	}
	f.blackhole()
	if err := wantErr("client write", waitErr(ctx, werr), syscall.ETIMEDOUT); err != nil {
		return nil, err
	}
	return []Expect{f.expect("PT-blackhole", classifier.PersistTimeout, "client", "S1")}, nil
}

// PersistUserTimeout: as PersistBlackhole, but nothing is cut: the server
// answers the probes with window 0 (some go unanswered: the server
// rate-limits those replies) and the client's TCP_USER_TIMEOUT (3 s from
// the first probe) ends the connection silently; the server's socket stays
// ESTABLISHED. PT by the client, S1.
func PersistUserTimeout(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, _, werr, err := zeroWindow(ctx, t, lab, network, 3*time.Second)
	if err != nil {
		return nil, err
	}
	if err := wantErr("client write", waitErr(ctx, werr), syscall.ETIMEDOUT); err != nil {
		return nil, err
	}
	return []Expect{f.expect("PT-user-timeout", classifier.PersistTimeout, "client", "S1")}, nil
}

// waitErr waits for an error from ch, bounded by ctx.
func waitErr(ctx context.Context, ch <-chan error) error {
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// KeepaliveTimeout: SO_KEEPALIVE with TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s,
// TCP_KEEPCNT 2 on the client; the path is cut after an exchange; the
// client's probes (empty, seq = snd_nxt - 1) go unanswered and the client
// sends a RST as it gives up with ETIMEDOUT. KT by the client, RSTO.
func KeepaliveTimeout(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, _, err := establishedWith(ctx, t, lab, network, netlab.DialOptions{SocketOptions: netlab.SocketOptions{
		Keepalive: true, KeepIdle: time.Second, KeepIntvl: time.Second, KeepCnt: 2,
	}})
	if err != nil {
		return nil, err
	}
	f.blackhole()
	if err := wantErr("client read", readErr(c), syscall.ETIMEDOUT); err != nil {
		return nil, err
	}
	return []Expect{f.expect("KT-blackhole", classifier.KeepaliveTimeout, "client", "RSTO")}, nil
}
