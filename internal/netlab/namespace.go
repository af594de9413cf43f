package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Namespace is one network namespace of a lab.
type Namespace struct {
	Name string     // name under /run/netns, e.g. tt-4242-1-c
	Role Role       // client, tap or server
	Link string     // the host's interface (eth0) or, in the tap, the bridge (br0)
	IPv4 netip.Addr // the host's IPv4 address; invalid in the tap
	IPv6 netip.Addr // the host's IPv6 address; invalid in the tap
	// MAC is the host's interface address; nil in the tap.
	MAC net.HardwareAddr

	fd      int  // open /run/netns/Name, -1 when closed
	created bool // the namespace exists and must be deleted

	nftMu     sync.Mutex
	nftTables map[string]bool // "family table chain" already created
}

// String returns the namespace name.
func (n *Namespace) String() string { return n.Name }

// Addr returns the host address for network: the IPv6 address when network
// ends in "6" ("tcp6", "ip6"), otherwise the IPv4 address.
func (n *Namespace) Addr(network string) netip.Addr {
	if strings.HasSuffix(network, "6") {
		return n.IPv6
	}
	return n.IPv4
}

// Do runs fn on an OS thread that has been switched into the namespace.
// Sockets fn creates belong to the namespace for their whole life, and so do
// processes it forks; goroutines fn starts do not run in the namespace. fn
// runs on its own goroutine, so it must not call t.FailNow (t.Fatal); return
// an error instead. A panic in fn is re-raised in the caller. If switching the
// thread back fails, the thread is left locked so that it exits with its
// goroutine instead of serving other goroutines in the wrong namespace.
func (n *Namespace) Do(fn func() error) error {
	if n.fd < 0 {
		return fmt.Errorf("namespace %s is closed", n.Name)
	}
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("open current namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns %s: %w", n.Name, err)}
			return
		}
		var r result
		func() {
			defer func() { r.panic = recover() }()
			r.err = fn()
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread dies with this goroutine.
			r.err = errors.Join(r.err, fmt.Errorf("setns back from %s: %w", n.Name, err))
			done <- r
			return
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// Sysctl reads a sysctl (dotted key) as the namespace sees it.
func (n *Namespace) Sysctl(key string) (string, error) {
	var v string
	err := n.Do(func() error {
		b, err := os.ReadFile(sysctlPath(key))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// SetSysctl writes a sysctl (dotted key) inside the namespace.
func (n *Namespace) SetSysctl(key, value string) error {
	return n.Do(func() error {
		if err := os.WriteFile(sysctlPath(key), []byte(value), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.Name, err)
		}
		return nil
	})
}

// setSysctls writes m; keys starting with "-" may be missing.
func (n *Namespace) setSysctls(m map[string]string) error {
	if len(m) == 0 {
		return nil
	}
	return n.Do(func() error {
		for k, v := range m {
			optional := strings.HasPrefix(k, "-")
			key := strings.TrimPrefix(k, "-")
			err := os.WriteFile(sysctlPath(key), []byte(v), 0)
			if err != nil && optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", key, v, n.Name, err)
			}
		}
		return nil
	})
}

func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// Exec runs a command inside the namespace (through "ip netns exec", which
// also shows the namespace's interfaces in /sys) with a 10 s limit. It
// returns the combined output; a failure's error includes it.
func (n *Namespace) Exec(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.ExecContext(ctx, name, args...)
}

// ExecContext is [Namespace.Exec] with the caller's context bounding the
// command; the process is killed when ctx is done.
func (n *Namespace) ExecContext(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", n.Name, strings.Join(append([]string{name}, args...), " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// SocketOptions are applied to a socket before connect(2) or listen(2).
// Options set on a listener are inherited by the sockets it accepts. The zero
// value leaves every kernel default (the namespace's sysctls) alone, and
// unlike the net package's defaults, netlab never turns keepalive on by
// itself.
type SocketOptions struct {
	// RcvBuf and SndBuf set SO_RCVBUF and SO_SNDBUF (the kernel doubles the
	// value and enforces a minimum). A small RcvBuf set before connect or
	// listen also fixes a small window scale: the quick way to a zero
	// window.
	RcvBuf, SndBuf int
	// Keepalive sets SO_KEEPALIVE. KeepIdle (TCP_KEEPIDLE), KeepIntvl
	// (TCP_KEEPINTVL, whole seconds) and KeepCnt (TCP_KEEPCNT) are set when
	// non-zero; otherwise the namespace's net.ipv4.tcp_keepalive_* apply.
	Keepalive bool
	KeepIdle  time.Duration
	KeepIntvl time.Duration
	KeepCnt   int
	// UserTimeout sets TCP_USER_TIMEOUT (milliseconds) when non-zero.
	UserTimeout time.Duration
	// MSS sets TCP_MAXSEG when non-zero.
	MSS int
	// Nagle keeps Nagle's algorithm on for dialed connections. The net
	// package sets TCP_NODELAY on every connection it makes, so without
	// this every write goes out at once. For accepted connections call
	// conn.SetNoDelay(false) yourself.
	Nagle bool
}

func (o SocketOptions) control(_, _ string, c syscall.RawConn) error {
	var serr error
	set := func(fd int, level, opt, v int, what string) {
		if serr == nil {
			if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
				serr = fmt.Errorf("setsockopt %s=%d: %w", what, v, err)
			}
		}
	}
	err := c.Control(func(p uintptr) {
		fd := int(p)
		if o.RcvBuf > 0 {
			set(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.RcvBuf, "SO_RCVBUF")
		}
		if o.SndBuf > 0 {
			set(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, o.SndBuf, "SO_SNDBUF")
		}
		if o.Keepalive {
			set(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE")
		}
		if o.KeepIdle > 0 {
			set(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs(o.KeepIdle), "TCP_KEEPIDLE")
		}
		if o.KeepIntvl > 0 {
			set(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs(o.KeepIntvl), "TCP_KEEPINTVL")
		}
		if o.KeepCnt > 0 {
			set(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, o.KeepCnt, "TCP_KEEPCNT")
		}
		if o.UserTimeout > 0 {
			set(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(o.UserTimeout/time.Millisecond), "TCP_USER_TIMEOUT")
		}
		if o.MSS > 0 {
			set(fd, unix.IPPROTO_TCP, unix.TCP_MAXSEG, o.MSS, "TCP_MAXSEG")
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func secs(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// DialOptions configures [Namespace.DialTCP].
type DialOptions struct {
	SocketOptions
	// LocalAddr binds the socket before connecting (port 0: any port).
	LocalAddr netip.AddrPort
}

// DialTCP connects from the namespace to raddr ("host:port"); network is
// "tcp4" or "tcp6". The socket is created and connected inside the
// namespace; opts are applied before connect. ctx bounds the connect
// (SYN retries included).
func (n *Namespace) DialTCP(ctx context.Context, network, raddr string, opts DialOptions) (*net.TCPConn, error) {
	d := net.Dialer{
		KeepAlive: -1, // keep Go's 15 s keepalive off; opts decide
		Control:   opts.control,
	}
	if opts.LocalAddr.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(opts.LocalAddr)
	}
	var conn net.Conn
	err := n.Do(func() error {
		var err error
		conn, err = d.DialContext(ctx, network, raddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, raddr, n.Name, err)
	}
	tc := conn.(*net.TCPConn)
	if opts.Nagle {
		if err := tc.SetNoDelay(false); err != nil {
			tc.Close()
			return nil, err
		}
	}
	return tc, nil
}

// ListenTCP listens inside the namespace. network is "tcp4" or "tcp6";
// laddr is "host:port", or "" for the namespace's own address of that family
// on an ephemeral port (read it back from the listener's Addr). opts are
// applied before listen and inherited by accepted connections; the listener
// never turns keepalive on by itself.
func (n *Namespace) ListenTCP(network, laddr string, opts SocketOptions) (*net.TCPListener, error) {
	if laddr == "" {
		laddr = netip.AddrPortFrom(n.Addr(network), 0).String()
	}
	lc := net.ListenConfig{KeepAlive: -1, Control: opts.control}
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = lc.Listen(context.Background(), network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s: %w", network, laddr, n.Name, err)
	}
	return ln.(*net.TCPListener), nil
}

// Abort closes c with a RST instead of a FIN: SO_LINGER {on, 0} then close.
// (Half-close with c.CloseWrite; c.SetLinger(0) alone arms the abort for a
// later Close.)
func Abort(c *net.TCPConn) error {
	if err := c.SetLinger(0); err != nil {
		c.Close()
		return err
	}
	return c.Close()
}

// SetUserTimeout sets TCP_USER_TIMEOUT on an open connection.
func SetUserTimeout(c *net.TCPConn, d time.Duration) error {
	return setsockopt(c, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
}

func setsockopt(c syscall.Conn, level, opt, v int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) }); err != nil {
		return err
	}
	return serr
}

// TCPInfo returns the kernel's TCP_INFO for a connection: State (values as
// in the kernel's TCP_ESTABLISHED...), Retransmits, Probes, Backoff, Rto (µs),
// Unacked, Snd_wnd, ... Useful for waiting until a socket reaches a state.
func TCPInfo(c syscall.Conn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return nil, err
	}
	return info, serr
}

// ifreqData is struct ifreq with ifr_data, 40 bytes on 64-bit Linux.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(unsafe.Pointer(nil))]byte
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// disableOffloads turns off TSO, GSO, GRO, scatter-gather and TX checksum
// offload of the named interfaces in the calling thread's namespace, with the
// legacy SIOCETHTOOL set commands (what "ethtool -K dev tso off gso off gro
// off sg off tx off" does), so the stack hands MTU-sized segments with real
// checksums to the wire.
func disableOffloads(ifnames ...string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	cmds := []struct {
		cmd  uint32
		name string
	}{
		{unix.ETHTOOL_STSO, "tso"},
		{unix.ETHTOOL_SGSO, "gso"},
		{unix.ETHTOOL_SGRO, "gro"},
		{unix.ETHTOOL_STXCSUM, "tx-checksumming"},
		{unix.ETHTOOL_SSG, "sg"},
	}
	for _, ifname := range ifnames {
		for _, c := range cmds {
			v := ethtoolValue{cmd: c.cmd}
			var ifr ifreqData
			copy(ifr.name[:], ifname)
			ifr.data = unsafe.Pointer(&v)
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
			runtime.KeepAlive(&v)
			if errno != 0 && errno != unix.EOPNOTSUPP {
				return fmt.Errorf("ethtool -K %s %s off: %w", ifname, c.name, errno)
			}
		}
	}
	return nil
}
