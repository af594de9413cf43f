package snmp

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
)

func TestParseTrapTarget(t *testing.T) {
	for _, c := range []struct {
		in   string
		want TrapTarget
	}{
		{"192.0.2.1", TrapTarget{Address: "192.0.2.1:162", Version: gosnmp.Version2c, Community: "public", Retries: 3, Timeout: 2 * time.Second}},
		{"udp:[2001:db8::1]:10162?version=1&community=x", TrapTarget{Address: "[2001:db8::1]:10162", Version: gosnmp.Version1, Community: "x", Retries: 3, Timeout: 2 * time.Second}},
		{"nms:99?inform=true&retries=1&timeout=500ms", TrapTarget{Address: "nms:99", Version: gosnmp.Version2c, Community: "public", Inform: true, Retries: 1, Timeout: 500 * time.Millisecond}},
	} {
		got, err := ParseTrapTarget(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v", c.in, got, err)
		}
	}
	for _, bad := range []string{"", "h:0", "h?version=3", "h?inform=true&version=1", "h?x=1"} {
		if _, err := ParseTrapTarget(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestNotifierRateLimit(t *testing.T) {
	n := &Notifier{Rate: 2}
	now := time.Now()
	got := 0
	for range 5 {
		if n.allow(now) {
			got++
		}
	}
	if got != 2 || !n.allow(now.Add(time.Second)) {
		t.Errorf("allowed %d of a burst of 5 at rate 2", got)
	}
	rec := exporter.Record{Reason: classifier.ReceivedReset}
	for range notifyQueue + 3 {
		n.AbnormalClose(&rec)
	}
	if n.Suppressed() != 3 {
		t.Errorf("suppressed %d, want 3 (queue full)", n.Suppressed())
	}
}

// syncBuffer is snmptrapd's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestNotifierSnmptrapd sends coldStart, an abnormal close (v2c trap and
// v1 trap) and an acknowledged inform to net-snmp's snmptrapd.
func TestNotifierSnmptrapd(t *testing.T) {
	needTool(t, "snmptrapd", "snmptrapd")
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(conf, []byte("disableAuthorization yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("snmptrapd", "-f", "-Lo", "-n", "-On", "-C", "-c", conf, "--disableAuthorization=yes",
		"-p", filepath.Join(dir, "pid"), "-M", "/nonexistent", "-m", "", "udp:127.0.0.1:"+strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "SNMPCONFPATH="+dir, "MIBS=")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	wait := func(what string, ok func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if ok(out.String()) {
				return
			}
		}
		t.Fatalf("snmptrapd: no %s:\n%s", what, out.String())
	}
	wait("start", func(s string) bool { return strings.Contains(s, "NET-SNMP version") })

	addr := "127.0.0.1:" + strconv.Itoa(port)
	n, err := NewNotifier([]string{addr + "?community=public", "udp:" + addr + "?version=1"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(coldStartOID, nil); err != nil {
		t.Fatal(err)
	}
	wait("v2c coldStart", func(s string) bool { return strings.Contains(s, ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.5.1") })
	wait("v1 coldStart", func(s string) bool { return strings.Contains(s, "Cold Start Trap (0)") })

	rec := exporter.Record{Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:80"), Family: "ipv4", Local: "client", Reason: classifier.ReceivedReset}
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
