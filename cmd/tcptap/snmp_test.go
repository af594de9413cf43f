package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/snmp"
)

// openSNMP keeps the SNMPv3 engine in snmp.state_dir only with SNMPv3
// configured, fails at start when it cannot, and sets the notifier's
// rate limit.
func TestOpenSNMP(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default().SNMP
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.TrapTargets = []string{"127.0.0.1:9"}
	cfg.NotificationRate, cfg.NotificationBurst = 3, 4
	usm, n, err := openSNMP(cfg, log)
	if err != nil || usm.Engine.Boots != 1 || n.Rate != 3 || n.Burst != 4 {
		t.Fatalf("v2c: %v %+v %+v", err, usm, n)
	}
	if _, err := os.Stat(cfg.StateDir); !os.IsNotExist(err) {
		t.Errorf("state dir made without SNMPv3: %v", err)
	}

	cfg.Users = []config.User{{Name: "monitor", AuthProtocol: "sha256", AuthPassword: "12345678"}}
	cfg.TrapTargets = append(cfg.TrapTargets, "127.0.0.1:9?version=3&user=monitor")
	for boots := uint32(1); boots <= 2; boots++ {
		if usm, _, err = openSNMP(cfg, log); err != nil || usm.Engine.Boots != boots {
			t.Fatalf("v3 start %d: %v %+v", boots, err, usm)
		}
	}
	cfg.TrapTargets = []string{"127.0.0.1:9?version=3&user=other"}
	if _, _, err := openSNMP(cfg, log); err == nil || !strings.Contains(err.Error(), `snmp.trap_targets[0]: user "other": not in snmp.users`) {
		t.Errorf("unknown v3 target user: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = filepath.Join(file, "state")
	if _, _, err := openSNMP(cfg, log); err == nil || !strings.HasPrefix(err.Error(), "snmp.state_dir: ") {
		t.Errorf("unwritable state dir: %v", err)
	}
	cfg.Listen, cfg.TrapTargets = nil, nil
	if usm, n, err := openSNMP(cfg, log); usm != nil || n != nil || err != nil {
		t.Errorf("no agent, no targets: %v %v %v", usm, n, err)
	}
}

// A reload swaps the agent's communities, the notifier's targets and
// authentication traps, or, when any of it does not parse, nothing; and
// says which keys it may apply.
func TestSNMPReload(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default().SNMP
	cfg.StateDir = t.TempDir()
	cfg.Communities = []config.Community{{Name: "old", Access: "rw"}}
	cfg.TrapTargets = []string{"127.0.0.1:9"}
	usm, n, err := openSNMP(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	coms, err := snmp.Communities(cfg)
	if err != nil {
		t.Fatal(err)
	}
	agent := &snmp.Handler{Communities: coms, USM: usm}
	r := &snmpReloader{started: cfg, usm: usm, agent: agent, n: n, log: log}

	next := cfg
	next.Communities = []config.Community{{Name: "new", Access: "ro"}, {Name: "other"}}
	next.TrapTargets = []string{"127.0.0.1:9", "udp:127.0.0.2:1162?inform=true"}
	next.AuthenticationTraps = true
	ok := r.applicable(next)
	for _, k := range []string{"snmp.communities", "snmp.views", "snmp.users", "snmp.trap_targets", "snmp.authentication_traps"} {
		if !ok[k] {
			t.Errorf("%s: not applicable", k)
		}
	}
	if err := r.apply(next); err != nil {
		t.Fatal(err)
	}
	if len(agent.Communities) != 2 || agent.Communities[0].Name != "new" || agent.Communities[0].Write || len(n.Targets) != 2 || !agent.Counters.EnableAuthenTraps.Load() {
		t.Errorf("after the reload: communities %+v, targets %+v, auth traps %v", agent.Communities, n.Targets, agent.Counters.EnableAuthenTraps.Load())
	}
	// A target that does not parse: refused, nothing changes.
	bad := next
	bad.Communities = []config.Community{{Name: "third"}}
	bad.TrapTargets = []string{"127.0.0.1:9?version=9"}
	if err := r.apply(bad); err == nil {
		t.Error("a target of version 9 applied")
	}
	if agent.Communities[0].Name != "new" || len(n.Targets) != 2 {
		t.Errorf("a refused reload changed the agent: %+v %+v", agent.Communities, n.Targets)
	}
	// SNMPv3 users where none were at start need the engine's state: a
	// restart.
	v3 := next
	v3.Users = []config.User{{Name: "monitor", AuthProtocol: "sha256", AuthPassword: "12345678"}}
	if ok := r.applicable(v3); ok["snmp.users"] || ok["snmp.trap_targets"] {
		t.Errorf("v3 users without v3 at start applicable: %v", ok)
	}
	v3.Communities = []config.Community{{Name: "fourth"}}
	v3.TrapTargets = []string{"127.0.0.1:9?version=3&user=monitor"}
	if err := r.apply(v3); err != nil {
		t.Fatal(err)
	}
	if agent.Communities[0].Name != "fourth" || len(n.Targets) != 2 {
		t.Errorf("communities %+v (want fourth), targets %+v (want the two running)", agent.Communities, n.Targets)
	}
	// Without an agent or targets at start nothing SNMP reloads.
	var none *snmpReloader
	if ok := none.applicable(next); len(ok) != 0 {
		t.Errorf("no SNMP at start: %v", ok)
	}
}
