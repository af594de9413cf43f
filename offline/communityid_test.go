package offline

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/record"
)

// The records of suricata-verify's community-id-ipv6 capture carry the
// Community IDs Suricata's flow events give for the same flows (the
// test's expected values, kept in the peer corpus). That test runs
// Suricata with community-id-seed: 7 (its suricata.yaml, not in the
// corpus), so a match also checks the seed's place in the hash.
const suricataCommunityIDSeed = 7

func TestCommunityIDMatchesSuricata(t *testing.T) {
	dir := peers.Dir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "expected/suricata/community-id-ipv6.json"))
	if err != nil {
		t.Skipf("peer corpus: %v", err)
	}
	var exp struct {
		Pcap       string `json:"pcap"`
		FlowChecks []struct {
			Match map[string]any `json:"match"`
		} `json:"flow_checks"`
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	got := map[[2]netip.AddrPort]string{}
	_, err = Run(context.Background(), []string{filepath.Join(dir, exp.Pcap)}, Options{Workers: 1, Fleet: &record.Fleet{CommunityIDSeed: suricataCommunityIDSeed}},
		func(r *record.Record) { got[[2]netip.AddrPort{r.Client, r.Server}] = r.CommunityID })
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, fc := range exp.FlowChecks {
		m := fc.Match
		if m["proto"] != "TCP" {
			continue
		}
		src := netip.AddrPortFrom(netip.MustParseAddr(m["src_ip"].(string)), uint16(m["src_port"].(float64)))
		dst := netip.AddrPortFrom(netip.MustParseAddr(m["dest_ip"].(string)), uint16(m["dest_port"].(float64)))
		id, ok := got[[2]netip.AddrPort{src, dst}]
		if !ok {
			t.Errorf("no record of %v -> %v", src, dst)
			continue
		}
		if want := m["community_id"].(string); id != want {
			t.Errorf("%v -> %v: community_id %s, Suricata %s", src, dst, id, want)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no TCP flow checked")
	}
	t.Logf("%d flows: community_id equal to Suricata's", checked)
}
