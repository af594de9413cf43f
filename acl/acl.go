// Package acl is the language of the trace filter: an ordered list of
// permit and deny rules on address family, addresses and ports, after the
// switch vendor's "tcp trace filter { acl N | acl6 N }" (docs/trace.md).
package acl

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcptap/tcptap/capture"
)

// The trace filter's ACL, after the switch vendor's
// "tcp trace filter { acl N | acl6 N }" (docs/trace.md, config key
// trace.filter): an ordered list of permit and deny rules that decides which
// connections are traced.
//
// One rule per string, tokens separated by white space, keywords
// case-insensitive:
//
//	rule      = action { family | criterion | "any" }
//	action    = "permit" | "deny"
//	family    = "ipv4" | "ipv6"
//	criterion = ("source" | "src") addrspec
//	          | ("source-port" | "sport") portspec
//	          | ("destination" | "dst") addrspec
//	          | ("destination-port" | "dport") portspec
//	addrspec  = PREFIX | ADDR | "any"           e.g. 10.0.0.0/8, 2001:db8::1, any
//	portspec  = PORT | LO "-" HI | "eq" PORT | "range" LO HI | "any"
//
// The family keyword, the criteria and a bare "any" (which restricts
// nothing: "permit any", "deny any") may come in any order but each at most
// once. A bare ADDR is a host prefix (/32 or /128); a prefix with host bits
// set is masked (10.1.2.3/8 is 10.0.0.0/8). Ports are decimal 0-65535 and a
// range needs LO <= HI. "any", or leaving a criterion out, matches anything.
// Without a family keyword the family is that of the prefixes; a source and
// destination of different families, or a family keyword that contradicts a
// prefix, is an error. IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104) and
// zoned addresses are refused: connections are matched with IPv4-mapped
// addresses unmapped, so such a rule could never match; write the IPv4 form.
//
// Examples:
//
//	permit destination-port 80
//	deny src 10.0.0.0/8 dport range 6000 6063
//	permit ipv6 dst 2001:db8::/32 sport 1024-65535

// PortRange is an inclusive port range; the zero value matches any port.
type PortRange struct {
	Lo, Hi uint16
	Set    bool
}

// Contains reports whether port is in the range; an unset range contains
// every port.
func (p PortRange) Contains(port uint16) bool {
	return !p.Set || (p.Lo <= port && port <= p.Hi)
}

// String returns "80" for a single port, "1024-65535" for a range and "any"
// for the zero value.
func (p PortRange) String() string {
	switch {
	case !p.Set:
		return "any"
	case p.Lo == p.Hi:
		return strconv.Itoa(int(p.Lo))
	}
	return strconv.Itoa(int(p.Lo)) + "-" + strconv.Itoa(int(p.Hi))
}

// Rule is one permit or deny rule. A zero criterion matches anything.
type Rule struct {
	Permit             bool
	Family             capture.Family // 0: any
	Src, Dst           netip.Prefix   // invalid (zero) prefix: any
	SrcPorts, DstPorts PortRange
}

// RuleError is the error of ParseRule and Parse: which rule (Index
// is 1-based in Parse's list, 0 for a single rule) and what is wrong.
type RuleError struct {
	Index int
	Rule  string
	Err   error
}

func (e *RuleError) Error() string {
	if e.Index > 0 {
		return fmt.Sprintf("rule %d %q: %v", e.Index, e.Rule, e.Err)
	}
	return fmt.Sprintf("rule %q: %v", e.Rule, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

const aclWant = "want ipv4, ipv6, source, source-port, destination or destination-port"

// ParseRule parses one rule in the syntax described above. The rule's
// Family is set from the family keyword or, without one, from the prefixes,
// so Family is 0 only when the rule names no family and no prefix. The error
// is an *RuleError that quotes the rule, names the bad token and says what
// was expected.
func ParseRule(s string) (Rule, error) {
	r, err := parseACLRule(s)
	if err != nil {
		return Rule{}, &RuleError{Rule: s, Err: err}
	}
	return r, nil
}

func parseACLRule(s string) (Rule, error) {
	var r Rule
	tok := strings.Fields(s)
	if len(tok) == 0 {
		return r, errors.New("empty rule; want permit or deny")
	}
	switch strings.ToLower(tok[0]) {
	case "permit":
		r.Permit = true
	case "deny":
	default:
		return r, fmt.Errorf("unexpected %q at the start; want permit or deny", tok[0])
	}
	var seenFamily, seenAny, seenSrc, seenDst, seenSport, seenDport bool
	for i := 1; i < len(tok); {
		kw := strings.ToLower(tok[i])
		args := tok[i+1:]
		var err error
		n := 0 // arguments consumed
		switch kw {
		case "ipv4", "ipv6":
			if seenFamily {
				return r, fmt.Errorf("%s: address family given twice", tok[i])
			}
			seenFamily = true
			r.Family = capture.IPv4
			if kw == "ipv6" {
				r.Family = capture.IPv6
			}
		case "source", "src":
			if seenSrc {
				return r, fmt.Errorf("%s: source given twice", tok[i])
			}
			seenSrc = true
			r.Src, n, err = parseACLAddr(tok[i], args)
		case "destination", "dst":
			if seenDst {
				return r, fmt.Errorf("%s: destination given twice", tok[i])
			}
			seenDst = true
			r.Dst, n, err = parseACLAddr(tok[i], args)
		case "source-port", "sport":
			if seenSport {
				return r, fmt.Errorf("%s: source port given twice", tok[i])
			}
			seenSport = true
			r.SrcPorts, n, err = parseACLPorts(tok[i], args)
		case "destination-port", "dport":
			if seenDport {
				return r, fmt.Errorf("%s: destination port given twice", tok[i])
			}
			seenDport = true
			r.DstPorts, n, err = parseACLPorts(tok[i], args)
		case "any":
			// A bare "any" ("permit any") restricts nothing.
			if seenAny {
				return r, fmt.Errorf("%s: given twice", tok[i])
			}
			seenAny = true
		case "permit", "deny":
			return r, fmt.Errorf("unexpected %q: permit or deny only starts a rule; %s", tok[i], aclWant)
		default:
			if lo, hi, _ := strings.Cut(tok[i], "-"); isDigits(lo) && (hi == "" || isDigits(hi)) {
				return r, fmt.Errorf("unexpected %q; a port needs source-port or destination-port before it", tok[i])
			}
			if _, err := parseACLPrefix(tok[i]); err == nil {
				return r, fmt.Errorf("unexpected %q; an address or prefix needs source or destination before it", tok[i])
			}
			return r, fmt.Errorf("unexpected %q; %s", tok[i], aclWant)
		}
		if err != nil {
			return r, err
		}
		i += 1 + n
	}
	// The family: from the keyword, else from the prefixes; all must agree.
	srcFam, dstFam := prefixFamily(r.Src), prefixFamily(r.Dst)
	if srcFam != 0 && dstFam != 0 && srcFam != dstFam {
		return r, fmt.Errorf("source %s is %s but destination %s is %s; a rule matches one address family",
			prefixText(r.Src), familyName(srcFam), prefixText(r.Dst), familyName(dstFam))
	}
	for _, p := range [...]struct {
		name string
		fam  capture.Family
		pfx  netip.Prefix
	}{{"source", srcFam, r.Src}, {"destination", dstFam, r.Dst}} {
		if p.fam == 0 {
			continue
		}
		if r.Family != 0 && r.Family != p.fam {
			return r, fmt.Errorf("%s rule has %s %s %s; drop %q or use an %s prefix",
				r.Family, familyName(p.fam), p.name, prefixText(p.pfx), r.Family.String(), familyName(r.Family))
		}
		r.Family = p.fam
	}
	return r, nil
}

// parseACLAddr parses the argument of source or destination (kw).
func parseACLAddr(kw string, args []string) (netip.Prefix, int, error) {
	if len(args) == 0 || isACLKeyword(args[0]) {
		return netip.Prefix{}, 0, fmt.Errorf("%s: want an address, a prefix or any; got %s", kw, gotToken(args))
	}
	a := args[0]
	if strings.EqualFold(a, "any") {
		return netip.Prefix{}, 1, nil
	}
	p, err := parseACLPrefix(a)
	if err != nil {
		return netip.Prefix{}, 0, fmt.Errorf("%s: %w", kw, err)
	}
	return p, 1, nil
}

// parseACLPrefix parses "ADDR/BITS" or a bare "ADDR" (a host prefix).
func parseACLPrefix(s string) (netip.Prefix, error) {
	as, bs, hasBits := strings.Cut(s, "/")
	what := "address"
	if hasBits {
		what = "prefix"
	}
	ip, err := netip.ParseAddr(as)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "ParseAddr("+strconv.Quote(as)+"): ")
		if hasBits {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: address %q: %s", s, as, msg)
		}
		return netip.Prefix{}, fmt.Errorf("bad address %q: %s; want an IPv4 or IPv6 address or prefix", s, msg)
	}
	if ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad %s %q: zone %q not allowed", what, s, ip.Zone())
	}
	if ip.Is4In6() {
		return netip.Prefix{}, fmt.Errorf("bad %s %q: IPv4-mapped IPv6 address never matches (connections are matched unmapped); write it as IPv4", what, s)
	}
	bits := ip.BitLen()
	if hasBits {
		if bs == "" {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: missing length after \"/\"", s)
		}
		if !isDigits(bs) {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: length %q is not a number 0-%d", s, bs, ip.BitLen())
		}
		n, err := strconv.Atoi(bs)
		if err != nil || n > ip.BitLen() {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: length %s is more than %d for %s", s, bs, ip.BitLen(), familyName(prefixFamily(netip.PrefixFrom(ip, 0))))
		}
		bits = n
	}
	return netip.PrefixFrom(ip, bits).Masked(), nil
}

// parseACLPorts parses the argument(s) of source-port or destination-port (kw).
func parseACLPorts(kw string, args []string) (PortRange, int, error) {
	if len(args) == 0 || isACLKeyword(args[0]) {
		return PortRange{}, 0, fmt.Errorf("%s: want a port, LO-HI, eq PORT, range LO HI or any; got %s", kw, gotToken(args))
	}
	a := args[0]
	switch strings.ToLower(a) {
	case "any":
		return PortRange{}, 1, nil
	case "eq":
		if len(args) < 2 || isACLKeyword(args[1]) {
			return PortRange{}, 0, fmt.Errorf("%s %s: want a port; got %s", kw, a, gotToken(args[1:]))
		}
		p, err := parseACLPort(args[1])
		if err != nil {
			return PortRange{}, 0, fmt.Errorf("%s eq: %w", kw, err)
		}
		return PortRange{Lo: p, Hi: p, Set: true}, 2, nil
	case "range":
		for j := 1; j <= 2; j++ {
			if j >= len(args) || isACLKeyword(args[j]) {
				return PortRange{}, 0, fmt.Errorf("%s %s: want two ports LO HI; got %s", kw, a, gotToken(args[j:]))
			}
		}
		pr, err := aclRange(args[1], args[2])
		if err != nil {
			return PortRange{}, 0, fmt.Errorf("%s %s %s %s: %w", kw, a, args[1], args[2], err)
		}
		return pr, 3, nil
	}
	if lo, hi, ok := strings.Cut(a, "-"); ok {
		if lo == "" || hi == "" || strings.Contains(hi, "-") {
			return PortRange{}, 0, fmt.Errorf("%s: bad port range %q: want LO-HI, two ports 0-65535", kw, a)
		}
		pr, err := aclRange(lo, hi)
		if err != nil {
			return PortRange{}, 0, fmt.Errorf("%s %s: %w", kw, a, err)
		}
		return pr, 1, nil
	}
	p, err := parseACLPort(a)
	if err != nil {
		return PortRange{}, 0, fmt.Errorf("%s: %w", kw, err)
	}
	return PortRange{Lo: p, Hi: p, Set: true}, 1, nil
}

func aclRange(los, his string) (PortRange, error) {
	lo, err := parseACLPort(los)
	if err != nil {
		return PortRange{}, err
	}
	hi, err := parseACLPort(his)
	if err != nil {
		return PortRange{}, err
	}
	if lo > hi {
		return PortRange{}, fmt.Errorf("low port %d is above high port %d", lo, hi)
	}
	return PortRange{Lo: lo, Hi: hi, Set: true}, nil
}

func parseACLPort(s string) (uint16, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("bad port %q: want a number 0-65535", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q: out of range 0-65535", s)
	}
	return uint16(n), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isACLKeyword reports whether s starts a new criterion, so a missing
// argument is reported as missing rather than as a bad address or port.
func isACLKeyword(s string) bool {
	switch strings.ToLower(s) {
	case "permit", "deny", "ipv4", "ipv6", "source", "src", "destination", "dst",
		"source-port", "sport", "destination-port", "dport":
		return true
	}
	return false
}

// gotToken describes what was found instead of an argument.
func gotToken(args []string) string {
	if len(args) == 0 {
		return "end of rule"
	}
	return strconv.Quote(args[0])
}

// prefixText writes a host prefix as its address.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func prefixFamily(p netip.Prefix) capture.Family {
	switch {
	case !p.IsValid():
		return 0
	case p.Addr().Is4():
		return capture.IPv4
	}
	return capture.IPv6
}

func familyName(f capture.Family) string {
	if f == capture.IPv4 {
		return "IPv4"
	}
	return "IPv6"
}

// String returns the rule in canonical form, which ParseRule parses back
// to the same rule: the action, the family keyword when no prefix implies
// it, then source, source-port, destination, destination-port for the
// criteria that are set, or "any" when there are none ("permit any"). Host
// prefixes are written as bare addresses.
func (r Rule) String() string {
	var b strings.Builder
	if r.Permit {
		b.WriteString("permit")
	} else {
		b.WriteString("deny")
	}
	if r.Family != 0 && prefixFamily(r.Src) != r.Family && prefixFamily(r.Dst) != r.Family {
		b.WriteString(" ")
		b.WriteString(r.Family.String())
	}
	writePrefix := func(kw string, p netip.Prefix) {
		if !p.IsValid() {
			return
		}
		b.WriteString(" " + kw + " " + prefixText(p))
	}
	writePorts := func(kw string, p PortRange) {
		if p.Set {
			b.WriteString(" " + kw + " " + p.String())
		}
	}
	writePrefix("source", r.Src)
	writePorts("source-port", r.SrcPorts)
	writePrefix("destination", r.Dst)
	writePorts("destination-port", r.DstPorts)
	if r.Family == 0 && !r.Src.IsValid() && !r.Dst.IsValid() && !r.SrcPorts.Set && !r.DstPorts.Set {
		b.WriteString(" any")
	}
	return b.String()
}

// match reports whether the rule matches a connection from src to dst, in
// that orientation. The addresses are unmapped and have no zone.
func (r *Rule) match(fam capture.Family, src, dst netip.AddrPort) bool {
	if r.Family != 0 && r.Family != fam {
		return false
	}
	if r.Src.IsValid() && !r.Src.Contains(src.Addr()) {
		return false
	}
	if r.Dst.IsValid() && !r.Dst.Contains(dst.Addr()) {
		return false
	}
	return r.SrcPorts.Contains(src.Port()) && r.DstPorts.Contains(dst.Port())
}

// List is an ACL: an ordered rule list, first match wins.
type List []Rule

// Parse parses one rule per string (as config key trace.filter or the
// repeatable --filter flag give them). An error is an *RuleError naming
// the rule's 1-based index. No rules give an empty ACL, which permits
// everything.
func Parse(rules []string) (List, error) {
	a := make(List, 0, len(rules))
	for i, s := range rules {
		r, err := parseACLRule(s)
		if err != nil {
			return nil, &RuleError{Index: i + 1, Rule: s, Err: err}
		}
		a = append(a, r)
	}
	return a, nil
}

// Strings returns the rules in canonical form, one string per rule.
func (a List) Strings() []string {
	s := make([]string, len(a))
	for i, r := range a {
		s[i] = r.String()
	}
	return s
}

// Permits reports whether a connection between client and server is traced.
//
// An empty ACL permits every connection (no filter configured). Otherwise
// the rules are tried in order and the first rule that matches decides:
// permit traces the connection, deny does not. A connection that no rule
// matches is denied, as by the implicit "deny any" at the end of a switch
// ACL.
//
// A rule matches a connection if it matches it in either orientation: first
// as client→server (source = client, destination = server), then reversed
// as server→client (source = server, destination = client). A connection is
// both directions of traffic, and an operator who writes
// "permit destination-port 80" or "deny source 10.0.0.0/8" about one
// direction means the connection whichever side of it the rule describes;
// the reverse orientation also covers a mid-stream connection whose client
// was guessed the wrong way round. So the ACL "deny source 10.0.0.0/8",
// "permit any" traces every connection except those with an endpoint in
// 10.0.0.0/8, whether that endpoint is the client or the server; and
// "permit destination-port 80" traces a connection to a server's port 80 as
// well as one whose client used source port 80.
//
// IPv4-mapped IPv6 addresses are unmapped and zones ignored before matching,
// so an IPv4 rule matches ::ffff:10.0.0.1 and an IPv6 rule (family ipv6 or
// an IPv6 prefix) never matches an IPv4 connection. Permits does not
// allocate.
func (a List) Permits(client, server netip.AddrPort) bool {
	if len(a) == 0 {
		return true
	}
	c := netip.AddrPortFrom(client.Addr().Unmap().WithZone(""), client.Port())
	s := netip.AddrPortFrom(server.Addr().Unmap().WithZone(""), server.Port())
	var fam capture.Family
	switch {
	case c.Addr().Is4() && s.Addr().Is4():
		fam = capture.IPv4
	case c.Addr().Is6() && s.Addr().Is6():
		fam = capture.IPv6
	}
	for i := range a {
		r := &a[i]
		if r.match(fam, c, s) || r.match(fam, s, c) {
			return r.Permit
		}
	}
	return false
}
