package snmp

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"
	"github.com/tcptap/tcptap/internal/peers"
)

// actions returns the operator-action lines of the JSON log.
func actions(t *testing.T, log *peers.Output) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
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
	var log peers.Output
	h.Log = slog.New(slog.NewJSONHandler(&log, nil))
	exchange(t, h, packet(gosnmp.Version2c, "private", gosnmp.SetRequest, integer(oidEnable, 1)))
	exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.SetRequest, integer(oidEnable, 2))) // read-only: refused
	exchange(t, h, packet(gosnmp.Version2c, "private", gosnmp.GetRequest, gosnmp.SnmpPDU{Name: oidEnable, Type: gosnmp.Null}))
	u := h.USM.user("rw-auth")
	v3Exchange(t, h, v3Msg{user: u, userName: "rw-auth", level: levelAuth, pdu: gosnmp.SetRequest, vbs: []gosnmp.SnmpPDU{integer(oidEnable, 2)}}.to(h).encode(t), u)
	got := actions(t, &log)
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
	if strings.Contains(log.String(), "private") {
		t.Error("the community name (a password) is in the log")
	}
}
