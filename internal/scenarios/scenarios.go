// Package scenarios drives real Linux TCP connections between the namespaces
// of a [netlab.Lab] into each way a connection can end (docs/reasons.md), and says
// what tcptap must report for each of them.
//
// A [Scenario] runs one way of dying for one address family ("tcp4" or
// "tcp6"): it opens its own listener (so its own server port) and binds its
// client to a port of its own, drives the sockets, installs its faults as
// nftables rules scoped to its own 4-tuple, waits until the kernel has
// reported the fault to the application (ECONNRESET, ETIMEDOUT, EOF...), and
// returns one [Expect] per connection it made. Because everything is scoped
// to the scenario's ports, many scenarios can run at once in one lab and one
// capture, and their answers must equal those of the separate runs.
//
// Sockets a scenario leaves open are closed by t.Cleanup, that is after the
// test has stopped its capture, so nothing they send at close time is part
// of the capture.
//
// tcptap decides timeouts (RT, PT, KT, ST, IT) from silence, and it measures
// silence up to the last packet of the capture: a capture must therefore go
// on for [Scenario.Silence] after the scenario returned and then end with a
// later packet. [Marker] makes that packet: a short normal connection.
//
// The scenarios assume the sysctls of [LabOptions] in both hosts (short
// retransmission budgets, so that timeouts take seconds, not minutes).
package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/reassembly"
)

// Expect is what tcptap must report for one connection a scenario made.
type Expect struct {
	Scenario string // the scenario's name
	Network  string // "tcp4" or "tcp6"
	// Client and Server identify the connection (the client's port is
	// bound by the scenario, so it is known even when connect failed).
	Client, Server netip.AddrPort
	Reason         classifier.Code
	Actor          string // "client", "server" or "none"
	Local          string // "client" or "server"
	ConnState      string // Zeek's conn_state
	// AsServer is the reason when the analysis names the server the local
	// side (--local-net with the server's address): the codes relative to
	// the local side swap (AN/PN, SR/RR; a RST after the sender's own FIN
	// is AA from its side), the others stay. Actor and conn_state do not
	// change.
	AsServer classifier.Code
}

// ServerLocal returns e as seen with the server as the local side.
func (e Expect) ServerLocal() Expect {
	e.Reason, e.Local = e.AsServer, "server"
	return e
}

// String renders the expectation for test logs.
func (e Expect) String() string {
	return fmt.Sprintf("%s/%s %v->%v: reason %s actor %s local %s conn_state %s",
		e.Scenario, e.Network, e.Client, e.Server, e.Reason, e.Actor, e.Local, e.ConnState)
}

// Func drives one scenario in lab for network ("tcp4" or "tcp6"). It
// returns when the kernel has reported the fault, or with an error when the
// fault could not be produced as intended (which says nothing about
// tcptap). t is used for the lab's fault rules and for cleanups; Func may run
// on a goroutine other than the test's.
type Func func(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error)

// Scenario is one way a connection ends.
type Scenario struct {
	Name string
	// What the scenario shows, for documentation and logs.
	Doc string
	Run Func
	// Silence is how long the capture must go on after Run returned, and
	// end with a later packet ([Marker]), for tcptap to see the silence
	// its timeout rules need. Zero for endings decided by a FIN or RST.
	Silence time.Duration
	// Solo scenarios need a lab of their own: they change link state, or
	// need the analysis configured by Table.
	Solo bool
	// Table is the connection table configuration the analysis must use
	// (zero: tcptap's defaults).
	Table reassembly.Config
	// Budget bounds Run's duration in a lab that is otherwise idle.
	Budget time.Duration
}

// LabOptions returns the lab options every scenario assumes: retransmission
// budgets of seconds instead of minutes (docs/wire.md has the timings on
// this kernel). tcp_retries2=3: unacknowledged data is retransmitted 5 times
// (the tail-loss probe included) and the socket fails with ETIMEDOUT ~6.8 s
// after the original; window probes give up after 3. tcp_syn_retries=2 with
// the kernel's default tcp_syn_linear_timeouts=4: 6 SYNs 1 s apart, connect
// fails with ETIMEDOUT after ~7.1 s. tcp_orphan_retries=3: an orphaned
// socket retransmits its data and FIN 5 times over ~3.3 s and vanishes
// silently (with 2, only 3 retransmissions of the head were seen: exactly
// the RT threshold, no margin).
func LabOptions() netlab.Options {
	return netlab.Options{Sysctls: map[string]string{
		"net.ipv4.tcp_retries2":       "3",
		"net.ipv4.tcp_syn_retries":    "2",
		"net.ipv4.tcp_orphan_retries": "3",
	}}
}

// All returns every scenario, in a stable order.
func All() []Scenario {
	return []Scenario{
		{Name: "PN-server-closes", Run: PeerClose, Budget: 5 * time.Second,
			Doc: "the server sends its answer and closes first; the client reads to EOF and closes"},
		{Name: "AN-client-closes", Run: AppClose, Budget: 5 * time.Second,
			Doc: "request and answer, then the client closes first; the server reads EOF and closes"},
		{Name: "AN-half-close", Run: HalfClose, Budget: 5 * time.Second,
			Doc: "the client sends a request and shutdown(SHUT_WR); the server reads to EOF, answers 64 KB and closes; the client reads to EOF and closes"},
		{Name: "AN-bulk-loss", Run: BulkWithLoss, Budget: 40 * time.Second,
			Doc: "4 MB each way through 5 % random loss in each direction; the client shuts down its side first: loss recovered is not RT"},
		{Name: "SR-client-abort", Run: ClientAbort, Budget: 5 * time.Second,
			Doc: "the client closes with SO_LINGER 0: RST|ACK"},
		{Name: "RR-server-abort", Run: ServerAbort, Budget: 5 * time.Second,
			Doc: "the server closes with SO_LINGER 0: RST|ACK"},
		{Name: "SR-client-unread", Run: ClientCloseUnread, Budget: 5 * time.Second,
			Doc: "the client closes with data it never read: RST instead of FIN"},
		{Name: "RR-server-unread", Run: ServerCloseUnread, Budget: 5 * time.Second,
			Doc: "the server closes with data it never read: RST instead of FIN"},
		{Name: "SR-client-killed", Run: ClientKilled, Budget: 10 * time.Second,
			Doc: "the client's socket is destroyed with ss -K (administrative kill): RST|ACK"},
		{Name: "RR-server-lost-state", Run: ServerLostState, Budget: 10 * time.Second,
			Doc: "the server's socket is destroyed with ss -K and its RST lost; the client's next data gets the bare RST of a host without state"},
		{Name: "RR-after-server-fin", Run: DataAfterPeerClose, Budget: 5 * time.Second,
			Doc: "the server closes (FIN); the client writes anyway; the server's kernel resets (RST after FIN)"},
		{Name: "RR-firewall", Run: FirewallReset, Budget: 10 * time.Second,
			Doc: "a firewall rule in the server host answers the established flow's data with a forged RST"},
		{Name: "AA-data-after-close", Run: DataAfterLocalClose, Budget: 5 * time.Second,
			Doc: "the client closes (FIN) while the server keeps sending; the client's kernel resets (TCPAbortOnData)"},
		{Name: "RF-closed-port", Run: Refused, Budget: 5 * time.Second,
			Doc: "connect to a port nobody listens on: RST|ACK to the SYN"},
		{Name: "ST-syn-dropped", Run: SYNTimeout, Budget: 20 * time.Second, Silence: 3 * time.Second,
			Doc: "the client's SYNs are dropped on the path until connect fails with ETIMEDOUT"},
		{Name: "RT-blackhole", Run: RetransmitTimeout, Budget: 20 * time.Second, Silence: 3 * time.Second,
			Doc: "the path is cut after the handshake; the client's data is retransmitted until ETIMEDOUT, then silence (no RST)"},
		{Name: "RT-interactive-link-down", Run: InteractiveLinkDown, Budget: 25 * time.Second, Silence: 3 * time.Second, Solo: true,
			Doc: "a few 1-byte writes echoed by the server; the server's link goes down; the client's next byte is retransmitted until ETIMEDOUT"},
		{Name: "RT-orphan", Run: OrphanRetransmit, Budget: 20 * time.Second, Silence: 3 * time.Second,
			Doc: "the path is cut; the client writes and closes; its orphaned socket retransmits data and FIN until tcp_orphan_retries runs out"},
		{Name: "PT-blackhole", Run: PersistBlackhole, Budget: 20 * time.Second, Silence: 3 * time.Second,
			Doc: "the server stops reading until its window is 0; the path is cut; the client's window probes go unanswered until it gives up"},
		{Name: "PT-user-timeout", Run: PersistUserTimeout, Budget: 20 * time.Second, Silence: 3 * time.Second,
			Doc: "the server stops reading until its window is 0 and answers every probe with window 0; the client's TCP_USER_TIMEOUT ends it silently"},
		{Name: "KT-blackhole", Run: KeepaliveTimeout, Budget: 20 * time.Second, Silence: 3 * time.Second,
			Doc: "SO_KEEPALIVE 1 s/1 s/2 on the client; the path is cut after the handshake; the probes go unanswered and the client resets"},
		{Name: "IT-idle", Run: Idle, Budget: 5 * time.Second, Silence: 4 * time.Second, Solo: true,
			Table: reassembly.Config{IdleTimeout: 2 * time.Second},
			Doc:   "a connection that exchanges data and then idles 4 s, analysed with a 2 s idle timeout"},
		{Name: "OP-open", Run: Open, Budget: 5 * time.Second,
			Doc: "a connection still open when the capture ends"},
		{Name: "port-reuse", Run: PortReuse, Budget: 10 * time.Second,
			Doc: "two connections on the same 4-tuple one after the other (PN, then AN): two records"},
	}
}

// ByName returns the scenario called name.
func ByName(name string) (Scenario, bool) {
	for _, s := range All() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Marker makes a short normal connection (the client closes first: AN) so
// that the capture has a packet after the silence the timeout scenarios
// need. It returns the marker's own expectation.
func Marker(ctx context.Context, t testing.TB, lab *netlab.Lab, network string) ([]Expect, error) {
	exps, err := AppClose(ctx, t, lab, network)
	for i := range exps {
		exps[i].Scenario = "marker"
	}
	return exps, err
}

// Client ports are bound explicitly, from a range below the kernel's
// ephemeral ports (32768-60999), so they never collide with ports the kernel
// picks, and a scenario knows its client port even when connect fails.
const (
	firstPort = 20000
	lastPort  = 32000
)

var portSeq atomic.Uint32

// nextPort returns a port for a client bind or a closed server port.
func nextPort() uint16 {
	return uint16(firstPort + (portSeq.Add(1)-1)%(lastPort-firstPort))
}

// flow is one scenario's listener and client address.
type flow struct {
	t        testing.TB
	lab      *netlab.Lab
	network  string
	ln       *net.TCPListener
	client   netip.AddrPort
	server   netip.AddrPort
	deadline time.Time
}

// newFlow listens in the server namespace on an ephemeral port with opts
// and reserves a client port. The listener is closed by t.Cleanup.
func newFlow(ctx context.Context, t testing.TB, lab *netlab.Lab, network string, opts netlab.SocketOptions) (*flow, error) {
	ln, err := lab.Server.ListenTCP(network, "", opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ln.Close() })
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Minute)
	}
	return &flow{
		t: t, lab: lab, network: network, ln: ln,
		client:   netip.AddrPortFrom(lab.Client.Addr(network), nextPort()),
		server:   netip.MustParseAddrPort(ln.Addr().String()),
		deadline: dl,
	}, nil
}

// dial connects from the flow's client port. A port still held by the
// previous connection of the same 4-tuple (port reuse) is retried for 2 s.
func (f *flow) dial(ctx context.Context, opts netlab.DialOptions) (*net.TCPConn, error) {
	opts.LocalAddr = f.client
	var (
		c   *net.TCPConn
		err error
	)
	for try := 0; ; try++ {
		c, err = f.lab.Client.DialTCP(ctx, f.network, f.server.String(), opts)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || try >= 40 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	f.t.Cleanup(func() { c.Close() })
	c.SetDeadline(f.deadline)
	return c, nil
}

// accept returns the server side of the flow's next connection.
func (f *flow) accept() (*net.TCPConn, error) {
	f.ln.SetDeadline(f.deadline)
	s, err := f.ln.AcceptTCP()
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	f.t.Cleanup(func() { s.Close() })
	s.SetDeadline(f.deadline)
	return s, nil
}

// connect dials and accepts.
func (f *flow) connect(ctx context.Context, opts netlab.DialOptions) (c, s *net.TCPConn, err error) {
	if c, err = f.dial(ctx, opts); err != nil {
		return nil, nil, err
	}
	if s, err = f.accept(); err != nil {
		return nil, nil, err
	}
	return c, s, nil
}

func (f *flow) expect(name string, reason classifier.Code, actor, connState string) Expect {
	return Expect{Scenario: name, Network: f.network, Client: f.client, Server: f.server,
		Reason: reason, Actor: actor, Local: "client", ConnState: connState, AsServer: mirror(reason)}
}

// mirror is the reason with the roles of local and remote swapped, for the
// codes where that is all that changes.
func mirror(c classifier.Code) classifier.Code {
	switch c {
	case classifier.AppNormalClose:
		return classifier.PeerNormalClose
	case classifier.PeerNormalClose:
		return classifier.AppNormalClose
	case classifier.SentReset:
		return classifier.ReceivedReset
	case classifier.ReceivedReset:
		return classifier.SentReset
	}
	return c
}

func (f *flow) family() string {
	if strings.HasSuffix(f.network, "6") {
		return "ip6"
	}
	return "ip"
}

// c2s and s2c scope a rule to the flow's 4-tuple in one direction.
func (f *flow) c2s(r netlab.Rule) netlab.Rule {
	r.Dir, r.Family, r.SrcPort, r.DstPort = netlab.ClientToServer, f.family(), f.client.Port(), f.server.Port()
	return r
}

func (f *flow) s2c(r netlab.Rule) netlab.Rule {
	r.Dir, r.Family, r.SrcPort, r.DstPort = netlab.ServerToClient, f.family(), f.server.Port(), f.client.Port()
	return r
}

// blackhole cuts the flow's path in both directions (the lab's Blackhole
// is not scoped to a flow).
func (f *flow) blackhole() {
	f.lab.Drop(f.t, f.c2s(netlab.Rule{}))
	f.lab.Drop(f.t, f.s2c(netlab.Rule{}))
}

// exchange sends req bytes client→server and resp bytes back, each read in
// full by the other side.
func exchange(c, s *net.TCPConn, req, resp int) error {
	if err := send(c, s, req); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if err := send(s, c, resp); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	return nil
}

// send writes n bytes on from and reads them in full on to.
func send(from, to *net.TCPConn, n int) error {
	if n == 0 {
		return nil
	}
	buf := payload(n)
	if _, err := from.Write(buf); err != nil {
		return err
	}
	if _, err := io.ReadFull(to, buf); err != nil {
		return err
	}
	return nil
}

// payload returns n printable bytes (readable in tshark's follow view).
func payload(n int) []byte {
	const text = "tcptap scenario payload 0123456789\n"
	b := make([]byte, n)
	for i := range b {
		b[i] = text[i%len(text)]
	}
	return b
}

// readEOF reads c to EOF.
func readEOF(c *net.TCPConn) error {
	_, err := io.Copy(io.Discard, c)
	return err
}

// readErr reads from c until an error (data is discarded) and returns it;
// io.EOF when the peer closed.
func readErr(c *net.TCPConn) error {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return err
		}
	}
}

// wantErr checks that err is the errno the fault should produce.
func wantErr(what string, err error, want syscall.Errno) error {
	if errors.Is(err, want) {
		return nil
	}
	return fmt.Errorf("%s: got %v, want %v", what, err, want)
}

// unread returns how many received bytes wait in c's receive queue.
func unread(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return 0, err
	}
	return n, ierr
}

// waitFor polls cond every 2 ms until it is true, cond fails, or ctx ends.
func waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitUnread waits until at least n bytes wait unread in c.
func waitUnread(ctx context.Context, c *net.TCPConn, n int) error {
	return waitFor(ctx, strconv.Itoa(n)+" unread bytes", func() (bool, error) {
		u, err := unread(c)
		return u >= n, err
	})
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// ssFilter is an ss(8) filter for one socket of the flow as seen from the
// host whose local port is lport.
func ssFilter(lport, rport uint16) string {
	return fmt.Sprintf("( sport = :%d and dport = :%d )", lport, rport)
}

// sockets lists the sockets of ns matching an ss filter (any state).
func sockets(ctx context.Context, ns *netlab.Namespace, filter string) (string, error) {
	out, err := ns.ExecContext(ctx, "ss", "-Htan", filter)
	return strings.TrimSpace(out), err
}

// kill destroys ns's established socket of the flow with ss -K.
func kill(ctx context.Context, ns *netlab.Namespace, lport, rport uint16) error {
	out, err := ns.ExecContext(ctx, "ss", "-HtnK", "state", "established", ssFilter(lport, rport))
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "" {
		return fmt.Errorf("ss -K in %s killed no socket (%s); kernel without CONFIG_INET_DIAG_DESTROY?", ns, ssFilter(lport, rport))
	}
	return nil
}
