package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Role says which of a lab's three namespaces a [Namespace] is.
type Role int

// The roles of a lab's namespaces.
const (
	RoleClient Role = iota + 1 // the host that opens connections
	RoleTap                    // the bridge in the middle, where captures and faults live
	RoleServer                 // the host that listens
)

// String returns "client", "tap" or "server".
func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleTap:
		return "tap"
	case RoleServer:
		return "server"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// Fixed names and addresses inside every lab. They never collide between labs
// because each lab has its own namespaces.
const (
	BridgeName = "br0"  // the bridge in the tap namespace
	ClientPort = "vc"   // bridge port (tap namespace) facing the client
	ServerPort = "vs"   // bridge port (tap namespace) facing the server
	HostLink   = "eth0" // the interface of the client and of the server
)

var (
	clientIPv4 = netip.MustParseAddr("10.201.0.1")
	serverIPv4 = netip.MustParseAddr("10.201.0.2")
	clientIPv6 = netip.MustParseAddr("fd00:201::1")
	serverIPv6 = netip.MustParseAddr("fd00:201::2")
	clientMAC  = net.HardwareAddr{0x02, 0x74, 0x74, 0, 0, 1}
	serverMAC  = net.HardwareAddr{0x02, 0x74, 0x74, 0, 0, 2}
)

// Options configures [New]. The zero value is a working lab.
type Options struct {
	// Sysctls are written in both the client and the server namespace,
	// after the namespace defaults and before any traffic; keys use dots,
	// e.g. "net.ipv4.tcp_retries2": "3". The net.ipv4.tcp_* and net.core.*
	// keys of modern kernels are per network namespace, so they do not touch
	// the host. A key that does not exist fails the test unless it starts
	// with "-" (as in sysctl.conf(5)): "-net.ipv4.tcp_syn_linear_timeouts"
	// is set where the kernel has it and skipped elsewhere.
	Sysctls map[string]string
	// ClientSysctls and ServerSysctls are written after Sysctls, in one
	// namespace only.
	ClientSysctls map[string]string
	ServerSysctls map[string]string
	// MTU of every link; 0 means 1500 (IPv6 needs at least 1280).
	MTU int
	// KeepOffloads leaves the veth offloads (TSO, GSO, GRO, checksum) at
	// their defaults. Captures then contain segments larger than the MTU and
	// unfilled checksums, as on a sender's own interface.
	KeepOffloads bool
}

// Lab is a client, a tap and a server namespace wired as described in the
// package documentation. Create it with [New]; it is removed by t.Cleanup.
type Lab struct {
	Client *Namespace // the client host (10.201.0.1, fd00:201::1)
	Server *Namespace // the server host (10.201.0.2, fd00:201::2)
	Tap    *Namespace // the bridge; captures and fault rules live here

	extra []*Namespace // created later (MirrorVXLAN's sensor), removed with the lab
}

// Require skips the test when the harness cannot run: it needs root and the
// ip (iproute2), nft and tcpdump commands. When the environment variable CI is
// set it fails the test instead, so CI never silently skips real-traffic
// tests.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "nft", "tcpdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "netlab: needs root, ip, nft and tcpdump; run as root or in CI (missing: " + strings.Join(missing, ", ") + ")"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

const namePrefix = "tt-"

var (
	labSeq    atomic.Int64
	staleOnce sync.Once
)

// New builds a lab and registers its removal with t.Cleanup. Any failure is
// fatal to the test. It calls [Require] first.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	Require(t)
	staleOnce.Do(func() {
		if removed, err := CleanupStale(); err != nil {
			t.Logf("netlab: removing stale namespaces: %v", err)
		} else if len(removed) > 0 {
			t.Logf("netlab: removed stale namespaces %v", removed)
		}
	})
	start := time.Now()
	base := fmt.Sprintf("%s%d-%d-", namePrefix, os.Getpid(), labSeq.Add(1))
	l := &Lab{
		Client: &Namespace{Name: base + "c", Role: RoleClient, Link: HostLink, IPv4: clientIPv4, IPv6: clientIPv6, MAC: clientMAC, fd: -1},
		Tap:    &Namespace{Name: base + "t", Role: RoleTap, Link: BridgeName, fd: -1},
		Server: &Namespace{Name: base + "s", Role: RoleServer, Link: HostLink, IPv4: serverIPv4, IPv6: serverIPv6, MAC: serverMAC, fd: -1},
	}
	t.Cleanup(func() {
		if err := l.destroy(); err != nil {
			t.Errorf("netlab: cleanup: %v", err)
		}
	})
	if err := l.build(opts); err != nil {
		t.Fatalf("netlab: building lab %s*: %v", base, err)
	}
	t.Logf("netlab: lab %s{c,t,s} ready in %v", base, time.Since(start).Round(time.Millisecond))
	return l
}

// Namespaces returns the client, tap and server namespaces.
func (l *Lab) Namespaces() []*Namespace { return []*Namespace{l.Client, l.Tap, l.Server} }

func (l *Lab) build(opts Options) error {
	for _, n := range l.Namespaces() {
		if err := n.create(); err != nil {
			return err
		}
	}
	// Namespace defaults, before any interface exists: no IPv6 in the tap
	// (the bridge stays silent), no DAD and no router discovery on the hosts.
	if err := l.Tap.setSysctls(map[string]string{
		"net.ipv6.conf.all.disable_ipv6":     "1",
		"net.ipv6.conf.default.disable_ipv6": "1",
	}); err != nil {
		return err
	}
	for _, n := range []*Namespace{l.Client, l.Server} {
		if err := n.setSysctls(map[string]string{
			"net.ipv6.conf.all.accept_dad":               "0",
			"net.ipv6.conf.default.accept_dad":           "0",
			"net.ipv6.conf.all.accept_ra":                "0",
			"net.ipv6.conf.default.accept_ra":            "0",
			"net.ipv6.conf.default.dad_transmits":        "0",
			"net.ipv6.conf.default.router_solicitations": "0",
			// Keep the static IPv6 address across SetLink down/up.
			"net.ipv6.conf.all.keep_addr_on_down":     "1",
			"net.ipv6.conf.default.keep_addr_on_down": "1",
		}); err != nil {
			return err
		}
	}
	mtu := "1500"
	if opts.MTU > 0 {
		mtu = strconv.Itoa(opts.MTU)
	}
	tap := l.Tap.Name
	cmds := [][]string{
		{"-n", tap, "link", "add", BridgeName, "mtu", mtu, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"-n", tap, "link", "add", ClientPort, "mtu", mtu, "type", "veth", "peer", "name", HostLink, "mtu", mtu, "address", clientMAC.String(), "netns", l.Client.Name},
		{"-n", tap, "link", "add", ServerPort, "mtu", mtu, "type", "veth", "peer", "name", HostLink, "mtu", mtu, "address", serverMAC.String(), "netns", l.Server.Name},
		{"-n", tap, "link", "set", ClientPort, "master", BridgeName},
		{"-n", tap, "link", "set", ServerPort, "master", BridgeName},
	}
	for _, c := range cmds {
		if out, err := run("ip", c...); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(c, " "), err, out)
		}
	}
	if !opts.KeepOffloads {
		if err := l.Tap.Do(func() error { return disableOffloads(ClientPort, ServerPort) }); err != nil {
			return err
		}
		for _, n := range []*Namespace{l.Client, l.Server} {
			if err := n.Do(func() error { return disableOffloads(HostLink) }); err != nil {
				return err
			}
		}
	}
	type host struct {
		n, peer *Namespace
	}
	for _, h := range []host{{l.Client, l.Server}, {l.Server, l.Client}} {
		name := h.n.Name
		cmds := [][]string{
			{"-n", name, "addr", "add", h.n.IPv4.String() + "/24", "dev", HostLink},
			{"-n", name, "addr", "add", h.n.IPv6.String() + "/64", "dev", HostLink, "nodad"},
			{"-n", name, "link", "set", "lo", "up"},
			{"-n", name, "link", "set", HostLink, "up"},
		}
		for _, c := range cmds {
			if out, err := run("ip", c...); err != nil {
				return fmt.Errorf("ip %s: %w: %s", strings.Join(c, " "), err, out)
			}
		}
		if err := l.setNeighbours(h.n); err != nil {
			return err
		}
	}
	for _, dev := range []string{BridgeName, ClientPort, ServerPort} {
		if out, err := run("ip", "-n", tap, "link", "set", dev, "up"); err != nil {
			return fmt.Errorf("ip -n %s link set %s up: %w: %s", tap, dev, err, out)
		}
	}
	// User sysctls last, so they win over the defaults above.
	for _, s := range []struct {
		n    *Namespace
		maps []map[string]string
	}{
		{l.Client, []map[string]string{opts.Sysctls, opts.ClientSysctls}},
		{l.Server, []map[string]string{opts.Sysctls, opts.ServerSysctls}},
	} {
		for _, m := range s.maps {
			if err := s.n.setSysctls(m); err != nil {
				return err
			}
		}
	}
	return l.waitReady()
}

// setNeighbours installs permanent neighbour entries for the peer of host n
// (an admin link down flushes them, so SetLink calls this again).
func (l *Lab) setNeighbours(n *Namespace) error {
	peer := l.Server
	if n == l.Server {
		peer = l.Client
	}
	for _, a := range []netip.Addr{peer.IPv4, peer.IPv6} {
		args := []string{"-n", n.Name, "neigh", "replace", a.String(), "lladdr", peer.MAC.String(), "dev", HostLink, "nud", "permanent"}
		if out, err := run("ip", args...); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// waitReady waits (bounded) until every link is up with carrier and the
// bridge ports forward.
func (l *Lab) waitReady() error {
	deadline := time.Now().Add(5 * time.Second)
	type link struct {
		n   *Namespace
		dev string
	}
	links := []link{{l.Client, HostLink}, {l.Server, HostLink}, {l.Tap, ClientPort}, {l.Tap, ServerPort}}
	for _, lk := range links {
		for {
			out, err := run("ip", "-n", lk.n.Name, "-o", "link", "show", lk.dev)
			if err == nil && strings.Contains(out, ",LOWER_UP") && strings.Contains(out, "state UP") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("link %s in %s not up after 5s: %s", lk.dev, lk.n.Name, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, port := range []string{ClientPort, ServerPort} {
		for {
			out, err := run("ip", "-n", l.Tap.Name, "-d", "-o", "link", "show", port)
			if err == nil && strings.Contains(out, "state forwarding") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bridge port %s not forwarding after 5s: %s", port, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// destroy kills what is left inside the namespaces and deletes them.
// openNamespace opens /run/netns/name.
func openNamespace(name string) (int, error) {
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open namespace %s: %w", name, err)
	}
	return fd, nil
}

func (l *Lab) destroy() error {
	var errs []error
	for _, n := range append(l.Namespaces(), l.extra...) {
		if n.fd >= 0 {
			unix.Close(n.fd)
			n.fd = -1
		}
		if !n.created {
			continue
		}
		if err := removeNamespace(n.Name); err != nil {
			errs = append(errs, err)
		}
		n.created = false
	}
	return errors.Join(errs...)
}

// removeNamespace SIGKILLs the processes inside namespace name (only ever
// processes this harness started there) and deletes it.
func removeNamespace(name string) error {
	if out, err := run("ip", "netns", "pids", name); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	if out, err := run("ip", "netns", "del", name); err != nil {
		if _, statErr := os.Stat("/run/netns/" + name); os.IsNotExist(statErr) {
			return nil
		}
		return fmt.Errorf("ip netns del %s: %w: %s", name, err, out)
	}
	return nil
}

// CleanupStale deletes the tt-* namespaces left behind by test processes
// that no longer exist (a test binary killed by -timeout never runs its
// cleanups), and the ones named after the calling process that it did not
// create (a leftover whose PID got reused). Processes still running inside
// them are killed first. It returns the names it removed. [New] calls it once
// per process, before creating its first lab.
func CleanupStale() ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var removed []string
	var errs []error
	for _, e := range entries {
		pid, ok := stalePID(e.Name())
		if !ok {
			continue
		}
		if pid == self {
			if pidOwnsLabs(e.Name()) {
				continue
			}
		} else if err := unix.Kill(pid, 0); err == nil || errors.Is(err, unix.EPERM) {
			continue // the creating process is alive
		}
		if err := removeNamespace(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}

// stalePID extracts PID from a name tt-PID-N-R.
func stalePID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	f := strings.Split(rest, "-")
	if len(f) != 3 {
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, false
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return 0, false
	}
	return pid, true
}

// pidOwnsLabs reports whether a namespace named after this process was
// created by it (its sequence number has been handed out already).
func pidOwnsLabs(name string) bool {
	f := strings.Split(strings.TrimPrefix(name, namePrefix), "-")
	seq, err := strconv.ParseInt(f[1], 10, 64)
	return err == nil && seq <= labSeq.Load()
}

// run executes a host command (never inside a namespace by itself) with a
// bounded time and returns its combined output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
