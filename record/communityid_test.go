package record_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tcptap/tcptap/record"
)

// The port-based flows of the specification's baseline
// (community-id-spec/baseline/baseline_deflt.json and baseline_seed1.json),
// both directions of each.
var communityIDVectors = []struct {
	proto        uint8
	saddr, daddr string
	sport, dport uint16
	seed0, seed1 string
}{
	{6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
	{6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
	{17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
	{132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
}

func TestCommunityIDSpecBaseline(t *testing.T) {
	for _, v := range communityIDVectors {
		a := netip.AddrPortFrom(netip.MustParseAddr(v.saddr), v.sport)
		b := netip.AddrPortFrom(netip.MustParseAddr(v.daddr), v.dport)
		for _, c := range []struct {
			seed uint16
			want string
		}{{0, v.seed0}, {1, v.seed1}} {
			for _, dir := range [][2]netip.AddrPort{{a, b}, {b, a}} {
				got := string(record.AppendCommunityID(nil, c.seed, v.proto, dir[0], dir[1]))
				if got != c.want {
					t.Errorf("proto %d %v -> %v seed %d: %s, want %s", v.proto, dir[0], dir[1], c.seed, got, c.want)
				}
			}
		}
		if v.proto == record.ProtoTCP {
			if got := record.CommunityID(0, b, a); got != v.seed0 {
				t.Errorf("CommunityID(%v, %v) = %s, want %s", b, a, got, v.seed0)
			}
		}
	}
	// IPv4-mapped IPv6 addresses hash as the IPv4 ones.
	m := netip.AddrPortFrom(netip.MustParseAddr("::ffff:128.232.110.120"), 34855)
	if got := record.CommunityID(0, m, netip.MustParseAddrPort("66.35.250.204:80")); got != communityIDVectors[0].seed0 {
		t.Errorf("mapped address: %s", got)
	}
	// Mixed families or invalid addresses: no ID.
	if got := record.CommunityID(0, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("[fd00::1]:2")); got != "" {
		t.Errorf("mixed families: %q", got)
	}
	if got := record.CommunityID(0, netip.AddrPort{}, netip.AddrPort{}); got != "" {
		t.Errorf("zero addresses: %q", got)
	}
}

func TestAppendCommunityIDNoAllocs(t *testing.T) {
	a, b := netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::2]:50000")
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = record.AppendCommunityID(buf[:0], 0, record.ProtoTCP, a, b) }); n != 0 {
		t.Errorf("%v allocations per AppendCommunityID", n)
	}
}

func TestNewUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100000 {
		u := record.NewUID()
		if len(u) != 18 || u[0] != 'C' || strings.Trim(u[1:], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("uid %q: want C and 17 base62 digits", u)
		}
		if seen[u] {
			t.Fatalf("uid %q twice in 100000", u)
		}
		seen[u] = true
	}
	// 96 bits: the leading digit (62^16 each) is below 2^96/62^16 < 1.7,
	// so 0 or 1, and both appear.
	lead := map[byte]int{}
	for u := range seen {
		lead[u[1]]++
	}
	if len(lead) != 2 || lead['0'] == 0 || lead['1'] == 0 {
		t.Errorf("leading digits %v: want 0 and 1 only", lead)
	}
}

func TestFleetStamp(t *testing.T) {
	r := record.Record{Client: netip.MustParseAddrPort("128.232.110.120:34855"), Server: netip.MustParseAddrPort("66.35.250.204:80")}
	f := record.Fleet{Sensor: "s1", CommunityIDSeed: 1}
	f.Stamp(&r)
	if r.Sensor != "s1" || r.CommunityID != "1:3V71V58M3Ksw/yuFALMcW0LAHvc=" || len(r.UID) != 18 {
		t.Errorf("stamped %q %q %q", r.Sensor, r.UID, r.CommunityID)
	}
	r2 := r
	r2.UID = ""
	(&record.Fleet{}).StampOpen(&r2)
	if r2.UID != "" || r2.Sensor != record.DefaultSensor() || r2.CommunityID != "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" {
		t.Errorf("open record stamped %q %q %q", r2.Sensor, r2.UID, r2.CommunityID)
	}
}
