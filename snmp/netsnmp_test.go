package snmp

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
	client := netsnmpClient(t, serveLoopback(t, h).String())
	run = func(tool, version, community string, args ...string) (string, error) {
		return client(tool, append([]string{version, "-c", community, "--"}, args...)...)
	}
	return run, h, f
}

// netsnmpClient returns a runner of net-snmp's clients against addr:
// numeric OIDs, no MIB files, no configuration, one try with a short
// timeout. The args before "--" come before the address, the OIDs and
// values after it.
func netsnmpClient(t testing.TB, addr string) func(tool string, args ...string) (string, error) {
	// Their persistent state in a directory of the test's, with the
	// subdirectory they would announce creating.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "cert_indexes"), 0o700); err != nil {
		t.Fatal(err)
	}
	return func(tool string, args ...string) (string, error) {
		var tail []string
		for i, a := range args {
			if a == "--" {
				args, tail = args[:i], args[i+1:]
				break
			}
		}
		all := append([]string{"-On", "-m", "", "-t", "1", "-r", "0"}, args...)
		all = append(append(all, addr), tail...)
		cmd := exec.Command(tool, all...)
		cmd.Env = append(os.Environ(), "MIBS=", "SNMPCONFPATH=/nonexistent", "SNMP_PERSISTENT_DIR="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// serveLoopback serves h on a port of 127.0.0.1 until the test ends.
func serveLoopback(t testing.TB, h *Handler) netip.AddrPort {
	t.Helper()
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
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
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

// oidsOf returns the OIDs of snmpwalk -On lines.
func oidsOf(out string) []string {
	var o []string
	for _, l := range lines(out) {
		name, _, _ := strings.Cut(l, " ")
		o = append(o, name)
	}
	return o
}

// TestNetSNMPv3 runs net-snmp's clients over SNMPv3: every security level
// and protocol, the Reports of wrong keys and users, sets by read-write
// and read-only users.
func TestNetSNMPv3(t *testing.T) {
	needTool(t, "snmpbulkwalk", "snmp")
	h, f, fails := v3Agent(t)
	run := netsnmpClient(t, serveLoopback(t, h).String())
	v3 := func(user, level, auth, authPass, priv, privPass string) []string {
		a := []string{"-v3", "-u", user, "-l", level}
		if auth != "" {
			a = append(a, "-a", auth, "-A", authPass)
		}
		if priv != "" {
			a = append(a, "-x", priv, "-X", privPass)
		}
		return append(a, "--")
	}
	roPriv := v3("ro-priv", "authPriv", "SHA", "auth-pass-1", "AES", "priv-pass-1")

	v2all, err := run("snmpwalk", "-v2c", "-c", "public", "--", ".1.3")
	if err != nil {
		t.Fatal(err, v2all)
	}
	v2tcp, _ := run("snmpbulkwalk", "-v2c", "-c", "public", "--", ".1.3.6.1.2.1.6")
	out, err := run("snmpwalk", append(roPriv, ".1.3")...)
	if err != nil || strings.Join(oidsOf(out), " ") != strings.Join(oidsOf(v2all), " ") {
		t.Errorf("snmpwalk v3 authPriv SHA/AES: %v, %d objects, v2c %d\n%s", err, len(lines(out)), len(lines(v2all)), out)
	}
	t.Logf("snmpwalk -v3 authPriv SHA/AES .1.3: %d objects", len(lines(out)))
	for _, c := range []struct {
		what string
		args []string
	}{
		{"authPriv SHA/AES", roPriv},
		{"authNoPriv SHA-256", v3("rw-auth", "authNoPriv", "SHA-256", "auth-pass-2", "", "")},
		{"authNoPriv SHA-512", v3("sha512", "authNoPriv", "SHA-512", "auth-pass-5", "", "")},
		{"authPriv SHA/AES-256", v3("rw-aes256", "authPriv", "SHA", "auth-pass-4", "AES-256", "priv-pass-4")},
		{"noAuthNoPriv", v3("noauth", "noAuthNoPriv", "", "", "", "")},
	} {
		out, err := run("snmpbulkwalk", append(c.args, ".1.3.6.1.2.1.6")...)
		if err != nil || out != v2tcp {
			t.Errorf("snmpbulkwalk v3 %s: %v\n%s\nv2c:\n%s", c.what, err, out, v2tcp)
		}
	}
	out, err = run("snmpget", append(v3("tcp-des", "authPriv", "MD5", "auth-pass-3", "DES", "priv-pass-3"), ".1.3.6.1.2.1.6.9.0", sysDescr0)...)
	switch {
	case strings.Contains(out, "DES") && strings.Contains(strings.ToLower(out), "support"):
		t.Logf("net-snmp without DES: %s", out)
	case err != nil || !strings.Contains(out, "Gauge32: 2") || !strings.Contains(out, "No Such Object"):
		t.Errorf("snmpget v3 MD5/DES in view tcp: %v\n%s", err, out)
	}

	// Failures: the Report each gives, as net-snmp words it.
	before := fails.Load()
	for _, c := range []struct {
		what, want string
		args       []string
	}{
		{"wrong auth key", "Authentication failure", v3("ro-priv", "authPriv", "SHA", "wrong-pass-1", "AES", "priv-pass-1")},
		{"wrong auth protocol", "Authentication failure", v3("ro-priv", "authPriv", "SHA-256", "auth-pass-1", "AES", "priv-pass-1")},
		{"wrong priv key", "Decryption error", v3("ro-priv", "authPriv", "SHA", "auth-pass-1", "AES", "wrong-pass-1")},
		{"unknown user", "Unknown user name", v3("nobody", "authNoPriv", "SHA", "auth-pass-1", "", "")},
		{"unsupported level", "Unsupported security level", v3("rw-auth", "authPriv", "SHA-256", "auth-pass-2", "AES", "priv-pass-2")},
	} {
		out, err := run("snmpget", append(c.args, sysDescr0)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v\n%s", c.what, err, out)
		}
	}
	if n := fails.Load() - before; n != 4 {
		t.Errorf("%d authentication failures, want 4", n)
	}
	// Below the user's level: answered, denied.
	out, err = run("snmpget", append(v3("ro-priv", "authNoPriv", "SHA", "auth-pass-1", "", ""), sysDescr0)...)
	if err == nil || !strings.Contains(out, "authorizationError") {
		t.Errorf("authNoPriv for an authPriv user: %v\n%s", err, out)
	}

	const enable = ".1.3.6.1.4.1.64399.1.1.1.1.0"
	out, err = run("snmpset", append(v3("rw-auth", "authNoPriv", "SHA-256", "auth-pass-2", "", ""), enable, "i", "1")...)
	if err != nil || !f.Settings().Enabled {
		t.Errorf("snmpset v3 rw user: %v\n%s", err, out)
	}
	out, err = run("snmpset", append(roPriv, enable, "i", "2")...)
	if err == nil || !strings.Contains(out, "authorizationError") || !f.Settings().Enabled {
		t.Errorf("snmpset v3 ro user: %v\n%s", err, out)
	}
	out, err = run("snmpget", append(roPriv, ".1.3.6.1.6.3.15.1.1.5.0", ".1.3.6.1.6.3.15.1.1.4.0")...)
	if err != nil || !strings.Contains(out, ".1.3.6.1.6.3.15.1.1.5.0 = Counter32: 2") {
		t.Errorf("usmStatsWrongDigests: %v\n%s", err, out)
	}
	t.Logf("usmStats after the failures:\n%s", out)
}
