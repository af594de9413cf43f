package snmp

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/config"
)

// Engine boots go up by one at each start with the same state directory,
// the engine ID stays, and the agent serves both.
func TestEngineBoots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	cfg := config.SNMP{StateDir: dir, Users: []config.User{{Name: "u"}}}
	var id []byte
	for want := uint32(1); want <= 3; want++ {
		e, err := OpenEngine(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if e.Boots != want || id != nil && !bytes.Equal(e.ID, id) {
			t.Fatalf("start %d: boots %d, engine ID %x (first %x)", want, e.Boots, e.ID, id)
		}
		id = e.ID
		usm, err := NewUSM(cfg, e)
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewAgent(cfg, usm, newFake(), Info{Start: time.Now()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// What a manager discovers.
		r := v3Exchange(t, h, v3Msg{}.encode(t), nil)
		if r == nil || r.m.boots != want || !bytes.Equal(r.m.engineID, id) {
			t.Fatalf("start %d: discovered %+v", want, r)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", fi.Mode(), err)
	}
	st, _ := os.ReadFile(filepath.Join(dir, engineStateFile))
	if want := `{"engine_id":"` + hex.EncodeToString(id) + `","boots":3}` + "\n"; string(st) != want {
		t.Errorf("state file %q, want %q", st, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// A configured engine ID replaces the stored one; boots keep going.
	cfg.EngineID = "0x8000fb8f0401020304"
	e, err := OpenEngine(cfg)
	if err != nil || hex.EncodeToString(e.ID) != "8000fb8f0401020304" || e.Boots != 4 {
		t.Fatalf("configured engine ID: %v %x boots %d", err, e.ID, e.Boots)
	}
	// At the latch value boots stay.
	if err := os.WriteFile(filepath.Join(dir, engineStateFile), []byte(`{"engine_id":"8000fb8f0401020304","boots":2147483647}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if e, err = OpenEngine(cfg); err != nil || e.Boots != maxEngineBoots || e.inTimeWindow(maxEngineBoots, e.Time()) {
		t.Errorf("latched boots: %v %d", err, e.Boots)
	}
}

func TestEngineErrors(t *testing.T) {
	dir := t.TempDir()
	v3 := config.SNMP{Users: []config.User{{Name: "u"}}}

	// A state directory that cannot be made.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := v3
	cfg.StateDir = filepath.Join(file, "state")
	if _, err := OpenEngine(cfg); err == nil || !strings.HasPrefix(err.Error(), "snmp.state_dir: ") {
		t.Errorf("unusable state dir: %v", err)
	}
	// A damaged state file: never silently back to boots 1.
	cfg.StateDir = dir
	if err := os.WriteFile(filepath.Join(dir, engineStateFile), []byte("{boots"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEngine(cfg); err == nil || !strings.Contains(err.Error(), "remove it to start a new engine ID") {
		t.Errorf("damaged state: %v", err)
	}
	cfg.EngineID = "00000000000000"
	if _, err := OpenEngine(cfg); err == nil || !strings.HasPrefix(err.Error(), "snmp.engine_id: ") {
		t.Errorf("all-zero engine ID: %v", err)
	}
	for _, bad := range []string{"80", "0xzz", strings.Repeat("ab", 33), "ffffffffff"} {
		if _, err := ParseEngineID(bad); err == nil {
			t.Errorf("ParseEngineID(%q) accepted", bad)
		}
	}

	// Without SNMPv3 nothing is written, the engine is at boots 1.
	empty := t.TempDir()
	e, err := OpenEngine(config.SNMP{StateDir: empty, TrapTargets: []string{"h?version=2c"}})
	if err != nil || e.Boots != 1 || len(e.ID) != 13 {
		t.Fatalf("no v3: %v %+v", err, e)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("state written without v3: %v", ents)
	}
	if !UsesV3(config.SNMP{TrapTargets: []string{"h?version=3&user=u"}}) {
		t.Error("a v3 trap target is SNMPv3")
	}
}

// engineTime counts seconds from the start.
func TestEngineTime(t *testing.T) {
	e := NewEngine([]byte("\x80\x00\xfb\x8f\x05abcdefgh"), 5)
	base := e.start
	e.now = func() time.Time { return base.Add(90*time.Second + 999*time.Millisecond) }
	if e.Time() != 90 || !e.inTimeWindow(5, 240) || e.inTimeWindow(5, 241) || e.inTimeWindow(4, 90) {
		t.Errorf("time %d", e.Time())
	}
}
