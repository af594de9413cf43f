package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/tcptap/tcptap/config"
)

// cfgRun is one start of a command bound with bindConfig.
type cfgRun struct {
	args []string
	env  map[string]string
	file *string // content of the default configuration file; nil: none
}

// loadWith runs a command with bindConfig's flags and returns what
// loadConfig gives. The environment is cleared of every configuration
// variable first.
func loadConfigWith(t *testing.T, r cfgRun) (config.Config, *viper.Viper, error) {
	t.Helper()
	for _, k := range config.Keys() {
		clearConfigEnv(t, k.EnvName())
	}
	clearConfigEnv(t, "TCPTAP_CONFIG")
	for k, v := range r.env {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	old := defaultConfigFile
	defaultConfigFile = filepath.Join(dir, "tcptap.yaml")
	t.Cleanup(func() { defaultConfigFile = old })
	if r.file != nil {
		if err := os.WriteFile(defaultConfigFile, []byte(*r.file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cfg config.Config
	var loadErr error
	cmd := &cobra.Command{
		Use:           "run",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			cfg, loadErr = loadConfig(cmdViper)
			return nil
		},
	}
	cmdViper = bindConfig(cmd)
	cmd.SetArgs(r.args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("flags %q: %v", r.args, err)
	}
	return cfg, cmdViper, loadErr
}

// cmdViper is the viper of the command loadWith runs.
var cmdViper *viper.Viper

func clearConfigEnv(t *testing.T, name string) {
	if _, ok := os.LookupEnv(name); ok {
		t.Setenv(name, "") // restored after the test
		os.Unsetenv(name)
	}
}

func cfgStr(s string) *string { return &s }

func TestConfigDefaults(t *testing.T) {
	cfg, v, err := loadConfigWith(t, cfgRun{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Errorf("no sources: %+v\nwant config.Default() %+v", cfg, config.Default())
	}
	if v.ConfigFileUsed() != "" {
		t.Errorf("ConfigFileUsed = %q without a file", v.ConfigFileUsed())
	}
	if p := persistPath(v); p != defaultConfigFile {
		t.Errorf("persistPath = %q, want the default file %q", p, defaultConfigFile)
	}
}

// Each source sets each kind of key.
func TestConfigEachSource(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		check func(c config.Config) bool
	}{
		{"string", "trace:\n  cache_mode: all\n", map[string]string{"TCPTAP_TRACE_CACHE_MODE": "all"}, []string{"--trace.cache_mode", "all"},
			func(c config.Config) bool { return c.Trace.CacheMode == "all" }},
		{"duration", "trace:\n  idle_timeout: 90s\n", map[string]string{"TCPTAP_TRACE_IDLE_TIMEOUT": "90s"}, []string{"--trace.idle_timeout=1m30s"},
			func(c config.Config) bool { return c.Trace.IdleTimeout == 90*time.Second }},
		{"int", "trace:\n  max_packet_number: 64\n", map[string]string{"TCPTAP_TRACE_MAX_PACKET_NUMBER": "64"}, []string{"--trace.max_packet_number", "64"},
			func(c config.Config) bool { return c.Trace.MaxPacketNumber == 64 }},
		{"uint32", "trace:\n  rt_min_retransmissions: 5\n", map[string]string{"TCPTAP_TRACE_RT_MIN_RETRANSMISSIONS": "5"}, []string{"--trace.rt_min_retransmissions", "5"},
			func(c config.Config) bool { return c.Trace.RTMinRetransmissions == 5 }},
		{"float", "trace:\n  silence_factor: 2.5\n", map[string]string{"TCPTAP_TRACE_SILENCE_FACTOR": "2.5"}, []string{"--trace.silence_factor", "2.5"},
			func(c config.Config) bool { return c.Trace.SilenceFactor == 2.5 }},
		{"bool", "trace:\n  enable: true\n", map[string]string{"TCPTAP_TRACE_ENABLE": "true"}, []string{"--trace.enable"},
			func(c config.Config) bool { return c.Trace.Enable }},
		{"bool false", "capture:\n  promiscuous: false\n", map[string]string{"TCPTAP_CAPTURE_PROMISCUOUS": "false"}, []string{"--capture.promiscuous=false"},
			func(c config.Config) bool { return !c.Capture.Promiscuous }},
		{"list", "capture:\n  interfaces: [eth1, eth2]\n", map[string]string{"TCPTAP_CAPTURE_INTERFACES": "eth1, eth2"}, []string{"-i", "eth1", "--interface", "eth2"},
			func(c config.Config) bool { return reflect.DeepEqual(c.Capture.Interfaces, []string{"eth1", "eth2"}) }},
		{"list, comma flag", "capture:\n  interfaces:\n    - eth1\n    - eth2\n", map[string]string{"TCPTAP_CAPTURE_INTERFACES": "eth1,eth2"}, []string{"--capture.interfaces", "eth1,eth2"},
			func(c config.Config) bool { return reflect.DeepEqual(c.Capture.Interfaces, []string{"eth1", "eth2"}) }},
		{"repeated list", "trace:\n  filter:\n    - permit dport 80\n    - deny any\n", map[string]string{"TCPTAP_TRACE_FILTER": "permit dport 80,deny any"}, []string{"--trace.filter", "permit dport 80", "--trace.filter", "deny any"},
			func(c config.Config) bool {
				return reflect.DeepEqual(c.Trace.Filter, []string{"permit dport 80", "deny any"})
			}},
		{"int list", "exporter:\n  port_labels: [80, 443]\n", map[string]string{"TCPTAP_EXPORTER_PORT_LABELS": "80,443"}, []string{"--exporter.port_labels", "80,443"},
			func(c config.Config) bool { return reflect.DeepEqual(c.Exporter.PortLabels, []int{80, 443}) }},
		{"communities",
			"snmp:\n  communities:\n    - name: a\n      sources: 10.0.0.0/8\n    - name: b\n      access: rw\n",
			map[string]string{"TCPTAP_SNMP_COMMUNITIES": "name=a sources=10.0.0.0/8, name=b access=rw"},
			[]string{"--snmp.communities", "name=a sources=10.0.0.0/8", "--snmp.communities", "name=b access=rw"},
			func(c config.Config) bool {
				return reflect.DeepEqual(c.SNMP.Communities, []config.Community{{Name: "a", Sources: []string{"10.0.0.0/8"}}, {Name: "b", Access: "rw"}})
			}},
		{"users and views",
			"snmp:\n  views:\n    - name: tcp\n      included: [1.3.6.1.2.1.6]\n  users:\n    - name: m\n      auth_protocol: sha256\n      auth_password: 12345678\n      view: tcp\n",
			map[string]string{"TCPTAP_SNMP_VIEWS": "name=tcp included=1.3.6.1.2.1.6", "TCPTAP_SNMP_USERS": "name=m auth_protocol=sha256 auth_password=12345678 view=tcp"},
			[]string{"--snmp.views", "name=tcp included=1.3.6.1.2.1.6", "--snmp.users", "name=m auth_protocol=sha256 auth_password=12345678 view=tcp"},
			func(c config.Config) bool {
				return reflect.DeepEqual(c.SNMP.Views, []config.View{{Name: "tcp", Included: []string{"1.3.6.1.2.1.6"}}}) &&
					reflect.DeepEqual(c.SNMP.Users, []config.User{{Name: "m", AuthProtocol: "sha256", AuthPassword: "12345678", View: "tcp"}})
			}},
		{"empty list", "snmp:\n  listen: []\n", map[string]string{"TCPTAP_SNMP_LISTEN": ""}, []string{"--snmp.listen="},
			func(c config.Config) bool { return len(c.SNMP.Listen) == 0 }},
		{"nested key", "output:\n  file:\n    path: /var/log/tcptap/records.json\n", map[string]string{"TCPTAP_OUTPUT_FILE_PATH": "/var/log/tcptap/records.json"}, []string{"--output.file.path", "/var/log/tcptap/records.json"},
			func(c config.Config) bool { return c.Output.File.Path == "/var/log/tcptap/records.json" }},
		{"nested duration", "output:\n  file:\n    max_age: 1h\n", map[string]string{"TCPTAP_OUTPUT_FILE_MAX_AGE": "1h"}, []string{"--output.file.max-age", "1h"},
			func(c config.Config) bool { return c.Output.File.MaxAge == time.Hour }},
		{"nats and sensor", "sensor:\n  name: s7\noutput:\n  nats:\n    url: nats://10.0.0.1:4222\n", map[string]string{"TCPTAP_SENSOR_NAME": "s7", "TCPTAP_OUTPUT_NATS_URL": "nats://10.0.0.1:4222"}, []string{"--sensor.name", "s7", "--output.nats.url", "nats://10.0.0.1:4222"},
			func(c config.Config) bool {
				return c.Sensor.Name == "s7" && c.Output.NATS.URL == "nats://10.0.0.1:4222"
			}},
		{"dashes in flag", "control:\n  socket: /tmp/t.sock\n", map[string]string{"TCPTAP_CONTROL_SOCKET": "/tmp/t.sock"}, []string{"--control.socket", "/tmp/t.sock"},
			func(c config.Config) bool { return c.Control.Socket == "/tmp/t.sock" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				src string
				run cfgRun
			}{
				{"file", cfgRun{file: cfgStr(tt.file)}},
				{"env", cfgRun{env: tt.env}},
				{"flags", cfgRun{args: tt.flags}},
			} {
				cfg, _, err := loadConfigWith(t, r.run)
				if err != nil {
					t.Errorf("%s: %v", r.src, err)
					continue
				}
				if !tt.check(cfg) {
					t.Errorf("%s: value not taken: %+v", r.src, cfg)
				}
				if tt.check(config.Default()) {
					t.Fatalf("the default already passes the check")
				}
			}
		})
	}
	// --trace.cache-mode is --trace.cache_mode.
	cfg, _, err := loadConfigWith(t, cfgRun{args: []string{"--trace.cache-mode", "all", "--trace.max-packet-number=7"}})
	if err != nil || cfg.Trace.CacheMode != "all" || cfg.Trace.MaxPacketNumber != 7 {
		t.Errorf("dashed flags: %v %+v", err, cfg.Trace)
	}
}

// flag > environment > file > default, key by key.
func TestConfigPrecedence(t *testing.T) {
	file := `trace:
  cache_mode: all
  max_packet_number: 10
  memory_quota: 10MiB
`
	env := map[string]string{
		"TCPTAP_TRACE_MAX_PACKET_NUMBER": "20",
		"TCPTAP_TRACE_MEMORY_QUOTA":      "20MiB",
	}
	flags := []string{"--trace.memory_quota", "30MiB"}
	cfg, v, err := loadConfigWith(t, cfgRun{file: &file, env: env, args: flags})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.Trace.CacheMode, cfg.Trace.MaxPacketNumber, cfg.Trace.MemoryQuota, cfg.Trace.IdleTimeout}
	want := []any{"all", 20, "30MiB", 5 * time.Minute}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("file only, file+env, file+env+flag, none = %v, want %v", got, want)
	}
	if v.ConfigFileUsed() != defaultConfigFile || persistPath(v) != defaultConfigFile {
		t.Errorf("ConfigFileUsed %q, persistPath %q; want %q", v.ConfigFileUsed(), persistPath(v), defaultConfigFile)
	}
	// Without the flag, the environment wins; without it, the file.
	cfg, _, _ = loadConfigWith(t, cfgRun{file: &file, env: env})
	if cfg.Trace.MemoryQuota != "20MiB" {
		t.Errorf("env over file: %q", cfg.Trace.MemoryQuota)
	}
	cfg, _, _ = loadConfigWith(t, cfgRun{file: &file})
	if cfg.Trace.MemoryQuota != "10MiB" {
		t.Errorf("file over default: %q", cfg.Trace.MemoryQuota)
	}
	// A flag given with the default value still wins.
	cfg, _, _ = loadConfigWith(t, cfgRun{file: &file, env: env, args: []string{"--trace.max_packet_number", "500"}})
	if cfg.Trace.MaxPacketNumber != 500 {
		t.Errorf("flag with the default value over env: %d", cfg.Trace.MaxPacketNumber)
	}
	// A list flag replaces the file's list; it does not append to it.
	listFile := "capture:\n  interfaces: [eth1, eth2]\n"
	cfg, _, _ = loadConfigWith(t, cfgRun{file: &listFile, args: []string{"-i", "eth3"}})
	if !reflect.DeepEqual(cfg.Capture.Interfaces, []string{"eth3"}) {
		t.Errorf("flag list over file list: %v", cfg.Capture.Interfaces)
	}
}

// An invalid value is refused naming the key and its source, from each
// source, whether it does not decode or does not validate.
func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		want  string // the problem, before " (from SOURCE)"
	}{
		{"cache mode", "trace:\n  cache_mode: some\n", map[string]string{"TCPTAP_TRACE_CACHE_MODE": "some"}, []string{"--trace.cache_mode", "some"},
			`trace.cache_mode: "some": want abnormal-close or all`},
		{"memory quota", "trace:\n  memory_quota: lots\n", map[string]string{"TCPTAP_TRACE_MEMORY_QUOTA": "lots"}, []string{"--trace.memory_quota", "lots"},
			`trace.memory_quota: "lots": want a size such as 100MiB, 64MB or 1048576`},
		{"filter", "trace:\n  filter: [permit nothing]\n", map[string]string{"TCPTAP_TRACE_FILTER": "permit nothing"}, []string{"--trace.filter", "permit nothing"},
			`trace.filter: rule 1 "permit nothing": `},
		{"interface", "capture:\n  interfaces: [eth1, eth1]\n", map[string]string{"TCPTAP_CAPTURE_INTERFACES": "eth1,eth1"}, []string{"-i", "eth1", "-i", "eth1"},
			`capture.interfaces[1]: "eth1": given twice`},
		{"community access", "snmp:\n  communities:\n    - name: c\n      access: write\n", map[string]string{"TCPTAP_SNMP_COMMUNITIES": "name=c access=write"}, []string{"--snmp.communities", "name=c access=write"},
			`snmp.communities[0].access: "write": want ro or rw`},
		{"socket", "control:\n  socket: rel.sock\n", map[string]string{"TCPTAP_CONTROL_SOCKET": "rel.sock"}, []string{"--control.socket", "rel.sock"},
			`control.socket: "rel.sock": want an absolute path`},
		{"syslog address", "output:\n  syslog:\n    address: udp:host\n", map[string]string{"TCPTAP_OUTPUT_SYSLOG_ADDRESS": "udp:host"}, []string{"--output.syslog.address", "udp:host"},
			`output.syslog.address: "udp:host": want udp://HOST:PORT`},
		{"syslog facility", "output:\n  syslog:\n    facility: local9\n", map[string]string{"TCPTAP_OUTPUT_SYSLOG_FACILITY": "local9"}, []string{"--output.syslog.facility", "local9"},
			`output.syslog.facility: "local9": want kern, user`},
		{"output records", "output:\n  records: some\n", map[string]string{"TCPTAP_OUTPUT_RECORDS": "some"}, []string{"--output.records", "some"},
			`output.records: "some": want all or abnormal`},
		{"file path", "output:\n  file:\n    path: rel.json\n", map[string]string{"TCPTAP_OUTPUT_FILE_PATH": "rel.json"}, []string{"--output.file.path", "rel.json"},
			`output.file.path: "rel.json": want an absolute path`},
		{"seed", "sensor:\n  community_id_seed: 70000\n", map[string]string{"TCPTAP_SENSOR_COMMUNITY_ID_SEED": "70000"}, []string{"--sensor.community_id_seed", "70000"},
			`sensor.community_id_seed: 70000: want 0 to 65535`},
		{"nats url", "output:\n  nats:\n    url: http://x:4222\n", map[string]string{"TCPTAP_OUTPUT_NATS_URL": "http://x:4222"}, []string{"--output.nats.url", "http://x:4222"},
			`output.nats.url: "http://x:4222": want nats://HOST:PORT or tls://HOST:PORT`},
		// Values that do not decode: the file and the environment only,
		// a typed flag refuses them itself.
		{"not a number", "trace:\n  max_packet_number: many\n", map[string]string{"TCPTAP_TRACE_MAX_PACKET_NUMBER": "many"}, nil,
			`trace.max_packet_number: "many": want a whole number`},
		{"not a duration", "trace:\n  idle_timeout: soon\n", map[string]string{"TCPTAP_TRACE_IDLE_TIMEOUT": "soon"}, nil,
			`trace.idle_timeout: "soon": want a duration such as 30s, 5m or 1h`},
		{"not a bool", "trace:\n  enable: yes\n", map[string]string{"TCPTAP_TRACE_ENABLE": "yes"}, nil,
			`trace.enable: "yes": want true or false`},
		{"negative uint32", "trace:\n  pt_min_probes: -1\n", map[string]string{"TCPTAP_TRACE_PT_MIN_PROBES": "-1"}, nil,
			`want a whole number from 0 to 4294967295`},
		{"port label", "exporter:\n  port_labels: [80, http]\n", map[string]string{"TCPTAP_EXPORTER_PORT_LABELS": "80,http"}, nil,
			`exporter.port_labels[1]: "http": want a whole number`},
		{"user text", "snmp:\n  users: [name=u pasword=x]\n", map[string]string{"TCPTAP_SNMP_USERS": "name=u pasword=x"}, []string{"--snmp.users", "name=u pasword=x"},
			`snmp.users[0]: unknown key "pasword"; want name, auth_protocol, auth_password, priv_protocol, priv_password, access or view`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := []struct {
				src string
				run cfgRun
			}{
				{"file", cfgRun{file: cfgStr(tt.file)}},
				{"TCPTAP_", cfgRun{env: tt.env}},
			}
			if tt.flags != nil {
				runs = append(runs, struct {
					src string
					run cfgRun
				}{"--", cfgRun{args: tt.flags}})
			}
			for _, r := range runs {
				_, _, err := loadConfigWith(t, r.run)
				if err == nil {
					t.Errorf("%+v: no error", r.run)
					continue
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, "invalid configuration:\n  ") || !strings.Contains(msg, tt.want) {
					t.Errorf("%+v:\n%s\nwant %q", r.run, msg, tt.want)
				}
				kes := config.KeyErrors(err)
				if len(kes) != 1 {
					t.Errorf("%d problems, want 1: %v", len(kes), err)
					continue
				}
				src := r.src
				if src == "file" {
					src = "(from " + defaultConfigFile + ")"
				} else {
					src = "(from " + src
				}
				if !strings.Contains(kes[0].Error(), src) {
					t.Errorf("%q does not name its source %q", kes[0].Error(), src)
				}
			}
		})
	}
}

// Numbers and strings are not silently converted into something else.
func TestConfigStrictTypes(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"trace:\n  idle_timeout: 300\n", `trace.idle_timeout: 300: want a duration with a unit, such as 300s or 300m`},
		{"trace:\n  max_packet_number: 2.5\n", `trace.max_packet_number: 2.5: want a whole number`},
		{"trace:\n  rt_min_retransmissions: 5000000000\n", `trace.rt_min_retransmissions: 5000000000: want a whole number from 0 to 4294967295`},
		{"exporter:\n  listen: true\n", `exporter.listen: true: want a string`},
		{"capture:\n  interfaces: {eth1: yes}\n", `capture.interfaces: map[string]interface {}: want a list`},
		{"snmp:\n  communities: [[a]]\n", `snmp.communities[0]: want a mapping of keys (line 2)`},
		{"snmp:\n  views:\n    - name: v\n      included: [1.3.6]\n      exclude: [1.3.6.1]\n", `snmp.views[0].exclude: unknown key (line 5); did you mean snmp.views[0].excluded?`},
	} {
		_, _, err := loadConfigWith(t, cfgRun{file: &tt.file})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v\nwant %q", tt.file, err, tt.want)
		}
		if n := len(config.KeyErrors(err)); n != 1 {
			t.Errorf("%q: %d problems, want 1: %v", tt.file, n, err)
		}
	}
	// A size may be a bare number of bytes in the file.
	file := "trace:\n  memory_quota: 1048576\n"
	cfg, _, err := loadConfigWith(t, cfgRun{file: &file})
	if err != nil || cfg.Trace.MemoryQuota != "1048576" {
		t.Errorf("memory_quota: 1048576: %v %q", err, cfg.Trace.MemoryQuota)
	}
}

func TestConfigUnknownKeys(t *testing.T) {
	file := "trace:\n  cache_mod: all\nexporter:\n  listen: \":9100\"\n  scrape: true\nsmnp:\n  listen: []\n"
	_, _, err := loadConfigWith(t, cfgRun{file: &file})
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, want := range []string{
		"trace.cache_mod: unknown key (line 2); did you mean trace.cache_mode? (from " + defaultConfigFile + ")",
		"exporter.scrape: unknown key (line 5)",
		"smnp: unknown key (line 6); did you mean snmp?",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nwant %q", err, want)
		}
	}
	if n := len(config.KeyErrors(err)); n != 3 {
		t.Errorf("%d problems, want 3: %v", n, err)
	}
}

// Every problem of every source at once.
func TestConfigAllProblems(t *testing.T) {
	file := "trace:\n  cache_mode: some\n  max_packet_number: x\n"
	_, _, err := loadConfigWith(t, cfgRun{
		file: &file,
		env:  map[string]string{"TCPTAP_CAPTURE_WORKERS": "-3"},
		args: []string{"--control.socket", "x"},
	})
	var keys []string
	for _, ke := range config.KeyErrors(err) {
		keys = append(keys, ke.Key)
	}
	want := []string{"trace.max_packet_number", "capture.workers", "trace.cache_mode", "control.socket"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v:\n%v", keys, want, err)
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	named := filepath.Join(dir, "other.conf") // not .yaml: still YAML
	if err := os.WriteFile(named, []byte("trace:\n  enable: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := "trace:\n  cache_mode: all\n"
	// --config replaces the default file.
	cfg, v, err := loadConfigWith(t, cfgRun{file: &file, args: []string{"--config", named}})
	if err != nil || !cfg.Trace.Enable || cfg.Trace.CacheMode != "abnormal-close" {
		t.Errorf("--config: %v %+v", err, cfg.Trace)
	}
	if v.ConfigFileUsed() != named || persistPath(v) != named {
		t.Errorf("ConfigFileUsed %q, persistPath %q; want %q", v.ConfigFileUsed(), persistPath(v), named)
	}
	// So does TCPTAP_CONFIG.
	cfg, _, err = loadConfigWith(t, cfgRun{file: &file, env: map[string]string{"TCPTAP_CONFIG": named}})
	if err != nil || !cfg.Trace.Enable {
		t.Errorf("TCPTAP_CONFIG: %v %+v", err, cfg.Trace)
	}
	// A named file must exist; the default one need not.
	_, _, err = loadConfigWith(t, cfgRun{args: []string{"--config", filepath.Join(dir, "missing.yaml")}})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing --config: %v", err)
	}
	bad := "trace: [\n"
	_, _, err = loadConfigWith(t, cfgRun{file: &bad})
	if err == nil || !strings.Contains(err.Error(), "configuration file") {
		t.Errorf("bad YAML: %v", err)
	}
	// The shipped example loads to the defaults.
	cfg, _, err = loadConfigWith(t, cfgRun{args: []string{"--config", "../../deploy/tcptap.example.yaml"}})
	if err != nil || !reflect.DeepEqual(cfg, config.Default()) {
		t.Errorf("example: %v\n%+v", err, cfg)
	}
}

// trace persist writes where loadConfig read, and the next start reads
// back what was persisted.
func TestConfigPersistRoundTrip(t *testing.T) {
	file := "# sensor\ncapture:\n  interfaces: [eth1]\ntrace:\n  enable: false\n"
	cfg, v, err := loadConfigWith(t, cfgRun{file: &file})
	if err != nil {
		t.Fatal(err)
	}
	tr := cfg.Trace
	tr.Enable, tr.CacheMode, tr.Filter, tr.MemoryQuota = true, "all", []string{"permit dport 443"}, config.FormatSize(64<<20)
	if err := config.PersistTrace(persistPath(v), tr); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(persistPath(v))
	again, _, err := loadConfigWith(t, cfgRun{file: cfgStr(string(data))})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Trace, tr) || !reflect.DeepEqual(again.Capture.Interfaces, []string{"eth1"}) {
		t.Errorf("after persist: %+v\nwant %+v", again.Trace, tr)
	}
	if !strings.HasPrefix(string(data), "# sensor\n") {
		t.Errorf("comment lost:\n%s", data)
	}
}

// Every key is a flag named after it, with its help and default.
func TestConfigFlags(t *testing.T) {
	cmd := &cobra.Command{Use: "run"}
	bindConfig(cmd)
	def := config.Default()
	for _, k := range config.Keys() {
		f := cmd.Flags().Lookup(k.Name)
		if f == nil {
			t.Errorf("no flag --%s", k.Name)
			continue
		}
		if f.Usage != k.Help {
			t.Errorf("--%s usage %q, want %q", k.Name, f.Usage, k.Help)
		}
		switch d := k.Ptr(&def).(type) {
		case *string:
			if f.DefValue != *d {
				t.Errorf("--%s default %q, want %q", k.Name, f.DefValue, *d)
			}
		case *time.Duration:
			if f.DefValue != d.String() {
				t.Errorf("--%s default %q, want %q", k.Name, f.DefValue, d)
			}
		}
	}
	if f := cmd.Flags().ShorthandLookup("i"); f == nil || f.Name != "capture.interfaces" {
		t.Errorf("-i is %v, want --capture.interfaces", f)
	}
	if cmd.Flags().Lookup("config") == nil {
		t.Error("no --config")
	}
	for _, want := range []string{"TCPTAP_SECTION_KEY", "--section.key", config.DefaultFile, "deploy/tcptap.example.yaml"} {
		if !strings.Contains(configHelp, want) {
			t.Errorf("configHelp does not mention %s", want)
		}
	}
	usage := cmd.Flags().FlagUsages()
	if !strings.Contains(usage, "--trace.cache_mode string") || !strings.Contains(usage, `(default "abnormal-close")`) {
		t.Errorf("usage:\n%s", usage)
	}
}
