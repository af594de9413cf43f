package scenarios

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/netlab"
)

// PeerClose: the server answers and closes first; the client reads to EOF
// and closes. PN by the server, SF.
func PeerClose(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, err
	}
	if err := peerClose(ctx, f); err != nil {
		return nil, err
	}
	return []Expect{f.expect("PN-server-closes", classifier.PeerNormalClose, "server", "SF")}, nil
}

func peerClose(ctx context.Context, f *flow) error {
	c, s, err := f.connect(ctx, netlab.DialOptions{})
	if err != nil {
		return err
	}
	if err := exchange(c, s, 40, 120); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	if err := readEOF(c); err != nil {
		return fmt.Errorf("client read to EOF: %w", err)
	}
	return c.Close()
}

// AppClose: request and answer, then the client closes first; the server
// reads EOF and closes. AN by the client, SF.
func AppClose(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, err
	}
	if err := appClose(ctx, f); err != nil {
		return nil, err
	}
	return []Expect{f.expect("AN-client-closes", classifier.AppNormalClose, "client", "SF")}, nil
}

func appClose(ctx context.Context, f *flow) error {
	c, s, err := f.connect(ctx, netlab.DialOptions{})
	if err != nil {
		return err
	}
	if err := exchange(c, s, 40, 120); err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	if err := readEOF(s); err != nil {
		return fmt.Errorf("server read to EOF: %w", err)
	}
	if err := s.Close(); err != nil {
		return err
	}
	// The last ACK: wait until the server's socket has left LAST_ACK, so
	// the close is complete on the wire when we return.
	return waitGone(ctx, f.lab.Server, f.server.Port(), f.client.Port())
}

// waitGone waits until ns has no socket lport→rport other than TIME_WAIT.
func waitGone(ctx context.Context, ns *netlab.Namespace, lport, rport uint16) error {
	return waitFor(ctx, "socket closed in "+ns.Name, func() (bool, error) {
		out, err := ns.ExecContext(ctx, "ss", "-Htan", "exclude", "time-wait", ssFilter(lport, rport))
		return out == "", err
	})
}

// HalfClose: the client sends its request and shuts down its sending side
// (FIN first); the server reads to EOF, answers 64 KB and closes; the client
// reads to EOF and closes. AN by the client, SF.
func HalfClose(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, err
	}
	c, s, err := f.connect(ctx, netlab.DialOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(payload(300)); err != nil {
		return nil, err
	}
	if err := c.CloseWrite(); err != nil {
		return nil, err
	}
	n, err := io.Copy(io.Discard, s)
	if err != nil || n != 300 {
		return nil, fmt.Errorf("server read %d bytes, %v; want 300 then EOF", n, err)
	}
	if _, err := s.Write(payload(64 << 10)); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	n, err = io.Copy(io.Discard, c)
	if err != nil || n != 64<<10 {
		return nil, fmt.Errorf("client read %d bytes, %v; want 64 KB then EOF", n, err)
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	return []Expect{f.expect("AN-half-close", classifier.AppNormalClose, "client", "SF")}, nil
}

// BulkWithLoss: paced, through 5 % random loss in each direction (data and ACKs
// alike), the client sends 4 MB and shuts down its sending side; the server
// reads to EOF, sends 4 MB back and closes; the client reads to EOF and
// closes. The losses are recovered (fast retransmits, RTOs): AN by the
// client, SF, never RT.
func BulkWithLoss(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	const size = 4 << 20
	// With the lab's tcp_retries2=3 a connection under constant loss can
	// time out while it still makes progress: the kernel's retransmission
	// budget (~3 s at RTO_MIN) runs from the first retransmission of a loss
	// recovery that 5 % loss keeps from ever ending (seen: the server gave
	// up with ETIMEDOUT after two RTOs). A 30 s TCP_USER_TIMEOUT on both
	// sides replaces that budget for this scenario only.
	opts := netlab.SocketOptions{UserTimeout: 30 * time.Second}
	f, err := newFlow(ctx, t, lab, network, opts)
	if err != nil {
		return nil, err
	}
	c, s, err := f.connect(ctx, netlab.DialOptions{SocketOptions: opts})
	if err != nil {
		return nil, err
	}
	lab.Drop(t, f.c2s(netlab.Rule{Percent: 5}))
	lab.Drop(t, f.s2c(netlab.Rule{Percent: 5}))
	served := make(chan error, 1)
	go func() {
		err := func() error {
			n, err := io.Copy(io.Discard, s)
			if err != nil || n != size {
				return fmt.Errorf("server read %d bytes, %v; want %d then EOF", n, err, size)
			}
			if err := pacedWrite(ctx, s, size); err != nil {
				return fmt.Errorf("server write: %w", err)
			}
			return s.Close()
		}()
		if err != nil {
			c.SetDeadline(time.Now()) // unblock the client
		}
		served <- err
	}()
	clientErr := func() error {
		if err := pacedWrite(ctx, c, size); err != nil {
			return fmt.Errorf("client write: %w", err)
		}
		if err := c.CloseWrite(); err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, c)
		if err != nil || n != size {
			return fmt.Errorf("client read %d bytes, %v; want %d then EOF", n, err, size)
		}
		return nil
	}()
	if clientErr != nil {
		select {
		case err := <-served:
			if err != nil {
				return nil, err
			}
		default:
		}
		return nil, clientErr
	}
	if err := waitErr(ctx, served); err != nil {
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	// The client's last ACK may be lost and the server's FIN retransmitted.
	if err := waitGone(ctx, lab.Server, f.server.Port(), f.client.Port()); err != nil {
		return nil, err
	}
	return []Expect{f.expect("AN-bulk-loss", classifier.AppNormalClose, "client", "SF")}, nil
}

// pacedWrite writes n bytes in 16 KB chunks 4 ms apart (at most ~4 MB/s):
// at full veth speed, or even at 8 MB/s with two transfers at once, the
// capture's tcpdump (immediate mode, 2 cores, default 2 MB buffer) drops
// packets.
func pacedWrite(ctx context.Context, c *net.TCPConn, n int) error {
	const chunk = 16 << 10
	buf := payload(chunk)
	for n > 0 {
		k := min(n, chunk)
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
		if err := sleep(ctx, 4*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// PortReuse: a first connection closed by the server first (so the server,
// not the client, holds TIME_WAIT), then a second connection from the same
// client port to the same server port, closed by the client first. Two
// records on one 4-tuple: PN then AN, both SF.
func PortReuse(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, err
	}
	if err := peerClose(ctx, f); err != nil {
		return nil, fmt.Errorf("first connection: %w", err)
	}
	// The client's socket leaves LAST_ACK with the server's ACK.
	if err := waitGone(ctx, lab.Client, f.client.Port(), f.server.Port()); err != nil {
		return nil, err
	}
	if err := appClose(ctx, f); err != nil {
		return nil, fmt.Errorf("second connection: %w", err)
	}
	return []Expect{
		f.expect("port-reuse", classifier.PeerNormalClose, "server", "SF"),
		f.expect("port-reuse", classifier.AppNormalClose, "client", "SF"),
	}, nil
}

// Open: a connection that exchanged data and is still open when the
// capture ends. OP, S1.
func Open(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	f, err := newFlow(ctx, t, lab, network, netlab.SocketOptions{})
	if err != nil {
		return nil, err
	}
	c, s, err := f.connect(ctx, netlab.DialOptions{})
	if err != nil {
		return nil, err
	}
	if err := exchange(c, s, 40, 120); err != nil {
		return nil, err
	}
	return []Expect{f.expect("OP-open", classifier.StillOpen, "none", "S1")}, nil
}

// Idle: a connection that exchanged data and then idles. With the table's
// idle timeout (2 s) shorter than the silence that follows (4 s): IT, S1.
func Idle(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	exps, err := Open(ctx, t, lab, network)
	for i := range exps {
		exps[i].Scenario, exps[i].Reason, exps[i].AsServer = "IT-idle", classifier.IdleTimeout, classifier.IdleTimeout
	}
	return exps, err
}
