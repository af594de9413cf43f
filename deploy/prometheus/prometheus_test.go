// Package prometheus holds the Prometheus deployment files; its test runs
// promtool on them.
package prometheus

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: install the Debian package prometheus")
		}
		t.Skip("promtool not found: install the Debian package prometheus (apt-get install prometheus) to run this test")
	}
	return p
}

func TestPromtoolCheckConfig(t *testing.T) {
	// check config also checks the rule files it names.
	if out, err := exec.Command(promtool(t), "check", "config", "prometheus.yml").CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	if out, err := exec.Command(promtool(t), "check", "rules", "tcptap.rules.yml").CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// TestPromtoolTestRules runs the rules' unit tests: each alert firing and
// not firing on a fleet of sensors (tcptap.rules.test.yml).
func TestPromtoolTestRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", "tcptap.rules.test.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	// Every alert of the rules file has a test.
	rules, err := os.ReadFile("tcptap.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("tcptap.rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, line := range strings.Split(string(rules), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: ")
		if !ok {
			continue
		}
		alerts++
		firing := strings.Count(string(tests), "alertname: "+name+"\n        exp_alerts:\n")
		silent := strings.Count(string(tests), "alertname: "+name+"\n        exp_alerts: []")
		if firing == 0 || silent == 0 {
			t.Errorf("alert %s: %d tests firing, %d not firing; want both", name, firing, silent)
		}
	}
	if alerts < 6 {
		t.Errorf("found %d alerts in tcptap.rules.yml, want at least 6", alerts)
	}
}

func TestDashboardJSON(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"tcptap_connections_closed_total": false, "tcptap_retransmissions_total": false, "tcptap_data_rtt_seconds_bucket": false, "tcptap_capture_kernel_drops_total": false,
		"process_resident_memory_bytes": false, "go_goroutines": false, "process_open_fds": false}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for m := range want {
				if strings.Contains(tg.Expr, m) {
					want[m] = true
				}
			}
		}
	}
	for m, ok := range want {
		if !ok {
			t.Errorf("dashboard does not graph %s", m)
		}
	}
}
