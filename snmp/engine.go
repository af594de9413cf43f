package snmp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/config"
)

// MaxInMessageSize is the largest message the agent accepts (a UDP
// datagram's payload over IPv4): msgMaxSize of the messages it sends and
// snmpEngineMaxMessageSize.
const MaxInMessageSize = 65507

// maxEngineBoots is where snmpEngineBoots latches (RFC 3414 §2.2.2):
// from then on every authenticated message is outside the time window
// until the engine is re-keyed (a new engine ID).
const maxEngineBoots = 1<<31 - 1

// TimeWindow is the USM time window (RFC 3414 §3.2 step 7b): how far the
// engine time of an authenticated request may be from ours.
const TimeWindow = 150 // seconds

// Engine is the agent's SNMP engine (RFC 3411 §3.1.1, SNMP-FRAMEWORK-MIB
// snmpEngine group): its ID, how many times it has started and the time
// since.
type Engine struct {
	ID    []byte
	Boots uint32
	start time.Time
	now   func() time.Time // time.Now; tests move it
}

// NewEngine returns an engine that starts now.
func NewEngine(id []byte, boots uint32) *Engine {
	return &Engine{ID: id, Boots: boots, start: time.Now(), now: time.Now}
}

// Time is snmpEngineTime: seconds since the engine started.
func (e *Engine) Time() uint32 {
	return uint32(min(e.now().Sub(e.start)/time.Second, maxEngineBoots))
}

// inTimeWindow reports whether an authenticated message's boots and time
// are within our time window (RFC 3414 §3.2 step 7b).
func (e *Engine) inTimeWindow(boots, engineTime uint32) bool {
	if e.Boots == maxEngineBoots || boots != e.Boots {
		return false
	}
	d := int64(e.Time()) - int64(engineTime)
	return d >= -TimeWindow && d <= TimeWindow
}

// enterpriseEngineID is the engine ID prefix of RFC 3411's format: bit 7
// set, then tcptap's enterprise number (the placeholder 64399, see
// [Enterprise]).
func enterpriseEngineID() []byte {
	b := binary.BigEndian.AppendUint32(nil, Enterprise[len(Enterprise)-1])
	b[0] |= 0x80
	return b
}

// NewEngineID returns an engine ID of RFC 3411's format 5 (octets chosen
// by the enterprise): 8 random bytes after the enterprise prefix.
func NewEngineID() ([]byte, error) {
	id := append(enterpriseEngineID(), 5)
	r := make([]byte, 8)
	if _, err := rand.Read(r); err != nil {
		return nil, err
	}
	return append(id, r...), nil
}

// ParseEngineID parses snmp.engine_id: 5 to 32 bytes in hexadecimal, an
// optional 0x prefix, not all zeros or all 0xff (RFC 3411 SnmpEngineID).
func ParseEngineID(s string) ([]byte, error) {
	id, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("engine ID %q: want hexadecimal digits such as 8000fb8f05a1b2c3d4e5f60708", s)
	case len(id) < 5 || len(id) > 32:
		return nil, fmt.Errorf("engine ID %q: %d bytes, want 5 to 32", s, len(id))
	case bytes.Count(id, []byte{0}) == len(id) || bytes.Count(id, []byte{0xff}) == len(id):
		return nil, fmt.Errorf("engine ID %q: all zeros or all ff", s)
	}
	return id, nil
}

// engineStateFile holds the engine's ID and boots in snmp.state_dir.
const engineStateFile = "snmp-engine.json"

type engineState struct {
	EngineID string `json:"engine_id"` // hexadecimal
	Boots    uint32 `json:"boots"`
}

// UsesV3 reports whether cfg configures SNMPv3: users or v3 trap targets.
// Only then is the engine's state kept in snmp.state_dir.
func UsesV3(cfg config.SNMP) bool {
	if len(cfg.Users) > 0 {
		return true
	}
	for _, s := range cfg.TrapTargets {
		if t, err := ParseTrapTarget(s); err == nil && t.Version == gosnmp.Version3 {
			return true
		}
	}
	return false
}

// OpenEngine returns the agent's engine. With SNMPv3 configured (see
// [UsesV3]) its ID and boots persist in snmp.state_dir, created if
// missing: boots are incremented at each start and written atomically
// before the agent answers, so they never go back; an unusable directory
// is an error. Without SNMPv3 nothing is written: the engine starts at
// boots 1 with a new ID each run (it only answers discovery). The ID is
// snmp.engine_id when set, else the stored one, else a new random one
// ([NewEngineID]).
func OpenEngine(cfg config.SNMP) (*Engine, error) {
	if !UsesV3(cfg) {
		return memoryEngine(cfg)
	}
	var id []byte
	if cfg.EngineID != "" {
		var err error
		if id, err = ParseEngineID(cfg.EngineID); err != nil {
			return nil, fmt.Errorf("snmp.engine_id: %w", err)
		}
	}
	e, err := loadEngine(cfg.StateDir, id)
	if err != nil {
		return nil, fmt.Errorf("snmp.state_dir: %w", err)
	}
	return e, nil
}

// memoryEngine returns an engine at boots 1 with snmp.engine_id or a new
// ID, persisted nowhere.
func memoryEngine(cfg config.SNMP) (*Engine, error) {
	if cfg.EngineID == "" {
		id, err := NewEngineID()
		if err != nil {
			return nil, err
		}
		return NewEngine(id, 1), nil
	}
	id, err := ParseEngineID(cfg.EngineID)
	if err != nil {
		return nil, fmt.Errorf("snmp.engine_id: %w", err)
	}
	return NewEngine(id, 1), nil
}

// loadEngine reads the state in dir, increments boots and writes it back.
// Boots keep counting when the configured ID changes: were they reset, an
// old ID configured again could accept replayed messages.
func loadEngine(dir string, id []byte) (*Engine, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, engineStateFile)
	var st engineState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("%s: %v (remove it to start a new engine ID at boots 1; managers then rediscover the engine and trap receivers need the new ID)", path, err)
		}
	}
	if id == nil && st.EngineID != "" {
		if id, err = ParseEngineID(st.EngineID); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
	}
	if id == nil {
		if id, err = NewEngineID(); err != nil {
			return nil, err
		}
	}
	boots := st.Boots
	if boots < maxEngineBoots {
		boots++
	}
	out, _ := json.Marshal(engineState{EngineID: hex.EncodeToString(id), Boots: boots})
	if err := writeFileAtomic(path, append(out, '\n')); err != nil {
		return nil, err
	}
	return NewEngine(id, boots), nil
}

// writeFileAtomic replaces path by data: a synced temporary file renamed
// over it, then the directory synced, so a crash leaves the old or the
// new content.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
