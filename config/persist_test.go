package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// changedTrace is a trace configuration unlike the default in every key.
func changedTrace() Trace {
	return Trace{
		Enable:               true,
		LocalNets:            []string{"10.0.0.0/8", "fd00::/8"},
		Filter:               []string{"permit destination-port 443", "deny src 10.0.0.0/8 dport range 6000 6063"},
		OnlyNewConnection:    true,
		MaxPacketNumber:      64,
		MemoryQuota:          "1GiB",
		CacheMode:            "all",
		IdleTimeout:          90 * time.Second,
		CloseLinger:          0,
		MaxConnections:       5000,
		VLANPolicy:           "strict",
		RTMinRetransmissions: 4,
		PTMinProbes:          3,
		KTMinProbes:          5,
		SilenceFactor:        2.25,
		MinSilence:           1500 * time.Millisecond,
		SYNSilence:           time.Minute,
	}
}

func readTrace(t *testing.T, path string) Trace {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(data)
	if err != nil {
		t.Fatalf("the persisted file does not decode: %v\n%s", err, data)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the persisted file does not validate: %v\n%s", err, data)
	}
	return c.Trace
}

func writeFile(t *testing.T, name, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask
		t.Fatal(err)
	}
	return path
}

const commented = `# tcptap on sensor-3 (managed by hand)

capture:
  interfaces: [eth1]   # the SPAN port
  workers: 4

# Tracing: keep the last 200 packets of HTTP connections.
trace:
  # switched on by the NOC
  enable: false # until the change window

  filter: # first match wins
    - permit destination-port 80
  max_packet_number: 200
  memory_quota: "64MiB"
# end of the trace section

exporter:
  listen: "127.0.0.1:9911"

snmp:
  communities:
    - name: s3cret
      access: ro
`

// Comments, blank lines and the other sections survive byte for byte; the
// trace keys take the new values, keeping their line comments.
func TestPersistKeepsCommentsAndSections(t *testing.T) {
	path := writeFile(t, "tcptap.yaml", commented, 0o640)
	tr := changedTrace()
	if err := PersistTrace(path, tr); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	out := string(got)
	for _, keep := range []string{
		"# tcptap on sensor-3 (managed by hand)\n\ncapture:\n  interfaces: [eth1]   # the SPAN port\n  workers: 4\n\n# Tracing: keep the last 200 packets of HTTP connections.\ntrace:\n  # switched on by the NOC\n",
		"  enable: true # until the change window\n\n",
		"  filter: # first match wins\n    - permit destination-port 443\n",
		"  memory_quota: \"1GiB\"\n",
		"# end of the trace section\n\nexporter:\n  listen: \"127.0.0.1:9911\"\n\nsnmp:\n  communities:\n    - name: s3cret\n      access: ro\n",
	} {
		if !strings.Contains(out, keep) {
			t.Errorf("lost or changed:\n%s\nin:\n%s", keep, out)
		}
	}
	if got := readTrace(t, path); !reflect.DeepEqual(got, tr) {
		t.Errorf("read back %+v\nwant      %+v", got, tr)
	}
	c, _ := Decode(got)
	if c.Capture.Workers != 4 || c.Exporter.Listen != "127.0.0.1:9911" || len(c.SNMP.Communities) != 1 {
		t.Errorf("other sections changed: %+v", c)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	// Persisting the same values again changes nothing.
	if err := PersistTrace(path, tr); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if string(again) != out {
		t.Errorf("second persist changed the file:\n%s\nthen\n%s", out, again)
	}
	// And back to the defaults.
	if err := PersistTrace(path, Default().Trace); err != nil {
		t.Fatal(err)
	}
	if got := readTrace(t, path); !reflect.DeepEqual(got, Default().Trace) {
		t.Errorf("read back %+v\nwant      %+v", got, Default().Trace)
	}
}

// Only the trace section changes in the shipped example.
func TestPersistExample(t *testing.T) {
	path := writeFile(t, "tcptap.yaml", string(Example()), 0o644)
	tr := changedTrace()
	if err := PersistTrace(path, tr); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if rt := readTrace(t, path); !reflect.DeepEqual(rt, tr) {
		t.Errorf("read back %+v\nwant      %+v", rt, tr)
	}
	before, after := strings.Split(string(Example()), "\n"), strings.Split(string(got), "\n")
	// Every line of the example is still there except the changed values.
	changed := map[string]bool{}
	for _, f := range traceFields() {
		changed[f.name] = true
	}
	j := 0
	for _, l := range before {
		k, _, _ := strings.Cut(strings.TrimSpace(l), ":")
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(strings.TrimSpace(l), "#") && changed[k] {
			continue
		}
		for j < len(after) && after[j] != l {
			j++
		}
		if j == len(after) {
			t.Errorf("line %q lost or moved", l)
			break
		}
	}
	if c, _ := Decode(got); !reflect.DeepEqual(c.Capture, Default().Capture) || !reflect.DeepEqual(c.SNMP, Default().SNMP) {
		t.Errorf("other sections changed")
	}
}

func TestPersistAddsMissing(t *testing.T) {
	tr := changedTrace()
	for _, tt := range []struct {
		name, in string
		keep     string
	}{
		{"no trace section", "capture:\n  workers: 2\n# the end\n", "capture:\n  workers: 2\n# the end\n\ntrace:\n  enable: true\n"},
		{"empty file", "", "trace:\n  enable: true\n"},
		{"comments only", "# nothing yet\n", "# nothing yet\n\ntrace:\n"},
		{"empty section", "trace:   # set by persist\n#  enable: false\nexporter:\n  listen: :1\n", "trace: # set by persist\n  enable: true\n"},
		{"null section", "trace: ~\n", "trace:\n  enable: true\n"},
		{"some keys", "trace:\n  cache_mode: abnormal-close\n\nsnmp:\n  listen: []\n", "trace:\n  cache_mode: all\n  enable: true\n"},
		{"compact lists", "trace:\n  filter:\n  - permit dport 1\n  enable: false\n", "trace:\n  filter:\n    - permit destination-port 443\n"},
		{"flow section", "trace: {enable: false, cache_mode: all}   # flow\ncapture: {workers: 3}\n", "enable: true"},
		{"flow list kept", "trace:\n  local_nets: [192.0.2.0/24]\n", "  local_nets: [10.0.0.0/8, \"fd00::/8\"]\n"},
		{"anchor", "base: &b\n  enable: false\ntrace: *b\n", "enable: true"},
		{"CRLF", "capture:\r\n  workers: 2\r\ntrace:\r\n  enable: false\r\n", "capture:\r\n  workers: 2\r\ntrace:\r\n  enable: true\r\n"},
		{"no final newline", "trace:\n  enable: false", "trace:\n  enable: true\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", tt.in, 0o600)
			err := PersistTrace(path, tr)
			if tt.name == "anchor" {
				// "base" is not a configuration key: Decode would refuse
				// the file, so check the section alone.
				if err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(path)
				if !strings.Contains(string(got), tt.keep) {
					t.Errorf("got:\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if !strings.Contains(string(got), tt.keep) {
				t.Errorf("want\n%q\nin\n%q", tt.keep, got)
			}
			if rt := readTrace(t, path); !reflect.DeepEqual(rt, tr) {
				t.Errorf("read back %+v\nwant      %+v\nfile:\n%s", rt, tr, got)
			}
		})
	}
}

func TestPersistCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tcptap.yaml")
	tr := changedTrace()
	if err := PersistTrace(path, tr); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	if rt := readTrace(t, path); !reflect.DeepEqual(rt, tr) {
		t.Errorf("read back %+v\nwant      %+v", rt, tr)
	}
	assertNoTemp(t, dir)

	// The directory must exist: persist does not create /etc/tcptap.
	if err := PersistTrace(filepath.Join(dir, "missing", "c.yaml"), tr); err == nil {
		t.Error("persist into a missing directory: no error")
	}
}

// A symbolic link stays a link; the file it points to is replaced.
func TestPersistFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	if err := os.WriteFile(real, []byte("capture:\n  workers: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "tcptap.yaml")
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := PersistTrace(link, changedTrace()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if got := readTrace(t, real); !got.Enable {
		t.Errorf("the target was not written")
	}
}

// Files persist must not rewrite are reported and left alone.
func TestPersistRefuses(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"not YAML", "trace: [\n", "not valid YAML"},
		{"list", "- a\n- b\n", "the top level is not a mapping"},
		{"two documents", "trace:\n  enable: true\n---\ncapture: {}\n", "holds 2 YAML documents"},
		{"trace twice", "trace:\n  enable: true\ntrace:\n  enable: false\n", "key trace appears 2 times"},
		{"key twice", "trace:\n  enable: true\n  enable: false\n", "key trace.enable appears 2 times"},
		{"trace scalar", "trace: yes\n", "trace is not a mapping"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", tt.in, 0o644)
			err := PersistTrace(path, changedTrace())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PersistTrace = %v, want %q", err, tt.want)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.in {
				t.Errorf("file changed to %q", got)
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

// A failure before the rename leaves the old file and no temporary file.
func TestPersistAtomic(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func()
	}{
		{"sync fails", func() { syncFile = func(*os.File) error { return errors.New("disk on fire") } }},
		{"rename fails", func() { renameFile = func(string, string) error { return errors.New("disk on fire") } }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			oldSync, oldRename := syncFile, renameFile
			defer func() { syncFile, renameFile = oldSync, oldRename }()
			tt.setup()
			path := writeFile(t, "c.yaml", commented, 0o644)
			err := PersistTrace(path, changedTrace())
			if err == nil || !strings.Contains(err.Error(), "disk on fire") {
				t.Errorf("PersistTrace = %v, want the write error", err)
			}
			if got, _ := os.ReadFile(path); string(got) != commented {
				t.Errorf("file changed")
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// A key whose value does not change keeps its lines exactly, comments
// inside the value included.
func TestPersistUnchangedKeysUntouched(t *testing.T) {
	in := "trace:\n  filter:\n    # web only\n    - permit dport 80   # http\n  enable: false\n  cache_mode: 'all'\n"
	path := writeFile(t, "c.yaml", in, 0o600)
	tr := Default().Trace
	tr.Filter, tr.CacheMode, tr.Enable = []string{"permit dport 80"}, "all", true
	if err := PersistTrace(path, tr); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "trace:\n  filter:\n    # web only\n    - permit dport 80   # http\n  enable: true\n  cache_mode: 'all'\n  local_nets: []\n"
	if !strings.HasPrefix(string(got), want) {
		t.Errorf("got\n%s\nwant prefix\n%s", got, want)
	}
	if rt := readTrace(t, path); !reflect.DeepEqual(rt, normTraceLists(tr)) {
		t.Errorf("read back %+v\nwant      %+v", rt, tr)
	}
}

func normTraceLists(t Trace) Trace {
	if t.LocalNets == nil {
		t.LocalNets = []string{}
	}
	return t
}
