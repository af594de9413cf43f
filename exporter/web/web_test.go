package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/record"
)

// serve runs a daemon replaying testdata/sample.pcap and its HTTP endpoint
// on loopback; it returns the base URL.
func serve(t *testing.T) (*daemon.Daemon, string) {
	t.Helper()
	sample := filepath.Join(peers.ModuleRoot(t), "testdata", "sample.pcap")
	d, err := daemon.New(daemon.Options{
		Interfaces: []string{"replay"}, Workers: 1,
		Open: func(string, int, int) (daemon.Source, error) {
			src, err := capture.Open(sample)
			return &capture.Replay{Src: src}, err
		},
		Trace:      flightrec.Config{Enabled: true},
		CacheMode:  cache.All,
		PortLabels: []uint16{20004},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry(d.MetricsSnapshot, metrics.Options{Version: "test", PortLabels: []uint16{20004}})
	srv, err := web.Listen("127.0.0.1:0", web.Handler(reg, d), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.Run(ctx) }()
	go func() { defer wg.Done(); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for d.Cache().Len() < 14 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Wait for the worker to publish its counters (every poll timeout).
	for time.Now().Before(deadline) {
		var n uint64
		for _, c := range d.MetricsSnapshot().Workers[0].Conns.Closed {
			n += c
		}
		if n >= 14 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d, "http://" + srv.Addr().String()
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	_, base := serve(t)
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, s := range []string{
		`tcptap_connections_closed_total{reason="RT"} 2`,
		`tcptap_connections_closed_total{reason="BD"} 0`,
		`tcptap_service_connections_closed_total{reason=`,
		`tcptap_cache_connections{reason="RT"} 2`,
		`tcptap_capture_frames_total{interface="replay"} 132`,
		`tcptap_build_info{`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
	checkMetrics(t, body)

	code, body = get(t, base+"/api/v1/connections?reason=RT&limit=5")
	var recs []record.Record
	if code != 200 || json.Unmarshal([]byte(body), &recs) != nil || len(recs) != 2 {
		t.Fatalf("connections?reason=RT: %d %d records\n%s", code, len(recs), body)
	}
	for _, r := range recs {
		if r.Reason != "RT" {
			t.Errorf("reason filter let %s through", r.Reason)
		}
	}
	if code, body = get(t, base+"/api/v1/connections?family=ipv6"); code != 200 || strings.Contains(body, `"ipv4"`) || !strings.Contains(body, `"ipv6"`) {
		t.Errorf("family=ipv6: %d\n%s", code, body)
	}
	if code, body = get(t, base+"/api/v1/connections?limit=1"); code != 200 || strings.Count(body, `"reason":`) != 1 {
		t.Errorf("limit=1: %d\n%s", code, body)
	}
	for _, q := range []string{"state=bogus", "reason=XX", "family=ipx", "limit=0"} {
		if code, _ := get(t, base+"/api/v1/connections?"+q); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
	if code, body := get(t, base+"/api/v1/connections?state=open"); code != 200 || !strings.HasPrefix(strings.TrimSpace(body), "[") {
		t.Errorf("state=open: %d %s, want 200 and a JSON list", code, body)
	}
	id := recs[0].ID
	code, body = get(t, fmt.Sprintf("%s/api/v1/connections/%d/packets", base, id))
	var pk web.Packets
	if code != 200 || json.Unmarshal([]byte(body), &pk) != nil || len(pk.Packets) == 0 || pk.Record.ID != id || !pk.Traced {
		t.Fatalf("packets: %d\n%s", code, body)
	}
	code, body = get(t, fmt.Sprintf("%s/api/v1/connections/%d/pcap", base, id))
	if code != 200 || !bytes.HasPrefix([]byte(body), []byte{0xd4, 0xc3, 0xb2, 0xa1}) && !bytes.HasPrefix([]byte(body), []byte{0x4d, 0x3c, 0xb2, 0xa1}) {
		t.Errorf("pcap: %d, %d bytes, header % x", code, len(body), body[:min(4, len(body))])
	}
	if code, _ := get(t, base+"/api/v1/connections/999999/packets"); code != 404 {
		t.Errorf("unknown id: %d", code)
	}
	if code, _ := get(t, base+"/api/v1/connections/abc/pcap"); code != 400 {
		t.Errorf("bad id: %d", code)
	}
	code, body = get(t, base+"/api/v1/information")
	var in web.Information
	if code != 200 || json.Unmarshal([]byte(body), &in) != nil || !in.Enabled || in.Cached != 14 {
		t.Errorf("information: %d\n%s", code, body)
	}
	// Read-only: nothing but GET and HEAD.
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, base+"/api/v1/connections", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("%s: %d, want 405", m, resp.StatusCode)
		}
	}
}

// promtool returns promtool's path, or skips (fails under CI) without it.
func promtool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: install the Debian package prometheus", name)
		}
		t.Skipf("%s not found: install the Debian package prometheus (apt-get install prometheus) to run this test", name)
	}
	return p
}

func checkMetrics(t *testing.T, scrape string) {
	t.Helper()
	cmd := exec.Command(promtool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestPrometheusEndToEnd: a real Prometheus server scrapes the daemon and
// a PromQL query through its HTTP API returns the closes by reason.
func TestPrometheusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	bin := promtool(t, "prometheus")
	_, base := serve(t)
	target := strings.TrimPrefix(base, "http://")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: tcptap\n    static_configs:\n      - targets: [%q]\n", target)), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	q := url.Values{"query": {`sum by (reason) (tcptap_connections_closed_total{job="tcptap"})`}}
	var last map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?" + q.Encode())
		if err != nil {
			continue
		}
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || len(r.Data.Result) == 0 {
			continue
		}
		got := map[string]string{}
		for _, s := range r.Data.Result {
			got[s.Metric["reason"]] = fmt.Sprint(s.Value[1])
		}
		want := map[string]string{"RF": "1", "ST": "1", "RT": "2", "PT": "1", "KT": "1", "AA": "1", "SR": "1", "RR": "2", "AN": "1", "PN": "2", "OP": "0", "IT": "1", "BD": "0"}
		ok := len(got) == len(want)
		for k, v := range want {
			ok = ok && got[k] == v
		}
		if ok {
			return
		}
		last = got
	}
	t.Fatalf("Prometheus never returned the expected closes by reason; last result %v\n%s", last, logs.String())
}
