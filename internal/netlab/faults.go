package netlab

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Direction selects which way across the tap a [Rule] applies.
type Direction int

// Directions across the tap.
const (
	BothWays       Direction = iota // every frame crossing the bridge
	ClientToServer                  // frames entering the bridge from the client (port vc)
	ServerToClient                  // frames entering the bridge from the server (port vs)
)

// String returns "both ways", "client->server" or "server->client".
func (d Direction) String() string {
	switch d {
	case BothWays:
		return "both ways"
	case ClientToServer:
		return "client->server"
	case ServerToClient:
		return "server->client"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Rule selects packets for a fault. All set fields must match. The zero
// value matches every TCP segment in both directions.
type Rule struct {
	// Dir restricts a tap rule to one direction ([Lab.Drop] and friends);
	// [Lab.RejectWithReset] ignores it.
	Dir Direction
	// Family is "ip" or "ip6" to match only IPv4 or IPv6; empty matches
	// both.
	Family string
	// SrcPort and DstPort match the TCP ports when non-zero.
	SrcPort, DstPort uint16
	// Flags matches segments that carry any of these flags (e.g. RST, or
	// SYN|FIN); zero matches all.
	Flags TCPFlags
	// AllProtocols makes a tap rule match every frame (ARP, ICMP, UDP, ...)
	// instead of TCP only; the ports and Flags must then be zero.
	AllProtocols bool
	// Percent, when between 1 and 99, applies the rule to a random Percent %
	// of the matching packets (nft "numgen random mod 100 < Percent").
	Percent int
	// Match is an extra nft match expression appended verbatim, e.g.
	// `ip length > 100` or `tcp sequence 12345`.
	Match string
}

// expr renders the rule's match as nft syntax for a table family "bridge"
// (the tap) or "inet" (a host).
func (r Rule) expr(family string) (string, error) {
	var p []string
	if family == "bridge" {
		switch r.Dir {
		case ClientToServer:
			p = append(p, `iifname "`+ClientPort+`"`)
		case ServerToClient:
			p = append(p, `iifname "`+ServerPort+`"`)
		case BothWays:
		default:
			return "", fmt.Errorf("bad direction %v", r.Dir)
		}
	}
	switch r.Family {
	case "":
	case "ip", "ip6":
		if family == "bridge" {
			p = append(p, "ether type "+r.Family)
		} else {
			p = append(p, "meta nfproto "+map[string]string{"ip": "ipv4", "ip6": "ipv6"}[r.Family])
		}
	default:
		return "", fmt.Errorf("bad family %q (want ip or ip6)", r.Family)
	}
	tcp := !r.AllProtocols || family != "bridge"
	if !tcp && (r.SrcPort != 0 || r.DstPort != 0 || r.Flags != 0) {
		return "", fmt.Errorf("AllProtocols with ports or flags")
	}
	if tcp {
		p = append(p, "meta l4proto tcp")
	}
	if r.SrcPort != 0 {
		p = append(p, "tcp sport "+strconv.Itoa(int(r.SrcPort)))
	}
	if r.DstPort != 0 {
		p = append(p, "tcp dport "+strconv.Itoa(int(r.DstPort)))
	}
	if r.Flags != 0 {
		p = append(p, "tcp flags & ("+strings.Join(r.Flags.nftNames(), " | ")+") != 0")
	}
	if r.Match != "" {
		p = append(p, r.Match)
	}
	if r.Percent > 0 && r.Percent < 100 {
		p = append(p, "numgen random mod 100 < "+strconv.Itoa(r.Percent))
	}
	return strings.Join(p, " "), nil
}

// Fault is an installed nftables rule. Remove it to heal the path.
type Fault struct {
	// Rule is the nft rule as installed, e.g.
	// `iifname "vs" meta l4proto tcp counter drop`.
	Rule string

	ns      *Namespace
	family  string
	table   string
	chain   string
	handle  int
	mu      sync.Mutex
	removed bool
}

// Remove deletes the rule; calling it again does nothing.
func (f *Fault) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed {
		return nil
	}
	if _, err := f.ns.Exec("nft", "delete", "rule", f.family, f.table, f.chain, "handle", strconv.Itoa(f.handle)); err != nil {
		return err
	}
	f.removed = true
	return nil
}

// Packets returns how many packets the rule has matched so far (its nft
// counter), e.g. to wait until a dropped retransmission has happened.
func (f *Fault) Packets() (uint64, error) {
	out, err := f.ns.Exec("nft", "--handle", "list", "chain", f.family, f.table, f.chain)
	if err != nil {
		return 0, err
	}
	suffix := "# handle " + strconv.Itoa(f.handle)
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasSuffix(strings.TrimSpace(line), suffix) {
			continue
		}
		m := counterRE.FindStringSubmatch(line)
		if m == nil {
			return 0, fmt.Errorf("no counter in %q", line)
		}
		return strconv.ParseUint(m[1], 10, 64)
	}
	return 0, fmt.Errorf("rule handle %d not found in %s", f.handle, f.ns.Name)
}

var (
	counterRE = regexp.MustCompile(`counter packets (\d+) `)
	handleRE  = regexp.MustCompile(`# handle (\d+)\s*$`)
)

// Drop installs a rule in the tap's bridge forward hook that drops the
// matching packets, effective at once, until the returned Fault is removed
// (or the lab goes away). Failures are fatal to the test.
//
// The forward hook runs after a frame has entered the bridge, so a capture
// on the client-facing port still shows client packets dropped on their way
// to the server (the mirror saw them leave the client), but never shows
// server packets dropped on their way to the client.
func (l *Lab) Drop(t testing.TB, r Rule) *Fault {
	t.Helper()
	expr, err := r.expr("bridge")
	if err != nil {
		t.Fatalf("netlab: drop rule: %v", err)
	}
	f, err := l.Tap.addRule("bridge", "forward", "type filter hook forward priority 0; policy accept;", expr+" counter drop")
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Logf("netlab: drop %s: %s", r.Dir, f.Rule)
	return f
}

// Loss drops a random percent of the TCP segments going in direction dir.
func (l *Lab) Loss(t testing.TB, percent int, dir Direction) *Fault {
	t.Helper()
	if percent < 1 || percent > 99 {
		t.Fatalf("netlab: loss percent %d not in 1..99", percent)
	}
	return l.Drop(t, Rule{Dir: dir, Percent: percent})
}

// Blackhole drops every TCP segment going in direction dir (BothWays: the
// path is cut) from now on. ARP and neighbour discovery are not needed
// (neighbours are permanent), so the hosts only notice through TCP.
func (l *Lab) Blackhole(t testing.TB, dir Direction) *Fault {
	t.Helper()
	return l.Drop(t, Rule{Dir: dir})
}

// RejectWithReset installs, in the input hook of an inet-family table in
// host namespace ns (the client or the server), a rule that answers matching
// incoming TCP segments with a RST (nft "reject with tcp reset") instead of
// delivering them. The RST comes from ns's address, built by netfilter and
// not by the socket, which stays open: a forged or middlebox reset as the
// peer sees it. (Bridge-family reject is not available, see docs/wire.md.)
func (l *Lab) RejectWithReset(t testing.TB, ns *Namespace, r Rule) *Fault {
	t.Helper()
	if ns.Role != RoleClient && ns.Role != RoleServer {
		t.Fatalf("netlab: RejectWithReset needs the client or server namespace, not %s", ns.Role)
	}
	expr, err := r.expr("inet")
	if err != nil {
		t.Fatalf("netlab: reject rule: %v", err)
	}
	f, err := ns.addRule("inet", "input", "type filter hook input priority 0; policy accept;", expr+" counter reject with tcp reset")
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Logf("netlab: reject in %s: %s", ns.Role, f.Rule)
	return f
}

// SetLink sets the host interface of ns (the client's or server's eth0) up
// or down. Down also drops the carrier of the bridge port facing it, as when
// a cable is pulled; the host's addresses stay. Up returns once the link
// forwards again. Failures are fatal to the test.
func (l *Lab) SetLink(t testing.TB, ns *Namespace, up bool) {
	t.Helper()
	if ns.Role != RoleClient && ns.Role != RoleServer {
		t.Fatalf("netlab: SetLink needs the client or server namespace, not %s", ns.Role)
	}
	state := "down"
	if up {
		state = "up"
	}
	if out, err := run("ip", "-n", ns.Name, "link", "set", ns.Link, state); err != nil {
		t.Fatalf("netlab: ip -n %s link set %s %s: %v: %s", ns.Name, ns.Link, state, err, out)
	}
	if !up {
		return
	}
	// An admin down flushed the permanent neighbours; put them back and wait
	// until the link and its bridge port forward again.
	if err := l.setNeighbours(ns); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	if err := l.waitReady(); err != nil {
		t.Fatalf("netlab: %v", err)
	}
}

// addRule appends rule to table "netlab" of family, creating the table and
// the base chain (spec) on first use.
func (n *Namespace) addRule(family, chain, spec, rule string) (*Fault, error) {
	const table = "netlab"
	n.nftMu.Lock()
	key := family + " " + table + " " + chain
	if !n.nftTables[key] {
		if _, err := n.Exec("nft", "add table "+family+" "+table+"; add chain "+family+" "+table+" "+chain+" { "+spec+" }"); err != nil {
			n.nftMu.Unlock()
			return nil, err
		}
		if n.nftTables == nil {
			n.nftTables = map[string]bool{}
		}
		n.nftTables[key] = true
	}
	n.nftMu.Unlock()
	out, err := n.Exec("nft", "--echo", "--handle", "add rule "+family+" "+table+" "+chain+" "+rule)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		m := handleRE.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(line, "add rule") {
			continue
		}
		h, _ := strconv.Atoi(m[1])
		text := strings.TrimSpace(strings.TrimSuffix(line, m[0]))
		text = strings.TrimPrefix(text, "add rule "+family+" "+table+" "+chain+" ")
		return &Fault{Rule: text, ns: n, family: family, table: table, chain: chain, handle: h}, nil
	}
	return nil, fmt.Errorf("nft add rule in %s: no handle in output %q", n.Name, out)
}
