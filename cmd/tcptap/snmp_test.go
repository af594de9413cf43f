package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcptap/tcptap/config"
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
