package acl

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/tcptap/tcptap/capture"
)

var (
	aclP   = netip.MustParsePrefix
	aclAny = PortRange{}
)

func aclPort(p uint16) PortRange       { return PortRange{Lo: p, Hi: p, Set: true} }
func aclPorts(lo, hi uint16) PortRange { return PortRange{Lo: lo, Hi: hi, Set: true} }

// aclValid are rules that parse, with the rule and its canonical text.
var aclValid = []struct {
	in   string
	want Rule
	str  string
}{
	// Actions, case, white space, catch-alls.
	{"permit", Rule{Permit: true}, "permit any"},
	{"deny", Rule{}, "deny any"},
	{"PERMIT", Rule{Permit: true}, "permit any"},
	{"Deny Any", Rule{}, "deny any"},
	{"permit any", Rule{Permit: true}, "permit any"},
	{"  permit\t any \n", Rule{Permit: true}, "permit any"},
	{"permit src any dst any sport any dport any", Rule{Permit: true}, "permit any"},
	{"permit any src any", Rule{Permit: true}, "permit any"},
	{"permit source ANY", Rule{Permit: true}, "permit any"},

	// Families.
	{"permit ipv4", Rule{Permit: true, Family: capture.IPv4}, "permit ipv4"},
	{"permit IPv6", Rule{Permit: true, Family: capture.IPv6}, "permit ipv6"},
	{"deny ipv6 any", Rule{Family: capture.IPv6}, "deny ipv6"},
	{"permit ipv4 source 10.0.0.0/8", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8")}, "permit source 10.0.0.0/8"},
	{"permit source 10.0.0.0/8 ipv4", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8")}, "permit source 10.0.0.0/8"},
	{"permit ipv6 destination 2001:db8::/32", Rule{Permit: true, Family: capture.IPv6, Dst: aclP("2001:db8::/32")}, "permit destination 2001:db8::/32"},
	{"permit ipv4 dport 80", Rule{Permit: true, Family: capture.IPv4, DstPorts: aclPort(80)}, "permit ipv4 destination-port 80"},
	{"permit ipv6 sport 1-2", Rule{Permit: true, Family: capture.IPv6, SrcPorts: aclPorts(1, 2)}, "permit ipv6 source-port 1-2"},

	// IPv4 prefixes and addresses; the family is implied.
	{"permit source 10.0.0.0/8", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8")}, "permit source 10.0.0.0/8"},
	{"permit src 10.1.2.3/8", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8")}, "permit source 10.0.0.0/8"},
	{"permit src 10.0.0.1", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.1/32")}, "permit source 10.0.0.1"},
	{"permit src 10.0.0.1/32", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.1/32")}, "permit source 10.0.0.1"},
	{"permit src 0.0.0.0/0", Rule{Permit: true, Family: capture.IPv4, Src: aclP("0.0.0.0/0")}, "permit source 0.0.0.0/0"},
	{"permit src 10.0.0.0/08", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8")}, "permit source 10.0.0.0/8"},
	{"deny destination 192.168.0.0/16", Rule{Family: capture.IPv4, Dst: aclP("192.168.0.0/16")}, "deny destination 192.168.0.0/16"},
	{"deny dst 192.168.1.1", Rule{Family: capture.IPv4, Dst: aclP("192.168.1.1/32")}, "deny destination 192.168.1.1"},
	{"permit src 10.0.0.0/8 dst 192.168.0.0/16", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8"), Dst: aclP("192.168.0.0/16")}, "permit source 10.0.0.0/8 destination 192.168.0.0/16"},
	{"permit src 10.0.0.0/8 dst any", Rule{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8")}, "permit source 10.0.0.0/8"},

	// IPv6.
	{"permit source 2001:db8::/32", Rule{Permit: true, Family: capture.IPv6, Src: aclP("2001:db8::/32")}, "permit source 2001:db8::/32"},
	{"permit src 2001:DB8::1", Rule{Permit: true, Family: capture.IPv6, Src: aclP("2001:db8::1/128")}, "permit source 2001:db8::1"},
	{"permit src 2001:db8::1/128", Rule{Permit: true, Family: capture.IPv6, Src: aclP("2001:db8::1/128")}, "permit source 2001:db8::1"},
	{"permit src 2001:db8::1/32", Rule{Permit: true, Family: capture.IPv6, Src: aclP("2001:db8::/32")}, "permit source 2001:db8::/32"},
	{"permit dst ::/0", Rule{Permit: true, Family: capture.IPv6, Dst: aclP("::/0")}, "permit destination ::/0"},
	{"permit dst ::1", Rule{Permit: true, Family: capture.IPv6, Dst: aclP("::1/128")}, "permit destination ::1"},
	{"deny src fe80::/10 dst ff02::/16", Rule{Family: capture.IPv6, Src: aclP("fe80::/10"), Dst: aclP("ff02::/16")}, "deny source fe80::/10 destination ff02::/16"},
	{"permit src 64:ff9b::/96", Rule{Permit: true, Family: capture.IPv6, Src: aclP("64:ff9b::/96")}, "permit source 64:ff9b::/96"},

	// Ports in all their forms.
	{"permit dport 80", Rule{Permit: true, DstPorts: aclPort(80)}, "permit destination-port 80"},
	{"permit destination-port eq 443", Rule{Permit: true, DstPorts: aclPort(443)}, "permit destination-port 443"},
	{"permit DPORT EQ 443", Rule{Permit: true, DstPorts: aclPort(443)}, "permit destination-port 443"},
	{"permit dport 0", Rule{Permit: true, DstPorts: aclPort(0)}, "permit destination-port 0"},
	{"permit dport 65535", Rule{Permit: true, DstPorts: aclPort(65535)}, "permit destination-port 65535"},
	{"permit dport 00080", Rule{Permit: true, DstPorts: aclPort(80)}, "permit destination-port 80"},
	{"permit dport 6000-6063", Rule{Permit: true, DstPorts: aclPorts(6000, 6063)}, "permit destination-port 6000-6063"},
	{"permit dport range 6000 6063", Rule{Permit: true, DstPorts: aclPorts(6000, 6063)}, "permit destination-port 6000-6063"},
	{"permit dport Range 22 22", Rule{Permit: true, DstPorts: aclPort(22)}, "permit destination-port 22"},
	{"permit dport 22-22", Rule{Permit: true, DstPorts: aclPort(22)}, "permit destination-port 22"},
	{"permit dport 0-65535", Rule{Permit: true, DstPorts: aclPorts(0, 65535)}, "permit destination-port 0-65535"},
	{"permit source-port 1024-65535", Rule{Permit: true, SrcPorts: aclPorts(1024, 65535)}, "permit source-port 1024-65535"},
	{"permit sport eq 53", Rule{Permit: true, SrcPorts: aclPort(53)}, "permit source-port 53"},
	{"permit sport range 0 1023", Rule{Permit: true, SrcPorts: aclPorts(0, 1023)}, "permit source-port 0-1023"},
	{"permit sport any dport 80", Rule{Permit: true, DstPorts: aclPort(80)}, "permit destination-port 80"},

	// Everything, in the canonical order and shuffled.
	{"deny ipv4 source 10.0.0.0/8 source-port 1024-65535 destination 10.1.1.1 destination-port 22",
		Rule{Family: capture.IPv4, Src: aclP("10.0.0.0/8"), SrcPorts: aclPorts(1024, 65535), Dst: aclP("10.1.1.1/32"), DstPorts: aclPort(22)},
		"deny source 10.0.0.0/8 source-port 1024-65535 destination 10.1.1.1 destination-port 22"},
	{"deny dport eq 22 dst 10.1.1.1 sport range 1024 65535 src 10.0.0.0/8 ipv4",
		Rule{Family: capture.IPv4, Src: aclP("10.0.0.0/8"), SrcPorts: aclPorts(1024, 65535), Dst: aclP("10.1.1.1/32"), DstPorts: aclPort(22)},
		"deny source 10.0.0.0/8 source-port 1024-65535 destination 10.1.1.1 destination-port 22"},
	{"permit ipv6 src 2001:db8:1::/48 sport 1-2 dst 2001:db8:2::/48 dport 3-4",
		Rule{Permit: true, Family: capture.IPv6, Src: aclP("2001:db8:1::/48"), SrcPorts: aclPorts(1, 2), Dst: aclP("2001:db8:2::/48"), DstPorts: aclPorts(3, 4)},
		"permit source 2001:db8:1::/48 source-port 1-2 destination 2001:db8:2::/48 destination-port 3-4"},
	{"permit src any dst 2001:db8::/32", Rule{Permit: true, Family: capture.IPv6, Dst: aclP("2001:db8::/32")}, "permit destination 2001:db8::/32"},
}

func TestParseRule(t *testing.T) {
	for _, tc := range aclValid {
		got, err := ParseRule(tc.in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseRule(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
		if s := got.String(); s != tc.str {
			t.Errorf("ParseRule(%q).String() = %q, want %q", tc.in, s, tc.str)
		}
	}
}

func TestACLRuleStringRoundTrip(t *testing.T) {
	for _, tc := range aclValid {
		r, err := ParseRule(tc.in)
		if err != nil {
			t.Fatalf("ParseRule(%q): %v", tc.in, err)
		}
		back, err := ParseRule(r.String())
		if err != nil {
			t.Errorf("ParseRule(%q) (String of %q): %v", r.String(), tc.in, err)
			continue
		}
		if back != r {
			t.Errorf("round trip of %q via %q: got %#v, want %#v", tc.in, r.String(), back, r)
		}
	}
	// Rules built by hand whose family is not implied by a prefix.
	for _, r := range []Rule{
		{Permit: true, Family: capture.IPv4, DstPorts: aclPort(80)},
		{Family: capture.IPv6, SrcPorts: aclPorts(1, 65535)},
		{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8"), Dst: aclP("10.0.0.1/32")},
		{Permit: true},
	} {
		back, err := ParseRule(r.String())
		if err != nil || back != r {
			t.Errorf("round trip of %#v via %q: got %#v, %v", r, r.String(), back, err)
		}
	}
}

func TestPortRangeACL(t *testing.T) {
	for _, tc := range []struct {
		p    PortRange
		port uint16
		want bool
	}{
		{aclAny, 0, true},
		{aclAny, 65535, true},
		{PortRange{Lo: 5, Hi: 6}, 1, true}, // not Set: any
		{aclPort(80), 80, true},
		{aclPort(80), 79, false},
		{aclPort(80), 81, false},
		{aclPort(0), 0, true},
		{aclPort(0), 1, false},
		{aclPort(65535), 65535, true},
		{aclPort(65535), 65534, false},
		{aclPorts(1024, 65535), 1023, false},
		{aclPorts(1024, 65535), 1024, true},
		{aclPorts(1024, 65535), 65535, true},
		{aclPorts(6000, 6063), 6063, true},
		{aclPorts(6000, 6063), 6064, false},
		{aclPorts(0, 65535), 0, true},
		{aclPorts(0, 65535), 65535, true},
	} {
		if got := tc.p.Contains(tc.port); got != tc.want {
			t.Errorf("%+v.Contains(%d) = %v, want %v", tc.p, tc.port, got, tc.want)
		}
	}
	for _, tc := range []struct {
		p    PortRange
		want string
	}{{aclAny, "any"}, {aclPort(80), "80"}, {aclPorts(1, 2), "1-2"}, {aclPorts(0, 65535), "0-65535"}} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// aclInvalid are rules that do not parse, with the whole error message.
var aclInvalid = []struct {
	in, err string
}{
	// Action.
	{"", `rule "": empty rule; want permit or deny`},
	{" \t ", `rule " \t ": empty rule; want permit or deny`},
	{"allow", `rule "allow": unexpected "allow" at the start; want permit or deny`},
	{"src 10.0.0.0/8 permit", `rule "src 10.0.0.0/8 permit": unexpected "src" at the start; want permit or deny`},
	{"permit deny", `rule "permit deny": unexpected "deny": permit or deny only starts a rule; want ipv4, ipv6, source, source-port, destination or destination-port`},
	{"deny dport 80 PERMIT", `rule "deny dport 80 PERMIT": unexpected "PERMIT": permit or deny only starts a rule; want ipv4, ipv6, source, source-port, destination or destination-port`},

	// Unknown tokens, with hints for a missing keyword.
	{"permit foo", `rule "permit foo": unexpected "foo"; want ipv4, ipv6, source, source-port, destination or destination-port`},
	{"permit ip", `rule "permit ip": unexpected "ip"; want ipv4, ipv6, source, source-port, destination or destination-port`},
	{"permit src-port 80", `rule "permit src-port 80": unexpected "src-port"; want ipv4, ipv6, source, source-port, destination or destination-port`},
	{"permit 10.0.0.1", `rule "permit 10.0.0.1": unexpected "10.0.0.1"; an address or prefix needs source or destination before it`},
	{"permit 2001:db8::/32", `rule "permit 2001:db8::/32": unexpected "2001:db8::/32"; an address or prefix needs source or destination before it`},
	{"permit src 10.0.0.1 80", `rule "permit src 10.0.0.1 80": unexpected "80"; a port needs source-port or destination-port before it`},
	{"permit 1024-65535", `rule "permit 1024-65535": unexpected "1024-65535"; a port needs source-port or destination-port before it`},
	{"permit dport range 1 2 3", `rule "permit dport range 1 2 3": unexpected "3"; a port needs source-port or destination-port before it`},

	// Repeats.
	{"permit ipv4 ipv4", `rule "permit ipv4 ipv4": ipv4: address family given twice`},
	{"permit ipv4 IPV6", `rule "permit ipv4 IPV6": IPV6: address family given twice`},
	{"permit any any", `rule "permit any any": any: given twice`},
	{"permit src any source 10.0.0.1", `rule "permit src any source 10.0.0.1": source: source given twice`},
	{"permit dst 1.2.3.4 dst 1.2.3.4", `rule "permit dst 1.2.3.4 dst 1.2.3.4": dst: destination given twice`},
	{"permit sport 1 source-port 2", `rule "permit sport 1 source-port 2": source-port: source port given twice`},
	{"permit dport 1 dport any", `rule "permit dport 1 dport any": dport: destination port given twice`},

	// Missing arguments.
	{"permit source", `rule "permit source": source: want an address, a prefix or any; got end of rule`},
	{"permit dst", `rule "permit dst": dst: want an address, a prefix or any; got end of rule`},
	{"permit source dport 80", `rule "permit source dport 80": source: want an address, a prefix or any; got "dport"`},
	{"permit dst ipv4", `rule "permit dst ipv4": dst: want an address, a prefix or any; got "ipv4"`},
	{"permit dport", `rule "permit dport": dport: want a port, LO-HI, eq PORT, range LO HI or any; got end of rule`},
	{"permit source-port src 1.2.3.4", `rule "permit source-port src 1.2.3.4": source-port: want a port, LO-HI, eq PORT, range LO HI or any; got "src"`},
	{"permit dport eq", `rule "permit dport eq": dport eq: want a port; got end of rule`},
	{"permit dport EQ dst 1.2.3.4", `rule "permit dport EQ dst 1.2.3.4": dport EQ: want a port; got "dst"`},
	{"permit dport range", `rule "permit dport range": dport range: want two ports LO HI; got end of rule`},
	{"permit dport range 1", `rule "permit dport range 1": dport range: want two ports LO HI; got end of rule`},
	{"permit dport range 1 src 1.2.3.4", `rule "permit dport range 1 src 1.2.3.4": dport range: want two ports LO HI; got "src"`},
	{"permit sport range deny 1", `rule "permit sport range deny 1": sport range: want two ports LO HI; got "deny"`},

	// Bad addresses and prefixes.
	{"permit source 10.0.0.0/33", `rule "permit source 10.0.0.0/33": source: bad prefix "10.0.0.0/33": length 33 is more than 32 for IPv4`},
	{"permit source 2001:db8::/129", `rule "permit source 2001:db8::/129": source: bad prefix "2001:db8::/129": length 129 is more than 128 for IPv6`},
	{"permit src 10.0.0.0/99999999999999999999", `rule "permit src 10.0.0.0/99999999999999999999": src: bad prefix "10.0.0.0/99999999999999999999": length 99999999999999999999 is more than 32 for IPv4`},
	{"permit src 10.0.0.0/", `rule "permit src 10.0.0.0/": src: bad prefix "10.0.0.0/": missing length after "/"`},
	{"permit src 10.0.0.0/x", `rule "permit src 10.0.0.0/x": src: bad prefix "10.0.0.0/x": length "x" is not a number 0-32`},
	{"permit src 10.0.0.0/-1", `rule "permit src 10.0.0.0/-1": src: bad prefix "10.0.0.0/-1": length "-1" is not a number 0-32`},
	{"permit src ::/+8", `rule "permit src ::/+8": src: bad prefix "::/+8": length "+8" is not a number 0-128`},
	{"permit src 10.0.0.0/8/8", `rule "permit src 10.0.0.0/8/8": src: bad prefix "10.0.0.0/8/8": length "8/8" is not a number 0-32`},
	{"permit src 10.0.0/8", `rule "permit src 10.0.0/8": src: bad prefix "10.0.0/8": address "10.0.0": IPv4 address too short`},
	{"permit src /8", `rule "permit src /8": src: bad prefix "/8": address "": unable to parse IP`},
	{"permit src 10.0.0.256", `rule "permit src 10.0.0.256": src: bad address "10.0.0.256": IPv4 field has value >255; want an IPv4 or IPv6 address or prefix`},
	{"permit dst x", `rule "permit dst x": dst: bad address "x": unable to parse IP; want an IPv4 or IPv6 address or prefix`},
	{"permit dst 2001:db8:::1", `rule "permit dst 2001:db8:::1": dst: bad address "2001:db8:::1": each colon-separated field must have at least one digit (at ":1"); want an IPv4 or IPv6 address or prefix`},
	{"permit src fe80::1%eth0", `rule "permit src fe80::1%eth0": src: bad address "fe80::1%eth0": zone "eth0" not allowed`},
	{"permit src fe80::%eth0/64", `rule "permit src fe80::%eth0/64": src: bad prefix "fe80::%eth0/64": zone "eth0" not allowed`},
	{"permit src ::ffff:10.0.0.1", `rule "permit src ::ffff:10.0.0.1": src: bad address "::ffff:10.0.0.1": IPv4-mapped IPv6 address never matches (connections are matched unmapped); write it as IPv4`},
	{"permit dst ::ffff:10.0.0.0/104", `rule "permit dst ::ffff:10.0.0.0/104": dst: bad prefix "::ffff:10.0.0.0/104": IPv4-mapped IPv6 address never matches (connections are matched unmapped); write it as IPv4`},

	// Families that disagree.
	{"permit src 10.0.0.0/8 dst 2001:db8::1", `rule "permit src 10.0.0.0/8 dst 2001:db8::1": source 10.0.0.0/8 is IPv4 but destination 2001:db8::1 is IPv6; a rule matches one address family`},
	{"permit src 2001:db8::/32 dst 10.0.0.1", `rule "permit src 2001:db8::/32 dst 10.0.0.1": source 2001:db8::/32 is IPv6 but destination 10.0.0.1 is IPv4; a rule matches one address family`},
	{"permit ipv6 src 10.0.0.0/8", `rule "permit ipv6 src 10.0.0.0/8": ipv6 rule has IPv4 source 10.0.0.0/8; drop "ipv6" or use an IPv6 prefix`},
	{"permit ipv4 dst ::1", `rule "permit ipv4 dst ::1": ipv4 rule has IPv6 destination ::1; drop "ipv4" or use an IPv4 prefix`},
	{"permit dst 2001:db8::/32 ipv4", `rule "permit dst 2001:db8::/32 ipv4": ipv4 rule has IPv6 destination 2001:db8::/32; drop "ipv4" or use an IPv4 prefix`},

	// Bad ports and ranges.
	{"permit dport 65536", `rule "permit dport 65536": dport: bad port "65536": out of range 0-65535`},
	{"permit dport 99999999999999999999", `rule "permit dport 99999999999999999999": dport: bad port "99999999999999999999": out of range 0-65535`},
	{"permit dport http", `rule "permit dport http": dport: bad port "http": want a number 0-65535`},
	{"permit dport +1", `rule "permit dport +1": dport: bad port "+1": want a number 0-65535`},
	{"permit sport 0x10", `rule "permit sport 0x10": sport: bad port "0x10": want a number 0-65535`},
	{"permit sport 1_000", `rule "permit sport 1_000": sport: bad port "1_000": want a number 0-65535`},
	{"permit dport eq x", `rule "permit dport eq x": dport eq: bad port "x": want a number 0-65535`},
	{"permit dport eq 70000", `rule "permit dport eq 70000": dport eq: bad port "70000": out of range 0-65535`},
	{"permit dport eq 1-2", `rule "permit dport eq 1-2": dport eq: bad port "1-2": want a number 0-65535`},
	{"permit dport 5-1", `rule "permit dport 5-1": dport 5-1: low port 5 is above high port 1`},
	{"permit dport range 5 1", `rule "permit dport range 5 1": dport range 5 1: low port 5 is above high port 1`},
	{"permit dport range x 1", `rule "permit dport range x 1": dport range x 1: bad port "x": want a number 0-65535`},
	{"permit dport range 1 65536", `rule "permit dport range 1 65536": dport range 1 65536: bad port "65536": out of range 0-65535`},
	{"permit dport 1-65536", `rule "permit dport 1-65536": dport 1-65536: bad port "65536": out of range 0-65535`},
	{"permit dport a-1", `rule "permit dport a-1": dport a-1: bad port "a": want a number 0-65535`},
	{"permit dport -1", `rule "permit dport -1": dport: bad port range "-1": want LO-HI, two ports 0-65535`},
	{"permit dport 1-", `rule "permit dport 1-": dport: bad port range "1-": want LO-HI, two ports 0-65535`},
	{"permit dport -", `rule "permit dport -": dport: bad port range "-": want LO-HI, two ports 0-65535`},
	{"permit dport 1-2-3", `rule "permit dport 1-2-3": dport: bad port range "1-2-3": want LO-HI, two ports 0-65535`},
}

func TestParseRuleErrors(t *testing.T) {
	for _, tc := range aclInvalid {
		r, err := ParseRule(tc.in)
		if err == nil {
			t.Errorf("ParseRule(%q) = %q, want error %q", tc.in, r, tc.err)
			continue
		}
		if err.Error() != tc.err {
			t.Errorf("ParseRule(%q) error\n got: %s\nwant: %s", tc.in, err, tc.err)
		}
		var re *RuleError
		if !errors.As(err, &re) || re.Index != 0 || re.Rule != tc.in || re.Err == nil || errors.Unwrap(err) != re.Err {
			t.Errorf("ParseRule(%q) error %#v: want *RuleError{Index: 0, Rule: %q}", tc.in, err, tc.in)
		}
		if r != (Rule{}) {
			t.Errorf("ParseRule(%q) = %#v with an error, want the zero rule", tc.in, r)
		}
	}
}

func TestParse(t *testing.T) {
	a, err := Parse(nil)
	if err != nil || len(a) != 0 {
		t.Errorf("Parse(nil) = %v, %v; want empty, nil", a, err)
	}
	in := []string{"deny dport 22", "permit src 10.0.0.0/8", "PERMIT IPV6"}
	a, err = Parse(in)
	if err != nil {
		t.Fatalf("Parse(%q): %v", in, err)
	}
	want := List{
		{DstPorts: aclPort(22)},
		{Permit: true, Family: capture.IPv4, Src: aclP("10.0.0.0/8")},
		{Permit: true, Family: capture.IPv6},
	}
	if len(a) != len(want) {
		t.Fatalf("Parse(%q) = %v, want %v", in, a, want)
	}
	for i := range want {
		if a[i] != want[i] {
			t.Errorf("Parse(%q)[%d] = %#v, want %#v", in, i, a[i], want[i])
		}
	}
	wantStr := []string{"deny destination-port 22", "permit source 10.0.0.0/8", "permit ipv6"}
	for i, s := range a.Strings() {
		if s != wantStr[i] {
			t.Errorf("Strings()[%d] = %q, want %q", i, s, wantStr[i])
		}
	}

	for _, tc := range []struct {
		in    []string
		index int
		err   string
	}{
		{[]string{"deny"}, 0, ""},
		{[]string{""}, 1, `rule 1 "": empty rule; want permit or deny`},
		{[]string{"permit", "deny src x"}, 2, `rule 2 "deny src x": src: bad address "x": unable to parse IP; want an IPv4 or IPv6 address or prefix`},
		{[]string{"permit", "deny", "permit source 10.0.0.0/33", "bogus"}, 3, `rule 3 "permit source 10.0.0.0/33": source: bad prefix "10.0.0.0/33": length 33 is more than 32 for IPv4`},
	} {
		a, err := Parse(tc.in)
		if tc.err == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", tc.in, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.err {
			t.Errorf("Parse(%q) error\n got: %v\nwant: %s", tc.in, err, tc.err)
			continue
		}
		if a != nil {
			t.Errorf("Parse(%q) = %v with an error, want nil", tc.in, a)
		}
		var re *RuleError
		if !errors.As(err, &re) || re.Index != tc.index || re.Rule != tc.in[tc.index-1] {
			t.Errorf("Parse(%q) error %#v: want index %d", tc.in, err, tc.index)
		}
	}
}

func TestACLPermits(t *testing.T) {
	for _, tc := range []struct {
		name           string
		rules          []string
		client, server string
		want           bool
	}{
		// No filter.
		{"empty permits v4", nil, "10.0.0.1:40000", "10.0.0.2:80", true},
		{"empty permits v6", []string{}, "[2001:db8::1]:40000", "[2001:db8::2]:80", true},

		// Catch-alls and the implicit deny.
		{"permit any", []string{"permit any"}, "10.0.0.1:1", "10.0.0.2:2", true},
		{"permit any v6", []string{"permit"}, "[::1]:1", "[::2]:2", true},
		{"deny any", []string{"deny any"}, "10.0.0.1:1", "10.0.0.2:2", false},
		{"implicit deny", []string{"permit dport 80"}, "10.0.0.1:40000", "10.0.0.2:443", false},
		{"implicit deny after denies", []string{"deny dport 22", "deny dport 23"}, "10.0.0.1:40000", "10.0.0.2:80", false},

		// IPv4 prefixes, forward orientation.
		{"src prefix match", []string{"permit src 10.0.0.0/8"}, "10.1.2.3:40000", "192.168.0.1:80", true},
		{"src prefix miss", []string{"permit src 10.0.0.0/8"}, "11.1.2.3:40000", "192.168.0.1:80", false},
		{"src host match", []string{"permit src 10.0.0.1"}, "10.0.0.1:40000", "192.168.0.1:80", true},
		{"src host miss", []string{"permit src 10.0.0.1"}, "10.0.0.2:40000", "192.168.0.1:80", false},
		{"src /0 matches all v4", []string{"permit src 0.0.0.0/0"}, "1.2.3.4:1", "5.6.7.8:2", true},
		{"dst prefix match", []string{"permit dst 192.168.0.0/16"}, "10.0.0.1:40000", "192.168.7.7:80", true},
		{"dst prefix miss", []string{"permit dst 192.168.0.0/16"}, "10.0.0.1:40000", "192.169.0.1:80", false},
		{"src and dst", []string{"permit src 10.0.0.0/8 dst 192.168.0.0/16"}, "10.0.0.1:40000", "192.168.0.1:80", true},
		{"src and dst, dst misses", []string{"permit src 10.0.0.0/8 dst 192.168.0.0/16"}, "10.0.0.1:40000", "172.16.0.1:80", false},
		{"full 5-criteria rule", []string{"permit ipv4 src 10.0.0.0/8 sport 1024-65535 dst 192.168.0.1 dport 443"}, "10.9.9.9:50000", "192.168.0.1:443", true},
		{"full rule, sport misses", []string{"permit ipv4 src 10.0.0.0/8 sport 1024-65535 dst 192.168.0.1 dport 443"}, "10.9.9.9:1000", "192.168.0.1:443", false},

		// Ports and ranges.
		{"dport match", []string{"permit dport 80"}, "10.0.0.1:40000", "10.0.0.2:80", true},
		{"dport 0", []string{"permit dport 0"}, "10.0.0.1:40000", "10.0.0.2:0", true},
		{"dport 65535", []string{"permit dport eq 65535"}, "10.0.0.1:40000", "10.0.0.2:65535", true},
		{"range low edge", []string{"permit dport 6000-6063"}, "10.0.0.1:40000", "10.0.0.2:6000", true},
		{"range high edge", []string{"permit dport range 6000 6063"}, "10.0.0.1:40000", "10.0.0.2:6063", true},
		{"range below", []string{"permit dport 6000-6063"}, "10.0.0.1:40000", "10.0.0.2:5999", false},
		{"range above", []string{"permit dport 6000-6063"}, "10.0.0.1:40000", "10.0.0.2:6064", false},
		{"sport range", []string{"permit sport 1024-65535 dport 22"}, "10.0.0.1:1024", "10.0.0.2:22", true},
		{"sport range miss", []string{"permit sport 1024-65535 dport 22"}, "10.0.0.1:1023", "10.0.0.2:22", false},
		{"full port range", []string{"permit sport 0-65535"}, "10.0.0.1:0", "10.0.0.2:1", true},

		// Order: deny before permit, first match wins.
		{"deny before permit", []string{"deny dport 22", "permit any"}, "10.0.0.1:40000", "10.0.0.2:22", false},
		{"deny before permit, other port", []string{"deny dport 22", "permit any"}, "10.0.0.1:40000", "10.0.0.2:80", true},
		{"permit before deny", []string{"permit dport 22", "deny any"}, "10.0.0.1:40000", "10.0.0.2:22", true},
		{"host deny inside permitted net", []string{"deny src 10.0.0.66", "permit src 10.0.0.0/8"}, "10.0.0.66:40000", "8.8.8.8:53", false},
		{"host deny, other host", []string{"deny src 10.0.0.66", "permit src 10.0.0.0/8"}, "10.0.0.65:40000", "8.8.8.8:53", true},
		{"net permit shadows host deny", []string{"permit src 10.0.0.0/8", "deny src 10.0.0.66"}, "10.0.0.66:40000", "8.8.8.8:53", true},
		{"first of several", []string{"deny dport 1", "deny dport 2", "permit dport 3", "deny dport 3"}, "10.0.0.1:40000", "10.0.0.2:3", true},
		{"narrow range deny in wide permit", []string{"deny dport 8000-8099", "permit dport 1-65535"}, "10.0.0.1:40000", "10.0.0.2:8050", false},

		// Reverse orientation: the rule describes the server→client direction.
		{"reverse dport", []string{"permit dport 80"}, "10.0.0.2:80", "10.0.0.1:40000", true},
		{"reverse src", []string{"permit src 10.0.0.0/8"}, "192.168.0.1:40000", "10.0.0.5:80", true},
		{"reverse src and dport", []string{"permit src 10.0.0.5 sport 80 dst 192.168.0.0/16"}, "192.168.0.1:40000", "10.0.0.5:80", true},
		{"reverse needs the whole rule", []string{"permit src 10.0.0.5 sport 80 dst 192.168.0.0/16"}, "172.16.0.1:40000", "10.0.0.5:80", false},
		{"no mixing of orientations", []string{"permit src 10.0.0.1 dst 10.0.0.2"}, "10.0.0.1:1", "10.0.0.3:2", false},
		{"no mixing of orientations 2", []string{"permit sport 1 dport 1"}, "10.0.0.1:1", "10.0.0.2:2", false},
		{"reverse deny wins over later permit", []string{"deny src 10.0.0.0/8", "permit any"}, "192.168.0.1:40000", "10.0.0.5:80", false},
		{"reverse earlier rule beats forward later rule", []string{"deny dport 40000", "permit dport 80"}, "10.0.0.1:40000", "10.0.0.2:80", false},
		{"reverse v6", []string{"permit dst 2001:db8:1::/48 dport 443"}, "[2001:db8:1::5]:443", "[2001:db8:2::1]:50000", true},

		// IPv6.
		{"v6 src prefix", []string{"permit src 2001:db8::/32"}, "[2001:db8:1::1]:40000", "[2001:db9::1]:80", true},
		{"v6 src prefix miss", []string{"permit src 2001:db8::/32"}, "[2001:db9::1]:40000", "[2001:dba::1]:80", false},
		{"v6 host", []string{"permit dst 2001:db8::80 dport 80"}, "[2001:db8::1]:40000", "[2001:db8::80]:80", true},
		{"v6 host miss", []string{"permit dst 2001:db8::80 dport 80"}, "[2001:db8::1]:40000", "[2001:db8::81]:80", false},
		{"v6 ::/0", []string{"permit dst ::/0"}, "[fe80::1]:1", "[fe80::2]:2", true},
		{"v6 zone ignored", []string{"permit src fe80::/10"}, "[fe80::1%eth0]:1", "[fe80::2%eth0]:2", true},
		{"ipv6 keyword", []string{"permit ipv6"}, "[2001:db8::1]:1", "[2001:db8::2]:2", true},
		{"ipv6 deny then v4 permit", []string{"deny ipv6", "permit ipv4"}, "[2001:db8::1]:1", "[2001:db8::2]:2", false},

		// Family mismatch: a rule of one family never matches the other.
		{"v6 rule, v4 conn", []string{"permit ipv6"}, "10.0.0.1:1", "10.0.0.2:2", false},
		{"v6 ::/0, v4 conn", []string{"permit src ::/0"}, "10.0.0.1:1", "10.0.0.2:2", false},
		{"v6 ::/0 dst, v4 conn", []string{"permit dst ::/0"}, "10.0.0.1:1", "10.0.0.2:2", false},
		{"v6 port rule, v4 conn", []string{"permit ipv6 dport 80"}, "10.0.0.1:40000", "10.0.0.2:80", false},
		{"v4 rule, v6 conn", []string{"permit ipv4"}, "[::1]:1", "[::2]:2", false},
		{"v4 0/0, v6 conn", []string{"permit dst 0.0.0.0/0"}, "[::1]:1", "[::2]:2", false},
		{"v4 deny, v6 conn falls through", []string{"deny ipv4", "permit any"}, "[::1]:1", "[::2]:2", true},
		{"v6 deny, v4 conn falls through", []string{"deny ipv6 dport 80", "permit dport 80"}, "10.0.0.1:40000", "10.0.0.2:80", true},
		{"familyless port rule, v6 conn", []string{"permit dport 80"}, "[::1]:40000", "[::2]:80", true},

		// IPv4-mapped IPv6 addresses are unmapped.
		{"mapped matches v4 prefix", []string{"permit src 10.0.0.0/8"}, "[::ffff:10.0.0.1]:40000", "[::ffff:192.168.0.1]:80", true},
		{"mapped matches ipv4", []string{"permit ipv4"}, "[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.2]:2", true},
		{"mapped does not match ipv6", []string{"permit ipv6"}, "[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.2]:2", false},
		{"mapped reverse", []string{"permit dst 10.0.0.1 dport 40000"}, "[::ffff:192.168.0.1]:80", "[::ffff:10.0.0.1]:40000", true},
		{"one side mapped", []string{"permit ipv4 dst 192.168.0.1"}, "10.0.0.1:40000", "[::ffff:192.168.0.1]:80", true},

		// A mixed-family pair (not a real connection) matches no family rule.
		{"mixed pair, family rule", []string{"permit ipv4", "permit ipv6"}, "10.0.0.1:1", "[::1]:2", false},
		{"mixed pair, v4 prefix", []string{"permit src 10.0.0.1"}, "10.0.0.1:1", "[::1]:2", false},
		{"mixed pair, port rule", []string{"permit dport 2"}, "10.0.0.1:1", "[::1]:2", true},
	} {
		acl, err := Parse(tc.rules)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		client, server := netip.MustParseAddrPort(tc.client), netip.MustParseAddrPort(tc.server)
		if got := acl.Permits(client, server); got != tc.want {
			t.Errorf("%s: ACL %q Permits(%s, %s) = %v, want %v", tc.name, tc.rules, client, server, got, tc.want)
		}
	}
}

// A zero AddrPort has no address and port 0: it matches the rules that
// restrict neither family nor prefix, and Permits must not panic on it.
func TestACLPermitsZeroAddr(t *testing.T) {
	var zero netip.AddrPort
	for _, tc := range []struct {
		rules []string
		want  bool
	}{
		{[]string{"permit any"}, true},
		{[]string{"permit ipv4"}, false},
		{[]string{"permit ipv6"}, false},
		{[]string{"permit src 0.0.0.0/0"}, false},
		{[]string{"permit dport 0"}, true},
	} {
		acl, err := Parse(tc.rules)
		if err != nil {
			t.Fatal(err)
		}
		if got := acl.Permits(zero, zero); got != tc.want {
			t.Errorf("ACL %q Permits(zero, zero) = %v, want %v", tc.rules, got, tc.want)
		}
	}
}

func TestACLPermitsAllocs(t *testing.T) {
	acl, err := Parse([]string{
		"deny ipv6 src fe80::/10",
		"deny src 10.0.0.66 dport 22",
		"permit src 2001:db8::/32 dport 443",
		"permit src 10.0.0.0/8 sport 1024-65535 dst 192.168.0.0/16 dport range 6000 6063",
	})
	if err != nil {
		t.Fatal(err)
	}
	conns := [][2]netip.AddrPort{
		{netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("192.168.0.1:6001")},
		{netip.MustParseAddrPort("172.16.0.1:40000"), netip.MustParseAddrPort("172.16.0.2:80")}, // implicit deny, both orientations
		{netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db9::1]:443")},
		{netip.MustParseAddrPort("[::ffff:10.0.0.1]:40000"), netip.MustParseAddrPort("[::ffff:192.168.0.1]:6001")},
		{netip.MustParseAddrPort("[fe80::1%eth0]:1"), netip.MustParseAddrPort("[fe80::2%eth0]:2")},
	}
	var sink bool
	n := testing.AllocsPerRun(1000, func() {
		for _, c := range conns {
			sink = acl.Permits(c[0], c[1]) != sink
		}
	})
	if n != 0 {
		t.Errorf("Permits allocates %v times per run, want 0", n)
	}
}

func FuzzParseRule(f *testing.F) {
	for _, tc := range aclValid {
		f.Add(tc.in)
	}
	for _, tc := range aclInvalid {
		f.Add(tc.in)
	}
	probes := [][2]netip.AddrPort{
		{netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("192.168.0.1:80")},
		{netip.MustParseAddrPort("[2001:db8::1]:0"), netip.MustParseAddrPort("[::ffff:1.2.3.4]:65535")},
		{},
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if r != (Rule{}) {
				t.Fatalf("ParseRule(%q) = %#v with error %v", s, r, err)
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Rule != s {
				t.Fatalf("ParseRule(%q): error %#v is not an *RuleError for the rule", s, err)
			}
			return
		}
		text := r.String()
		back, err := ParseRule(text)
		if err != nil {
			t.Fatalf("ParseRule(%q) = %#v; its String %q does not parse: %v", s, r, text, err)
		}
		if back != r {
			t.Fatalf("ParseRule(%q) = %#v; String %q parses to %#v", s, r, text, back)
		}
		if back.String() != text {
			t.Fatalf("String not canonical: %q then %q", text, back.String())
		}
		// Invariants of a parsed rule.
		if r.Src.IsValid() && (r.Src != r.Src.Masked() || prefixFamily(r.Src) != r.Family) {
			t.Fatalf("ParseRule(%q): bad source %v for family %v", s, r.Src, r.Family)
		}
		if r.Dst.IsValid() && (r.Dst != r.Dst.Masked() || prefixFamily(r.Dst) != r.Family) {
			t.Fatalf("ParseRule(%q): bad destination %v for family %v", s, r.Dst, r.Family)
		}
		for _, p := range []PortRange{r.SrcPorts, r.DstPorts} {
			if p.Set && p.Lo > p.Hi || !p.Set && p != (PortRange{}) {
				t.Fatalf("ParseRule(%q): bad port range %+v", s, p)
			}
		}
		acl := List{r}
		for _, c := range probes {
			fwd, rev := acl.Permits(c[0], c[1]), acl.Permits(c[1], c[0])
			if fwd != rev {
				t.Fatalf("rule %q: Permits not symmetric for %v %v", text, c[0], c[1])
			}
		}
	})
}
