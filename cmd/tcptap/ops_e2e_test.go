//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/peers"
)

// logLines returns the daemon's JSON log lines whose msg is msg.
func logLines(t *testing.T, log *peers.Output, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(log.String(), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitLog waits up to 10 s for n log lines with msg.
func waitLog(t *testing.T, log *peers.Output, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l := logLines(t, log, msg); len(l) >= n {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d log lines %q within 10s; log:\n%s", n, msg, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpIn returns an HTTP client whose connections are made inside ns.
// startSensor runs the real binary's tcptap run with cfgFile in namespace
// ns until the test ends; its log collects standard output and error, and
// exited receives its exit (put it back after reading it).
func startSensor(t *testing.T, ns *netlab.Namespace, bin, cfgFile string) (cmd *exec.Cmd, log *peers.Output, exited chan error) {
	t.Helper()
	cmd = exec.Command("ip", "netns", "exec", ns.Name, bin, "run", "--config", cfgFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log = new(peers.Output)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return cmd, log, exited
}

func httpIn(ns *netlab.Namespace) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return ns.DialTCP(ctx, "tcp4", addr, netlab.DialOptions{})
		},
	}}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestSensorOperations runs the real tcptap binary as a sensor in a lab's
// server namespace (capturing its eth0, HTTP on every address, SNMP on its
// loopback) and operates it as an operator would: readiness, its own
// health metrics, the API refused on the node's address but served on
// loopback, audited control commands and SNMP sets, reloads by SIGHUP (a
// good file applied, a bad one refused, the daemon alive), and a clean
// stop.
func TestSensorOperations(t *testing.T) {
	netlab.Require(t)
	if _, err := exec.LookPath("snmpset"); err != nil {
		t.Skip("snmpset not installed (Debian package snmp)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tcptap")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tcptap")
	build.Dir = peers.ModuleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lab := netlab.New(t, netlab.Options{})
	srv := lab.Server
	sock := filepath.Join(dir, "control.sock")
	cfgFile := filepath.Join(dir, "tcptap.yaml")
	community := "ops-rw-secret"
	exporterExtra := ""
	cfg := func(extra string) {
		t.Helper()
		text := fmt.Sprintf(`capture:
  interfaces: [%s]
  workers: 1
exporter:
  listen: ":19911"
%ssnmp:
  listen: ["127.0.0.1:1161"]
  communities:
    - {name: %s, access: rw}
control:
  socket: %s
log:
  format: json
%s`, netlab.HostLink, exporterExtra, community, sock, extra)
		if err := os.WriteFile(cfgFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg("")
	cmd, log, exited := startSensor(t, srv, bin, cfgFile)
	alive := func() {
		t.Helper()
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("tcptap exited: %v\n%s", err, log.String())
		default:
		}
	}

	local, remote := httpIn(srv), httpIn(lab.Client)
	node := "http://" + srv.Addr("tcp4").String() + ":19911"
	// Ready once the worker reads its socket.
	deadline := time.Now().Add(15 * time.Second)
	for {
		alive()
		resp, err := local.Get("http://127.0.0.1:19911/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 15s (%v)\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := waitLog(t, log, "tcptap running", 1)[0]
	if start["version"] == nil || start["interfaces"] == nil || start["ring_size"] != "64MiB" {
		t.Errorf("start line: %v", start)
	}

	// From another host, on the node's address: metrics and probes, no API.
	if code, body := get(t, remote, node+"/metrics"); code != 200 || !strings.Contains(body, "\nprocess_resident_memory_bytes ") ||
		!strings.Contains(body, "\ngo_goroutines ") || !strings.Contains(body, "\nprocess_open_fds ") {
		t.Errorf("/metrics from the client: %d, process and Go metrics present: %v", code, strings.Contains(body, "process_resident_memory_bytes"))
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, remote, node+p); code != 200 {
			t.Errorf("%s from the client: %d", p, code)
		}
	}
	for _, p := range []string{"/api/v1/connections", "/api/v1/information", "/api/v1/connections/1/pcap", "/api/nope"} {
		code, body := get(t, remote, node+p)
		if code != http.StatusForbidden || !strings.Contains(body, `"error"`) {
			t.Errorf("%s from the client: %d %s, want 403 with a JSON error", p, code, body)
		}
	}
	// On the sensor itself, over loopback: the API.
	if code, body := get(t, local, "http://127.0.0.1:19911/api/v1/information"); code != 200 {
		t.Errorf("/api/v1/information on loopback: %d %s", code, body)
	}
	if code, body := get(t, local, "http://127.0.0.1:19911/api/nope"); code != 404 || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("/api/nope on loopback: %d %q, want a JSON 404", code, body)
	}

	// Operator actions, audited with who did them.
	mustRun := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	mustRun(bin, "trace", "enable", "--control.socket", sock)
	mustRun(bin, "reset", "cache", "--control.socket", sock)
	acts := waitLog(t, log, "operator action", 2)
	if a := acts[0]; a["action"] != "trace enable" || a["changed"] != "enabled: false -> true" || a["via"] != "control" || a["uid"] != float64(os.Getuid()) || a["pid"] == nil {
		t.Errorf("trace enable audit line: %v", a)
	}
	if a := acts[1]; a["action"] != "reset cache" || !strings.HasPrefix(a["changed"].(string), "cache cleared") {
		t.Errorf("reset cache audit line: %v", a)
	}
	// An SNMP set of tcptapTraceEnable (disabled(2)).
	mustRun("ip", "netns", "exec", srv.Name, "snmpset", "-v2c", "-c", "ops-rw-secret", "-M", "/nonexistent", "-m", "", "-r", "1", "-t", "3",
		"127.0.0.1:1161", ".1.3.6.1.4.1.64399.1.1.1.1.0", "i", "2")
	acts = waitLog(t, log, "operator action", 3)
	if a := acts[2]; a["action"] != "snmp set" || a["via"] != "snmp" || a["community"] != "snmp.communities[0]" || a["source"] != "127.0.0.1" ||
		!strings.Contains(a["set"].(string), "1.3.6.1.4.1.64399.1.1.1.1.0=2") {
		t.Errorf("SNMP set audit line: %v", a)
	}
	defer func() {
		if strings.Contains(log.String(), "ops-rw-") {
			t.Error("the log shows a community name, a password")
		}
	}()

	// Reload: a good file is applied, the daemon stays up.
	cfg("trace:\n  cache_mode: all\n  enable: true\n")
	cmd.Process.Signal(syscall.SIGHUP)
	rel := waitLog(t, log, "reloaded", 1)[0]
	if rel["via"] != "signal" || !strings.Contains(rel["trace"].(string), "cache-mode: abnormal-close -> all") || !strings.Contains(rel["trace"].(string), "enabled: false -> true") {
		t.Errorf("reload line: %v", rel)
	}
	alive()
	if info := mustRun(bin, "display", "information", "--control.socket", sock); !strings.Contains(info, "all") {
		t.Errorf("display information after the reload:\n%s", info)
	}
	// A file that does not validate: refused, nothing changes.
	cfg("trace:\n  cache_mode: some\n")
	cmd.Process.Signal(syscall.SIGHUP)
	bad := waitLog(t, log, "reload refused: the running configuration stays", 1)[0]
	if !strings.Contains(bad["err"].(string), "trace.cache_mode") {
		t.Errorf("refused reload line: %v", bad)
	}
	// A key that needs a restart is named.
	cfg("trace:\n  cache_mode: all\n  enable: true\n  idle_timeout: 1m\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, log, "reloaded", 2)
	if r := waitLog(t, log, "reload: changed keys take effect only after a restart", 1)[0]; fmt.Sprint(r["keys"]) != "[trace.idle_timeout]" {
		t.Errorf("restart line: %v", r)
	}
	time.Sleep(200 * time.Millisecond)
	alive()
	mustRun(bin, "display", "information", "--control.socket", sock)

	// 'tcptap reload' over the control socket: the same reload, logged
	// with the caller's uid.
	mustRun(bin, "reload", "--control.socket", sock)
	if r := waitLog(t, log, "reloaded", 3)[2]; r["via"] != "control" || r["uid"] != float64(os.Getuid()) {
		t.Errorf("tcptap reload line: %v", r)
	}

	// A new community by reload: the old one gets no answer, the new one
	// does.
	snmpget := func(com string) error {
		return exec.Command("ip", "netns", "exec", srv.Name, "snmpget", "-v2c", "-c", com, "-M", "/nonexistent", "-m", "", "-r", "0", "-t", "1",
			"127.0.0.1:1161", ".1.3.6.1.2.1.1.3.0").Run()
	}
	if err := snmpget("ops-rw-secret"); err != nil {
		t.Fatalf("snmpget before the reload: %v", err)
	}
	community = "ops-rw-rotated"
	cfg("trace:\n  cache_mode: all\n  enable: true\n  idle_timeout: 1m\n")
	cmd.Process.Signal(syscall.SIGHUP)
	if r := waitLog(t, log, "reloaded", 4)[3]; fmt.Sprint(r["snmp"]) != "[snmp.communities]" {
		t.Errorf("reload of the community: %v", r)
	}
	if err := snmpget("ops-rw-rotated"); err != nil {
		t.Errorf("snmpget with the reloaded community: %v", err)
	}
	if err := snmpget("ops-rw-secret"); err == nil {
		t.Error("the old community still answered after the reload")
	}

	// Outputs and port labels by reload: a record file output appears and
	// the records of connections that end from then on reach it; the
	// per-port family counts the newly listed port.
	records := filepath.Join(dir, "records.jsonl")
	exporterExtra = "  port_labels: [19911]\n"
	cfg("trace:\n  cache_mode: all\n  enable: true\n  idle_timeout: 1m\noutput:\n  file:\n    path: " + records + "\n")
	cmd.Process.Signal(syscall.SIGHUP)
	if r := waitLog(t, log, "reloaded", 5)[4]; !strings.Contains(fmt.Sprint(r["outputs"]), "output.file.path") || strings.Contains(fmt.Sprint(r["restart_needed"]), "port_labels") || strings.Contains(fmt.Sprint(r["restart_needed"]), "output") {
		t.Errorf("reload of the outputs and port labels: %v", r)
	}
	for i := 0; i < 3; i++ { // connections from the client's host to the sensor's port: each ends with FINs
		get(t, remote, node+"/metrics")
	}
	var lines []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(records)
		lines = nil
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if strings.Contains(l, `:19911"`) {
				lines = append(lines, l)
			}
		}
		if len(lines) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(lines) < 3 {
		t.Errorf("%d records of the connections to :19911 in the reloaded file output, want 3\n%s", len(lines), log.String())
	}
	if code, body := get(t, local, "http://127.0.0.1:19911/metrics"); code != 200 || !strings.Contains(body, `tcptap_service_connections_closed_total{reason="AN",server_port="19911"}`) &&
		!strings.Contains(body, `tcptap_service_connections_closed_total{reason="PN",server_port="19911"}`) {
		t.Errorf("no per-port count of 19911 after the reload listed it (%d)", code)
	}

	// SIGTERM: a clean stop, logged.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("tcptap did not stop within 15s of SIGTERM")
	}
	if stop := waitLog(t, log, "tcptap stopped", 1)[0]; stop["version"] == nil {
		t.Errorf("stop line: %v", stop)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}
