package capture

import (
	"fmt"
	"sort"
	"strings"
)

// Cause is one reason frames did not become TCP segments, with how many.
type Cause struct {
	Name   string // "unknown EtherType 0x88cc", "unsupported link type 147", ...
	Frames uint64
}

// Undecoded lists why frames did not become TCP segments, most frequent
// first. Frames still waiting in the IPv4 fragment table are not listed;
// fragments dropped are.
func (s *DecodeStats) Undecoded() []Cause {
	var out []Cause
	add := func(n uint64, name string) {
		if n > 0 {
			out = append(out, Cause{name, n})
		}
	}
	add(s.NonTCP, "not TCP (UDP, ICMP, ...)")
	nonIP := s.NonIP
	for i, n := range s.EtherTypes.Counts {
		if n > 0 && n <= nonIP {
			add(n, fmt.Sprintf("unknown EtherType 0x%04x", s.EtherTypes.Values[i]))
			nonIP -= n
		}
	}
	add(nonIP, "not IP")
	unsupported := s.UnsupportedLink
	for i, n := range s.LinkTypes.Counts {
		if n > 0 && n <= unsupported {
			add(n, fmt.Sprintf("unsupported link type %d", s.LinkTypes.Values[i]))
			unsupported -= n
		}
	}
	add(unsupported, "unsupported link type")
	add(s.TruncatedLink, "truncated link header")
	add(s.TruncatedIP, "truncated IP header")
	add(s.BadIPHeader, "bad IP header")
	add(s.TruncatedTCP, "truncated TCP header")
	add(s.BadTCPHeader, "bad TCP header")
	add(s.BadTunnel, "malformed tunnel header")
	tunnels := s.UnsupportedTunnel
	for i, n := range s.Tunnels.Counts {
		if v := s.Tunnels.Values[i]; n > 0 && n <= tunnels && int(v) < len(unsupportedNames) {
			add(n, "unsupported tunnel: "+unsupportedNames[v])
			tunnels -= n
		}
	}
	add(tunnels, "unsupported tunnel")
	add(s.TooDeep, "encapsulations nested too deep")
	add(s.Copies, "copy of a segment seen by another path")
	add(s.FragmentsDropped, "IPv4 fragment dropped")
	sort.SliceStable(out, func(i, j int) bool { return out[i].Frames > out[j].Frames })
	return out
}

// UndecodedSummary is Undecoded on one line: "3 not TCP (UDP, ICMP, ...),
// 2 unknown EtherType 0x0806"; "" when every frame was decoded.
func (s *DecodeStats) UndecodedSummary() string {
	causes := s.Undecoded()
	parts := make([]string, len(causes))
	for i, c := range causes {
		parts[i] = fmt.Sprintf("%d %s", c.Frames, c.Name)
	}
	return strings.Join(parts, ", ")
}
