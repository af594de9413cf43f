package main

import (
	"net/netip"
	"testing"
)

// --source-ip and --destination-ip take addresses as the views print them,
// IPv6 in brackets too.
func TestParseIP(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1": "10.0.0.1", "::1": "::1", "[::1]": "::1", "[fd00:201::2]": "fd00:201::2",
	} {
		got, err := parseIP(in)
		if err != nil || got != netip.MustParseAddr(want) {
			t.Errorf("parseIP(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"[10.0.0.1]", "[::1", "::1]", "", "[]", "host"} {
		if a, err := parseIP(in); err == nil {
			t.Errorf("parseIP(%q) = %v, want an error", in, a)
		}
	}
}
