package snmp

import (
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/record"
)

func TestParseTrapTarget(t *testing.T) {
	for _, c := range []struct {
		in   string
		want TrapTarget
	}{
		{"192.0.2.1", TrapTarget{Address: "192.0.2.1:162", Version: gosnmp.Version2c, Community: "public", Retries: 3, Timeout: 2 * time.Second}},
		{"udp:[2001:db8::1]:10162?version=1&community=x", TrapTarget{Address: "[2001:db8::1]:10162", Version: gosnmp.Version1, Community: "x", Retries: 3, Timeout: 2 * time.Second}},
		{"nms:99?inform=true&retries=1&timeout=500ms", TrapTarget{Address: "nms:99", Version: gosnmp.Version2c, Community: "public", Inform: true, Retries: 1, Timeout: 500 * time.Millisecond}},
		{"nms?version=3&user=u&level=authNoPriv", TrapTarget{Address: "nms:162", Version: gosnmp.Version3, Community: "public", User: "u", Level: levelAuth, LevelSet: true, Retries: 3, Timeout: 2 * time.Second}},
		{"nms?version=3&user=u&inform=1", TrapTarget{Address: "nms:162", Version: gosnmp.Version3, Community: "public", User: "u", Inform: true, Retries: 3, Timeout: 2 * time.Second}},
	} {
		got, err := ParseTrapTarget(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v", c.in, got, err)
		}
	}
	for _, bad := range []string{"", "h:0", "h?version=3", "h?version=4", "h?inform=true&version=1", "h?x=1", "h?user=u", "h?version=3&user=u&level=priv"} {
		if _, err := ParseTrapTarget(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// v3 targets name users with keys for their level.
	h, _, _ := v3Agent(t)
	n, err := NewNotifierUSM([]string{"h?version=3&user=ro-priv", "h?version=3&user=ro-priv&level=noAuthNoPriv"}, h.USM, time.Now(), nil)
	if err != nil || n.Targets[0].Level != levelAuthPriv || n.Targets[1].Level != levelNoAuth {
		t.Errorf("v3 targets: %v %+v", err, n)
	}
	for target, want := range map[string]string{
		"h?version=3&user=nobody":                 "snmp.trap_targets[0]: user \"nobody\": not in snmp.users",
		"h?version=3&user=rw-auth&level=authPriv": "snmp.trap_targets[0]: level authPriv: user \"rw-auth\" has no key for it (its level is authNoPriv)",
	} {
		if _, err := NewNotifierUSM([]string{target}, h.USM, time.Now(), nil); err == nil || err.Error() != want {
			t.Errorf("%s: %v", target, err)
		}
	}
	if _, err := NewNotifier([]string{"h?version=3&user=ro-priv"}, time.Now(), nil); err == nil {
		t.Error("v3 target without users")
	}
}

func TestNotifierRateLimit(t *testing.T) {
	n := &Notifier{Rate: 2, Burst: 3}
	now := time.Now()
	got := 0
	for range 5 {
		if n.allow(now) {
			got++
		}
	}
	if got != 3 || !n.allow(now.Add(time.Second/2)) || n.allow(now.Add(time.Second/2)) {
		t.Errorf("allowed %d of a burst of 5 with burst 3", got)
	}
	// A long pause refills the bucket to the burst, no more.
	got = 0
	for range 5 {
		if n.allow(now.Add(time.Hour)) {
			got++
		}
	}
	if got != 3 {
		t.Errorf("after an hour: %d of 5", got)
	}
	// Authentication failures coalesce while one is pending.
	for range 4 {
		n.AuthenticationFailure()
	}
	if n.AuthFailuresSuppressed() != 3 || len(n.authPending) != 1 {
		t.Errorf("authentication failures: %d suppressed, %d pending", n.AuthFailuresSuppressed(), len(n.authPending))
	}
	var nilNotifier *Notifier
	nilNotifier.AuthenticationFailure() // no targets: no notifier
	rec := record.Record{Reason: classifier.ReceivedReset}
	for range notifyQueue + 3 {
		n.AbnormalClose(&rec)
	}
	if n.Suppressed() != 3 {
		t.Errorf("suppressed %d, want 3 (queue full)", n.Suppressed())
	}
}

// snmptrapd runs net-snmp's snmptrapd on a port of 127.0.0.1 with the
// configuration conf (its output: everything received, numeric OIDs);
// wait waits up to 5 s for its output to satisfy ok.
func snmptrapd(t *testing.T, conf string) (addr string, out *peers.Output, wait func(what string, ok func(string) bool)) {
	t.Helper()
	needTool(t, "snmptrapd", "snmptrapd")
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("snmptrapd", "-f", "-Lo", "-n", "-On", "-C", "-c", path, "--disableAuthorization=yes",
		"-p", filepath.Join(dir, "pid"), "-M", "/nonexistent", "-m", "", "udp:127.0.0.1:"+strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "SNMPCONFPATH="+dir, "MIBS=", "SNMP_PERSISTENT_DIR="+dir)
	out = &peers.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	wait = func(what string, ok func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if ok(out.String()) {
				return
			}
		}
		t.Fatalf("snmptrapd: no %s:\n%s", what, out.String())
	}
	wait("start", func(s string) bool { return strings.Contains(s, "NET-SNMP version") })
	return "127.0.0.1:" + strconv.Itoa(port), out, wait
}

// TestNotifierSnmptrapd sends coldStart, an abnormal close (v2c trap and
// v1 trap) and an acknowledged inform to net-snmp's snmptrapd.
func TestNotifierSnmptrapd(t *testing.T) {
	addr, out, wait := snmptrapd(t, "disableAuthorization yes\n")
	n, err := NewNotifier([]string{addr + "?community=public", "udp:" + addr + "?version=1"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(coldStartOID, nil); err != nil {
		t.Fatal(err)
	}
	wait("v2c coldStart", func(s string) bool { return strings.Contains(s, ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.5.1") })
	wait("v1 coldStart", func(s string) bool { return strings.Contains(s, "Cold Start Trap (0)") })

	rec := record.Record{Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:80"), Family: "ipv4", Local: "client", Reason: classifier.ReceivedReset}
	if err := n.Send(abnormalCloseOID, abnormalCloseVars(&rec)); err != nil {
		t.Fatal(err)
	}
	reason := ".1.3.6.1.4.1.64399.1.1.5.6.0 = STRING: \"" + string(classifier.ReceivedReset) + "\""
	wait("v2c abnormal close", func(s string) bool {
		return strings.Contains(s, "= OID: .1.3.6.1.4.1.64399.1.0.1") && strings.Contains(s, reason) &&
			strings.Contains(s, ".1.3.6.1.4.1.64399.1.1.5.3.0 = Gauge32: 40000")
	})
	wait("v1 abnormal close", func(s string) bool { return strings.Contains(s, "Enterprise Specific Trap (1)") })

	inf, err := NewNotifier([]string{addr + "?inform=true&retries=1&timeout=1s"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := inf.Send(abnormalCloseOID, abnormalCloseVars(&rec)); err != nil {
		t.Fatalf("inform not acknowledged: %v\n%s", err, out.String())
	}
	wait("inform", func(s string) bool { return strings.Contains(s, "INFORM") || strings.Count(s, reason) >= 3 })

	// Unacknowledged: nothing listens.
	dead, _ := NewNotifier([]string{"127.0.0.1:9?inform=true&retries=0&timeout=200ms"}, time.Now(), nil)
	if err := dead.Send(coldStartOID, nil); err == nil {
		t.Error("inform to a closed port: no error")
	}
	t.Logf("snmptrapd:\n%s", out.String())
}

// TestNotifierSnmptrapdV3 sends SNMPv3 traps (our engine authoritative,
// keys localised to our engine ID as snmptrapd's createUser -e has them)
// and an SNMPv3 inform (snmptrapd's engine discovered), and an
// authenticationFailure notification after a request with a wrong
// community.
func TestNotifierSnmptrapdV3(t *testing.T) {
	h, _, _ := v3Agent(t)
	id := hex.EncodeToString(h.USM.Engine.ID)
	addr, out, wait := snmptrapd(t, strings.Join([]string{
		"createUser -e 0x" + id + " ro-priv SHA auth-pass-1 AES priv-pass-1",
		"createUser -e 0x" + id + " rw-aes256 SHA auth-pass-4 AES256 priv-pass-4",
		"createUser ro-priv SHA auth-pass-1 AES priv-pass-1", // informs: snmptrapd's engine
		"authUser log ro-priv",
		"authUser log rw-aes256",
		"authCommunity log public",
		"",
	}, "\n"))
	n, err := NewNotifierUSM([]string{addr + "?version=3&user=ro-priv", addr + "?version=3&user=rw-aes256", addr + "?version=3&user=ro-priv&level=authNoPriv"}, h.USM, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(coldStartOID, nil); err != nil {
		t.Fatal(err)
	}
	coldStart := ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.5.1"
	wait("three v3 coldStarts", func(s string) bool { return strings.Count(s, coldStart) == 3 })

	// Keys snmptrapd does not have: nothing logged.
	wrong, err := NewNotifierUSM([]string{addr + "?version=3&user=rw-auth"}, h.USM, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Send(coldStartOID, nil); err != nil {
		t.Fatal(err)
	}

	inf, err := NewNotifierUSM([]string{addr + "?version=3&user=ro-priv&inform=true&retries=1&timeout=1s"}, h.USM, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := record.Record{Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:80"), Family: "ipv4", Local: "client", Reason: classifier.ReceivedReset}
	if err := inf.Send(abnormalCloseOID, abnormalCloseVars(&rec)); err != nil {
		t.Fatalf("v3 inform not acknowledged: %v\n%s", err, out.String())
	}
	wait("v3 inform", func(s string) bool { return strings.Contains(s, ".1.3.6.1.4.1.64399.1.1.5.3.0 = Gauge32: 40000") })

	// authenticationFailure: the agent's failure through the rate
	// limiter to v2c and v1 targets.
	af, err := NewNotifierUSM([]string{addr, addr + "?version=1"}, h.USM, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.OnAuthFailure = af.AuthenticationFailure
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { af.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait("coldStart of Run", func(s string) bool { return strings.Contains(s, "Cold Start Trap (0)") })
	if exchange(t, h, packet(gosnmp.Version2c, "wrong", gosnmp.GetRequest, oids(sysDescr0)...)) != nil {
		t.Fatal("wrong community answered")
	}
	wait("authenticationFailure", func(s string) bool {
		return strings.Contains(s, ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.5.5") && strings.Contains(s, "Authentication Failure Trap")
	})
	if c := strings.Count(out.String(), coldStart); c != 4 {
		t.Errorf("%d v2/v3 coldStarts logged, want 4 (3 v3 and Run's v2c): the wrong keys were accepted\n%s", c, out.String())
	}
	t.Logf("snmptrapd:\n%s", out.String())
}
