package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/record"
)

// TestMetricsOutEqualsRecords: the per-direction families of --metrics-out,
// counted as the segments are applied, equal the sums of the run's JSON
// records (every connection, several inputs read as one capture, two
// workers).
func TestMetricsOutEqualsRecords(t *testing.T) {
	root := peers.ModuleRoot(t)
	inputs, _ := filepath.Glob(filepath.Join(root, "testdata", "scenarios", "*.pcap"))
	inputs = append(inputs, filepath.Join(root, "testdata", "sample.pcap"))
	prom := filepath.Join(t.TempDir(), "tcptap.prom")
	args := append([]string{"read", "--format", "json", "--cache-mode", "all", "--workers", "2",
		"--metrics-out", prom}, inputs...)
	out, errOut, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := map[string]uint64{}
	add := func(family string, p record.Pair[uint64]) {
		want[family+`{direction="client_to_server"}`] += p.Client
		want[family+`{direction="server_to_client"}`] += p.Server
	}
	p32 := func(p record.Pair[uint32]) record.Pair[uint64] {
		return record.Pair[uint64]{Client: uint64(p.Client), Server: uint64(p.Server)}
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		n++
		add("tcptap_segments_total", r.Packets)
		add("tcptap_payload_bytes_total", r.Bytes)
		add("tcptap_retransmissions_total", p32(r.Retransmissions))
		add("tcptap_fast_retransmissions_total", p32(r.FastRetransmissions))
		add("tcptap_zero_window_advertisements_total", p32(r.ZeroWindows))
		add("tcptap_window_probes_total", p32(r.WindowProbes))
		add("tcptap_keepalives_total", p32(r.KeepAlives))
		add("tcptap_duplicate_acks_total", p32(r.DupAcks))
		add("tcptap_resets_total", p32(r.Resets))
		add("tcptap_fins_total", p32(r.FINs))
	}
	b, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, l := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(l, " ")
		if _, w := want[name]; !ok || !w {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got[name] = uint64(f)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, the records' sum %d", k, got[k], v)
		}
	}
	for _, k := range []string{`tcptap_retransmissions_total{direction="client_to_server"}`, `tcptap_resets_total{direction="server_to_client"}`,
		`tcptap_window_probes_total{direction="client_to_server"}`, `tcptap_keepalives_total{direction="client_to_server"}`} {
		if want[k] == 0 {
			t.Errorf("%s is 0 in the records: the check is weak", k)
		}
	}
	t.Logf("%d records from %d inputs; segments %d + %d", n, len(inputs),
		want[`tcptap_segments_total{direction="client_to_server"}`], want[`tcptap_segments_total{direction="server_to_client"}`])
}
