package snmp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/gosnmp/gosnmp"
)

type auditLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (a *auditLog) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.b.Write(p)
}

func (a *auditLog) actions(t *testing.T) []map[string]any {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(a.b.String()), "\n") {
		var m map[string]any
		if l == "" {
			continue
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m["msg"].(string), "operator action") {
			out = append(out, m)
		}
	}
	return out
}

// A set that reaches its commits logs one line: what was set, by which
// community (by position, never by name) or SNMPv3 user, from where.
// A refused set and a get log nothing.
func TestSetAudit(t *testing.T) {
	h, _, _ := v3Agent(t)
	var log auditLog
	h.Log = slog.New(slog.NewJSONHandler(&log, nil))
	exchange(t, h, packet(gosnmp.Version2c, "private", gosnmp.SetRequest, integer(oidEnable, 1)))
	exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.SetRequest, integer(oidEnable, 2))) // read-only: refused
	exchange(t, h, packet(gosnmp.Version2c, "private", gosnmp.GetRequest, gosnmp.SnmpPDU{Name: oidEnable, Type: gosnmp.Null}))
	u := h.USM.user("rw-auth")
	v3Exchange(t, h, v3Msg{user: u, userName: "rw-auth", level: levelAuth, pdu: gosnmp.SetRequest, vbs: []gosnmp.SnmpPDU{integer(oidEnable, 2)}}.to(h).encode(t), u)
	got := log.actions(t)
	if len(got) != 2 {
		t.Fatalf("%d audit lines, want 2: %v", len(got), got)
	}
	if a := got[0]; a["action"] != "snmp set" || a["via"] != "snmp" || !strings.HasPrefix(a["community"].(string), "snmp.communities[") ||
		a["source"] != localhost.String() || a["set"] != strings.TrimPrefix(oidEnable, ".")+"=1" && a["set"] != oidEnable+"=1" {
		t.Errorf("v2c set: %v", a)
	}
	if a := got[1]; a["user"] != "rw-auth" || a["security_level"] == nil || a["source"] != localhost.String() {
		t.Errorf("v3 set: %v", a)
	}
	if strings.Contains(log.b.String(), "private") {
		t.Error("the community name (a password) is in the log")
	}
}
