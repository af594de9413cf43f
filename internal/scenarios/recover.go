package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/netlab"
)

// The recovery scenarios put a connection through a fault it survives, or
// one it dies of only after the kernel has retried for a long time, with
// the kernel's default retransmission settings (tcp_retries2 = 15: a lab
// built with netlab.Options{}, not LabOptions). They are what the live
// sensor must not call dead too early: a verdict given while the sender is
// still retrying would be wrong, and its remaining packets would make a
// second, mid-stream record.
//
// Each calls during, while the fault holds (at least AtRiskWithin after it
// began, so the live sensor has had time to show the risk), with the
// connection's expectation and the risk the sensor should show then
// (classifier.NoRisk when none), so a test can look at the sensor while the
// connection suffers.

// During is called while a recovery scenario's fault holds.
type During func(e Expect, risk classifier.Risk) error

// AtRiskWithin is how soon after the first unanswered retransmission or
// probe the live sensor shows a connection at risk.
const AtRiskWithin = 2 * time.Second

// faults installs drops of every segment of the flow in both directions
// and returns a function that removes them (the path heals).
func (f *flow) cut() (heal func() error) {
	a := f.lab.Drop(f.t, f.c2s(netlab.Rule{}))
	b := f.lab.Drop(f.t, f.s2c(netlab.Rule{}))
	return func() error { return errors.Join(a.Remove(), b.Remove()) }
}

// closeBoth closes the client first, then the server once it read the
// client's FIN: AN by the client, SF.
func closeBoth(c, s *net.TCPConn) error {
	if err := c.CloseWrite(); err != nil {
		return err
	}
	if err := readEOF(s); err != nil {
		return fmt.Errorf("server reading to the client's FIN: %w", err)
	}
	if err := s.Close(); err != nil {
		return err
	}
	if err := readEOF(c); err != nil {
		return fmt.Errorf("client reading to the server's FIN: %w", err)
	}
	return c.Close()
}

// BlackholeHealed: after an exchange the path is cut in both directions
// for hold; the client writes meanwhile, so its data is retransmitted with
// backing-off gaps; then the path heals, the data gets through at the next
// retransmission, and the client closes normally. One connection, AN by the
// client, SF; at risk (retransmitting) while the path is cut.
func BlackholeHealed(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, hold time.Duration, during During) ([]Expect, error) {
	f, c, s, err := established(ctx, t, lab, network)
	if err != nil {
		return nil, err
	}
	e := f.expect("AN-blackhole-healed", classifier.AppNormalClose, "client", "SF")
	heal := f.cut()
	start := time.Now()
	if err := writeIntoCut(ctx, c, e, during); err != nil {
		return nil, err
	}
	if err := sleep(ctx, hold-time.Since(start)); err != nil {
		return nil, err
	}
	if err := heal(); err != nil {
		return nil, err
	}
	buf := make([]byte, 100)
	if _, err := readFull(s, buf); err != nil {
		return nil, fmt.Errorf("server reading the retransmitted data after the path healed: %w", err)
	}
	return []Expect{e}, closeBoth(c, s)
}

// ZeroWindowReleased: the server stops reading until its window is 0 and
// holds it there for hold, the client probing it with backing-off gaps;
// then the server reads everything and the client closes normally. One
// connection, AN by the client, SF; at risk (zero_window) while the window
// is closed.
func ZeroWindowReleased(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, hold time.Duration, during During) ([]Expect, error) {
	const total = 256 << 10
	f, c, s, werr, err := zeroWindowOf(ctx, t, lab, network, 0, total)
	if err != nil {
		return nil, err
	}
	e := f.expect("AN-zero-window-released", classifier.AppNormalClose, "client", "SF")
	start := time.Now()
	if err := sleep(ctx, AtRiskWithin); err != nil {
		return nil, err
	}
	if err := during(e, classifier.RiskZeroWindow); err != nil {
		return nil, err
	}
	if err := sleep(ctx, hold-time.Since(start)); err != nil {
		return nil, err
	}
	buf := make([]byte, total)
	if _, err := readFull(s, buf); err != nil {
		return nil, fmt.Errorf("server reading after the window reopened: %w", err)
	}
	if err := waitErr(ctx, werr); err != nil {
		return nil, fmt.Errorf("client write: %w", err)
	}
	return []Expect{e}, closeBoth(c, s)
}

// KeepaliveAnswered: SO_KEEPALIVE with 1 s idle and interval on the client;
// the connection idles for hold while the server answers every probe; then
// the client closes normally. One connection, AN by the client, SF; never
// at risk.
func KeepaliveAnswered(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, hold time.Duration, during During) ([]Expect, error) {
	f, c, s, err := establishedWith(ctx, t, lab, network, netlab.DialOptions{SocketOptions: netlab.SocketOptions{
		Keepalive: true, KeepIdle: time.Second, KeepIntvl: time.Second, KeepCnt: 3,
	}})
	if err != nil {
		return nil, err
	}
	e := f.expect("AN-keepalive-answered", classifier.AppNormalClose, "client", "SF")
	start := time.Now()
	if err := sleep(ctx, hold/2); err != nil {
		return nil, err
	}
	if err := during(e, classifier.NoRisk); err != nil {
		return nil, err
	}
	if err := sleep(ctx, hold-time.Since(start)); err != nil {
		return nil, err
	}
	return []Expect{e}, closeBoth(c, s)
}

// BlackholeGivesUp: the path is cut for good after an exchange; the client
// writes, and its data is retransmitted with backing-off gaps until its
// TCP_USER_TIMEOUT (userTimeout: with the default tcp_retries2 Linux would
// go on for about 15 minutes) ends the connection silently. during is
// called twice: AtRiskWithin after the write, and shortly before the user
// timeout, while the kernel still retries (no verdict may have been given
// then). RT by the client, S1. It returns when the kernel gave up.
func BlackholeGivesUp(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, userTimeout time.Duration, during During) ([]Expect, error) {
	f, c, _, err := establishedWith(ctx, t, lab, network, netlab.DialOptions{SocketOptions: netlab.SocketOptions{UserTimeout: userTimeout}})
	if err != nil {
		return nil, err
	}
	e := f.expect("RT-blackhole-gives-up", classifier.RetransmitTimeout, "client", "S1")
	f.cut()
	start := time.Now()
	if err := writeIntoCut(ctx, c, e, during); err != nil {
		return nil, err
	}
	if err := sleep(ctx, userTimeout-time.Since(start)-time.Second); err != nil {
		return nil, err
	}
	if err := during(e, classifier.RiskRetransmitting); err != nil {
		return nil, err
	}
	if err := wantErr("client read", readErr(c), syscall.ETIMEDOUT); err != nil {
		return nil, err
	}
	return []Expect{e}, nil
}

// writeIntoCut writes 100 bytes the cut path drops, so the client
// retransmits them, and calls during once the sensor has had time to show
// the risk.
func writeIntoCut(ctx context.Context, c *net.TCPConn, e Expect, during During) error {
	if _, err := c.Write(payload(100)); err != nil {
		return err
	}
	if err := sleep(ctx, AtRiskWithin); err != nil {
		return err
	}
	return during(e, classifier.RiskRetransmitting)
}

// readFull reads len(buf) bytes from c.
func readFull(c *net.TCPConn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
