//go:build linux

package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/internal/livelab"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/internal/scenarios"
	"github.com/tcptap/tcptap/reassembly"
)

// liveIdle is the daemon's idle timeout in TestPrometheusLiveEndToEnd. A
// connection that ended by a timer (RT: no FIN, no RST) leaves the table
// only after this much silence, and the classifier judges its silence up to
// LastSeen+liveIdle. With the scenarios' sysctls the longest retransmission
// gap is about 3.2 s, so RT needs 1.5 × 3.2 = 4.8 s of silence.
const liveIdle = 6 * time.Second

// liveE2EScenarios are the connections TestPrometheusLiveEndToEnd makes,
// all at once in one lab.
var liveE2EScenarios = []scenarios.Job{
	{Name: "RF-closed-port", Network: "tcp4"},
	{Name: "RF-closed-port", Network: "tcp6"},
	{Name: "RR-server-abort", Network: "tcp4"},
	{Name: "RR-server-abort", Network: "tcp6"},
	{Name: "AN-client-closes", Network: "tcp4"},
	{Name: "AN-client-closes", Network: "tcp6"},
	{Name: "PN-server-closes", Network: "tcp4"},
	{Name: "SR-client-abort", Network: "tcp4"},
	{Name: "RT-blackhole", Network: "tcp4"},
}

// TestPrometheusLiveEndToEnd: a live daemon captures on the mirror port of
// a netlab lab while real connections die, a real Prometheus server in the
// lab's tap namespace scrapes it every second, and a PromQL query through
// Prometheus's HTTP API returns the closes by reason (issue 6).
func TestPrometheusLiveEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a network lab and starts a Prometheus server")
	}
	netlab.Require(t)
	bin := promtool(t, "prometheus")
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()

	lab := netlab.New(t, scenarios.LabOptions())
	tap := lab.Tap
	// netlab brings loopback up only in the end hosts; the daemon's HTTP
	// endpoint and Prometheus talk over the tap namespace's.
	if out, err := tap.Exec("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("lo up in %s: %v: %s", tap, err, out)
	}

	// The daemon: two workers in one fanout group on the mirror port, their
	// AF_PACKET sockets created inside the tap namespace.
	d, err := daemon.New(daemon.Options{
		Interfaces: []string{netlab.ClientPort},
		Workers:    2,
		Open:       livelab.Open(tap, capture.LiveConfig{Promiscuous: true}, uint16(os.Getpid())|1),
		Table:      reassembly.Config{IdleTimeout: liveIdle, CloseLinger: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("daemon.New on %s in %s: %v", netlab.ClientPort, tap, err)
	}
	// Its HTTP endpoint, listening on the tap namespace's loopback.
	reg := metrics.NewRegistry(d.MetricsSnapshot, metrics.Options{Version: "test"})
	var srv *web.Server
	if err := tap.Do(func() error {
		var err error
		srv, err = web.Listen("127.0.0.1:0", web.Handler(reg, d), "", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(context.Background())
	runDone, srvDone := make(chan error, 1), make(chan error, 1)
	go func() { runDone <- d.Run(dctx) }()
	go func() { srvDone <- srv.Serve(dctx) }()
	t.Cleanup(func() {
		dcancel()
		for what, ch := range map[string]chan error{"Run": runDone, "Serve": srvDone} {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("daemon %s: %v", what, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("daemon %s did not return within 10s of the cancel", what)
			}
		}
	})

	// Prometheus, in the tap namespace too, scraping the daemon every second.
	prom := startPrometheus(t, bin, tap, srv.Addr().String())
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := tap.Do(func() error {
					var err error
					c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
	t.Cleanup(client.CloseIdleConnections)
	waitReady(ctx, t, client, prom)
	t.Logf("daemon and Prometheus up after %v", time.Since(began).Round(time.Millisecond))

	// Every scenario at once, each on its own ports.
	exps, _ := scenarios.RunConcurrently(ctx, t, lab, liveE2EScenarios, 10*time.Second, 0)
	if t.Failed() {
		t.FailNow()
	}
	scenariosDone := time.Now()
	t.Logf("%d scenario runs, %d connections, faults reported after %v", len(liveE2EScenarios), len(exps), scenariosDone.Sub(began).Round(time.Millisecond))

	// What Prometheus must return: every reason code is exported (zero
	// when nothing ended that way), and nothing but the scenarios'
	// connections crosses the mirror port.
	want := map[string]string{}
	for _, code := range classifier.Codes {
		want[string(code)] = "0"
	}
	counts := map[string]int{}
	for _, e := range exps {
		counts[string(e.Reason)]++
	}
	for code, n := range counts {
		want[code] = strconv.Itoa(n)
	}
	for _, code := range []string{"RF", "RR", "AN", "RT"} {
		if counts[code] == 0 {
			t.Fatalf("the scenarios made no %s connection: %v", code, exps)
		}
	}

	// The closes reach the counters once the table lets the connections go
	// (200 ms after a FIN or RST, liveIdle after the RT's last
	// retransmission), then Prometheus's next scrape.
	q := url.Values{"query": {`sum by (reason) (tcptap_connections_closed_total{job="tcptap"})`}}
	var last map[string]string
	var lastErr error
	for {
		got, err := query(ctx, client, "http://"+prom+"/api/v1/query?"+q.Encode())
		if err == nil {
			if equal(got, want) {
				break
			}
			last = got
		}
		lastErr = err
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus never returned the expected closes by reason %v after %v since the last fault;\nlast result %v (error %v)\nworker counters: %+v",
				want, time.Since(scenariosDone).Round(time.Millisecond), last, lastErr, closedCounts(d))
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Logf("Prometheus returned %v %v after the last fault; test took %v",
		want, time.Since(scenariosDone).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// startPrometheus starts a Prometheus server inside ns with a temporary
// data directory, scraping target every second, and returns its address
// (on ns's loopback). It is killed by t.Cleanup (and by the kernel when the
// test process dies).
func startPrometheus(t *testing.T, bin string, ns *netlab.Namespace, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: tcptap\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// A free port on the namespace's loopback.
	var addr string
	if err := ns.Do(func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr = ln.Addr().String()
		return ln.Close()
	}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, bin,
		"--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs := &peers.Output{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("prometheus (pid %d) not reaped 10s after SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	return addr
}

// waitReady waits until Prometheus answers /-/ready.
func waitReady(ctx context.Context, t *testing.T, client *http.Client, addr string) {
	t.Helper()
	var lastErr error
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/-/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus on %s not ready: %v", addr, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// query runs an instant PromQL query and returns the value of each series
// by its reason label.
func query(ctx context.Context, client *http.Client, u string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", r.Status, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return nil, errors.New("no series yet")
	}
	got := map[string]string{}
	for _, s := range r.Data.Result {
		got[s.Metric["reason"]] = fmt.Sprint(s.Value[1])
	}
	return got, nil
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// closedCounts sums the daemon's published closes by reason, for failure
// messages.
func closedCounts(d *daemon.Daemon) string {
	sum := map[string]uint64{}
	for _, w := range d.Stats() {
		for i, n := range w.Conns.Closed {
			if n > 0 && i < len(classifier.Codes) {
				sum[string(classifier.Codes[i])] += n
			}
		}
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, sum[k])
	}
	return b.String()
}
