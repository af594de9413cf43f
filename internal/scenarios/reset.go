package scenarios

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/netlab"
)

// tcpClose is the kernel's TCP_CLOSE state as TCP_INFO reports it.
const tcpClose = 7

// waitClosed waits until c's socket is in state CLOSE: a RST arrived (or a
// timer killed it).
func waitClosed(ctx context.Context, c *net.TCPConn) error {
	return waitFor(ctx, "socket reset", func() (bool, error) {
		info, err := netlab.TCPInfo(c)
		if err != nil {
			return false, err
		}
		return info.State == tcpClose, nil
	})
}

// ClientAbort: after a request and an answer, the client closes with
// SO_LINGER 0 (RST|ACK). SR by the client, RSTO.
func ClientAbort(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	if err := netlab.Abort(c); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, s); err != nil {
		return nil, err
	}
	return []Expect{f.expect("SR-client-abort", classifier.SentReset, "client", "RSTO")}, nil
}

// ServerAbort: the server closes with SO_LINGER 0. RR by the server, RSTR.
func ServerAbort(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	if err := netlab.Abort(s); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, c); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RR-server-abort", classifier.ReceivedReset, "server", "RSTR")}, nil
}

// established connects and exchanges a request and an answer.
func established(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) (*flow, *net.TCPConn, *net.TCPConn, error) {
	return establishedWith(ctx, t, lab, network, netlab.DialOptions{})
}

// establishedWith is established with the client's socket set up by opts
// (keepalive, TCP_USER_TIMEOUT, ...).
func establishedWith(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, opts netlab.DialOptions) (*flow, *net.TCPConn, *net.TCPConn, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	c, s, err := f.connect(ctx, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := exchange(c, s, 40, 120); err != nil {
		return nil, nil, nil, err
	}
	return f, c, s, nil
}

// ClientCloseUnread: the server sends 100 bytes the client never reads;
// the client's close() then sends a RST instead of a FIN (RFC 2525 §2.17).
// SR by the client, RSTO.
func ClientCloseUnread(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(payload(100)); err != nil {
		return nil, err
	}
	if err := waitUnread(ctx, c, 100); err != nil {
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, s); err != nil {
		return nil, err
	}
	return []Expect{f.expect("SR-client-unread", classifier.SentReset, "client", "RSTO")}, nil
}

// ServerCloseUnread: the client sends 100 bytes the server never reads;
// the server's close() sends a RST. RR by the server, RSTR.
func ServerCloseUnread(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(payload(100)); err != nil {
		return nil, err
	}
	if err := waitUnread(ctx, s, 100); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, c); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RR-server-unread", classifier.ReceivedReset, "server", "RSTR")}, nil
}

// ClientKilled: an administrator destroys the client's socket with ss -K;
// the client's kernel sends RST|ACK. SR by the client, RSTO.
func ClientKilled(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, _, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	if err := kill(ctx, lab.Client, f.client.Port(), f.server.Port()); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, s); err != nil {
		return nil, err
	}
	return []Expect{f.expect("SR-client-killed", classifier.SentReset, "client", "RSTO")}, nil
}

// ServerLostState: the server loses its socket without a word reaching the
// client (ss -K, whose RST is dropped on the path: as a reboot). The
// client's next data reaches a host with no state for it, whose kernel
// answers with a bare RST (seq = the segment's ack, no ACK flag). RR by the
// server, RSTR.
func ServerLostState(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, _, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	drop := lab.Drop(t, f.s2c(netlab.Rule{Flags: netlab.RST}))
	if err := kill(ctx, lab.Server, f.server.Port(), f.client.Port()); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, "the server's RST dropped", func() (bool, error) {
		n, err := drop.Packets()
		return n > 0, err
	}); err != nil {
		return nil, err
	}
	if err := drop.Remove(); err != nil {
		return nil, err
	}
	if _, err := c.Write(payload(50)); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, c); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RR-server-lost-state", classifier.ReceivedReset, "server", "RSTR")}, nil
}

// DataAfterPeerClose: the server closes (FIN); the client reads EOF but
// writes anyway; the server's kernel, its socket fully closed, answers the
// data with a RST (TCPAbortOnData). A RST after the remote side's own FIN:
// RR by the server, RSTR.
func DataAfterPeerClose(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if err := readEOF(c); err != nil {
		return nil, fmt.Errorf("client read to EOF: %w", err)
	}
	if _, err := c.Write(payload(50)); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, c); err != nil {
		return nil, err
	}
	e := f.expect("RR-after-server-fin", classifier.ReceivedReset, "server", "RSTR")
	e.AsServer = classifier.AppAbnormalClose // the server's FIN turned into a reset
	return []Expect{e}, nil
}

// DataAfterLocalClose: the client closes (FIN) after reading everything;
// the server, having read EOF, sends more; the client's kernel answers with
// a RST (TCPAbortOnData). The local side's FIN turned into a reset: AA by
// the client, RSTO.
func DataAfterLocalClose(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	if err := readEOF(s); err != nil {
		return nil, fmt.Errorf("server read to EOF: %w", err)
	}
	if _, err := s.Write(payload(50)); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, s); err != nil {
		return nil, err
	}
	e := f.expect("AA-data-after-close", classifier.AppAbnormalClose, "client", "RSTO")
	e.AsServer = classifier.ReceivedReset // the remote side's reset
	return []Expect{e}, nil
}

// FirewallReset: after the handshake and an exchange, a firewall rule in
// the server host ("reject with tcp reset") answers the client's next data
// with a RST built by netfilter; the server's socket never hears of it.
// RR by the server (the RST carries its address), RSTR.
func FirewallReset(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, c, _, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	lab.RejectWithReset(t, lab.Server, netlab.Rule{Family: f.family(), SrcPort: f.client.Port(), DstPort: f.server.Port()})
	if _, err := c.Write(payload(50)); err != nil {
		return nil, err
	}
	if err := waitClosed(ctx, c); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RR-firewall", classifier.ReceivedReset, "server", "RSTR")}, nil
}

// Refused: connect to a port nobody listens on; the server's kernel
// answers the SYN with RST|ACK. RF by the server, REJ.
func Refused(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	dl, _ := ctx.Deadline()
	f := &flow{t: t, lab: lab, network: network, deadline: dl,
		client: netip.AddrPortFrom(lab.Client.Addr(network), nextPort()),
		server: netip.AddrPortFrom(lab.Server.Addr(network), nextPort()),
	}
	c, err := f.dial(ctx, netlab.DialOptions{})
	if err == nil {
		c.Close()
		return nil, fmt.Errorf("connect to closed port %v succeeded", f.server)
	}
	if err := wantErr("connect", err, syscall.ECONNREFUSED); err != nil {
		return nil, err
	}
	return []Expect{f.expect("RF-closed-port", classifier.Refused, "server", "REJ")}, nil
}
