package snmp

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netsnmp runs net-snmp's command-line clients against the agent served
// on 127.0.0.1:0. Without the clients (Debian package snmp) the test is
// skipped, unless CI is set.
func netsnmp(t *testing.T) (run func(tool, version, community string, args ...string) (string, error), h *Handler, f *fake) {
	t.Helper()
	if _, err := exec.LookPath("snmpbulkwalk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("net-snmp clients missing: apt-get install snmp")
		}
		t.Skip("net-snmp clients missing (apt-get install snmp): skipping")
	}
	h, f = testAgent(t)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, conn, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	addr := conn.LocalAddr().String()
	run = func(tool, version, community string, args ...string) (string, error) {
		// Numeric OIDs, no MIB files, one try with a short timeout.
		args = append([]string{"-On", "-m", "", "-t", "1", "-r", "0", version, "-c", community, addr}, args...)
		cmd := exec.Command(tool, args...)
		cmd.Env = append(os.Environ(), "MIBS=", "SNMPCONFPATH=/nonexistent")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	return run, h, f
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

func TestNetSNMP(t *testing.T) {
	run, _, f := netsnmp(t)
	out, err := run("snmpget", "-v1", "public", ".1.3.6.1.2.1.1.1.0")
	if err != nil || !strings.Contains(out, `STRING: "tcptap test passive TCP tap analyzer"`) {
		t.Errorf("snmpget v1: %v\n%s", err, out)
	}
	out, err = run("snmpget", "-v2c", "public", ".1.3.6.1.2.1.6.9.0")
	if err != nil || !strings.Contains(out, "Gauge32: 2") {
		t.Errorf("snmpget v2c tcpCurrEstab: %v\n%s", err, out)
	}
	walks := []struct {
		tool, version, root string
		min                 int
	}{
		{"snmpwalk", "-v1", ".1.3", 100},
		{"snmpwalk", "-v2c", ".1.3", 140},
		{"snmpbulkwalk", "-v2c", ".1.3.6.1.2.1.6", 35},
		{"snmpbulkwalk", "-v2c", ".1.3.6.1.2.1.6.19", 8},
		{"snmpbulkwalk", "-v2c", ".1.3.6.1.4.1.64399", 60},
	}
	for _, w := range walks {
		out, err := run(w.tool, w.version, "public", w.root)
		n := len(lines(out))
		if err != nil || n < w.min || strings.Contains(out, "not increasing") || strings.Contains(out, "Timeout") {
			t.Errorf("%s %s %s: %v, %d lines\n%s", w.tool, w.version, w.root, err, n, out)
		}
		t.Logf("%s %s %s: %d objects", w.tool, w.version, w.root, n)
	}
	// IPv6 rows come after IPv4 ones, length-prefixed.
	out, _ = run("snmpbulkwalk", "-v2c", "public", ".1.3.6.1.2.1.6.19.1.7")
	if l := lines(out); !strings.HasPrefix(l[len(l)-1], ".1.3.6.1.2.1.6.19.1.7.2.16.253.0.") {
		t.Errorf("tcpConnectionState walk:\n%s", out)
	}

	const enable = ".1.3.6.1.4.1.64399.1.1.1.1.0"
	out, err = run("snmpset", "-v2c", "private", enable, "i", "1")
	if err != nil || !f.Settings().Enabled {
		t.Errorf("snmpset private: %v\n%s", err, out)
	}
	out, err = run("snmpset", "-v2c", "public", enable, "i", "2")
	if err == nil || !strings.Contains(out, "noAccess") || !f.Settings().Enabled {
		t.Errorf("snmpset public: %v\n%s", err, out)
	}
	out, err = run("snmpset", "-v2c", "private", ".1.3.6.1.4.1.64399.1.1.1.2.0", "i", "10")
	if err == nil || !strings.Contains(out, "inconsistentValue") {
		t.Errorf("snmpset max-packet-number while enabled: %v\n%s", err, out)
	}
	out, err = run("snmpset", "-v1", "public", enable, "i", "2")
	if err == nil || !strings.Contains(out, "noSuchName") {
		t.Errorf("snmpset v1 public: %v\n%s", err, out)
	}
	out, err = run("snmpget", "-v2c", "wrong", ".1.3.6.1.2.1.1.1.0")
	if err == nil || !strings.Contains(out, "Timeout") {
		t.Errorf("wrong community: %v\n%s", err, out)
	}
}
