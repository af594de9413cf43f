package config

import (
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
)

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	err := c.Capture.RequireInterfaces()
	if err == nil || !strings.HasPrefix(err.Error(), "capture.interfaces: ") {
		t.Errorf("RequireInterfaces without interfaces = %v, want a capture.interfaces error", err)
	}
	c.Capture.Interfaces = []string{"eth1"}
	if err := c.Capture.RequireInterfaces(); err != nil {
		t.Errorf("RequireInterfaces(eth1) = %v", err)
	}
}

// The defaults are the packages' own, so the daemon and 'tcptap read'
// agree.
func TestDefaultsMatchPackages(t *testing.T) {
	tr := Default().Trace
	cls, err := tr.ClassifierConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cls, classifier.DefaultConfig()) {
		t.Errorf("ClassifierConfig() = %+v, want classifier.DefaultConfig() %+v", cls, classifier.DefaultConfig())
	}
	if got := tr.TableConfig(); !reflect.DeepEqual(got, reassembly.DefaultConfig()) {
		t.Errorf("TableConfig() = %+v, want %+v", got, reassembly.DefaultConfig())
	}
	tr0 := tr
	tr0.CloseLinger = 0
	if got := tr0.TableConfig().CloseLinger; got >= 0 {
		t.Errorf("close_linger 0 gives the table %v, want negative (none; the table reads 0 as its default)", got)
	}
	tc, err := tr.TraceConfig()
	if err != nil {
		t.Fatal(err)
	}
	if tc.Enabled || tc.MaxPacketNumber != 500 || len(tc.Filter) != 0 || tc.OnlyNewConnection {
		t.Errorf("TraceConfig() = %+v, want disabled, 500 packets, no filter", tc)
	}
	q, err := tr.QuotaBytes()
	if err != nil || q != flightrec.DefaultMemoryQuota {
		t.Errorf("QuotaBytes() = %d, %v; want %d", q, err, flightrec.DefaultMemoryQuota)
	}
	if m, err := tr.Mode(); err != nil || m != cache.AbnormalClose {
		t.Errorf("Mode() = %v, %v; want abnormal-close", m, err)
	}
	c := Default()
	if c.Exporter.Listen != ":9911" || !reflect.DeepEqual(c.SNMP.Listen, []string{"127.0.0.1:161"}) ||
		c.Control.Socket != "/run/tcptap/control.sock" || !c.Capture.Promiscuous || c.Capture.Workers != 0 {
		t.Errorf("Default() = %+v", c)
	}
	ring, _ := c.Capture.RingBytes()
	block, _ := c.Capture.BlockBytes()
	if ring != 64<<20 || block != 1<<20 {
		t.Errorf("ring %d, block %d", ring, block)
	}
}

func TestDerived(t *testing.T) {
	tr := Default().Trace
	tr.Enable, tr.OnlyNewConnection, tr.MaxPacketNumber = true, true, 64
	tr.Filter = []string{"permit destination-port 80", "deny any"}
	tr.LocalNets = []string{"10.1.2.3/8", "fd00::/8"}
	tc, err := tr.TraceConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !tc.Enabled || !tc.OnlyNewConnection || tc.MaxPacketNumber != 64 || len(tc.Filter) != 2 || !tc.Filter[0].Permit {
		t.Errorf("TraceConfig() = %+v", tc)
	}
	cls, err := tr.ClassifierConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	if !reflect.DeepEqual(cls.LocalNets, want) {
		t.Errorf("LocalNets = %v, want %v (masked)", cls.LocalNets, want)
	}

	tr.Filter = []string{"permit dport 80", "permit bogus"}
	if _, err := tr.TraceConfig(); err == nil || !strings.HasPrefix(err.Error(), `trace.filter: rule 2 "permit bogus"`) {
		t.Errorf("TraceConfig(bad filter) = %v", err)
	}
	tr.LocalNets = []string{"10.0.0.0/33"}
	if _, err := tr.ClassifierConfig(); err == nil || !strings.HasPrefix(err.Error(), `trace.local_nets[0]: "10.0.0.0/33"`) {
		t.Errorf("ClassifierConfig(bad net) = %v", err)
	}
	tr.MemoryQuota = "0"
	if _, err := tr.QuotaBytes(); err == nil || !strings.HasPrefix(err.Error(), "trace.memory_quota: ") {
		t.Errorf("QuotaBytes(0) = %v", err)
	}
}

func TestValidateNamesKey(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // the whole message, or its start when it ends with "…"
	}{
		{"cache mode", func(c *Config) { c.Trace.CacheMode = "some" }, `trace.cache_mode: "some": want abnormal-close or all`},
		{"interface empty", func(c *Config) { c.Capture.Interfaces = []string{"eth0", ""} }, `capture.interfaces[1]: empty interface name`},
		{"interface long", func(c *Config) { c.Capture.Interfaces = []string{"abcdefghijklmnop"} }, `capture.interfaces[0]: "abcdefghijklmnop": longer than 15 bytes…`},
		{"interface twice", func(c *Config) { c.Capture.Interfaces = []string{"eth0", "eth0"} }, `capture.interfaces[1]: "eth0": given twice`},
		{"workers", func(c *Config) { c.Capture.Workers = -1 }, `capture.workers: -1: want 0 (one per CPU) to 1024`},
		{"snaplen", func(c *Config) { c.Capture.Snaplen = 64 }, `capture.snaplen: 64: want 128 to 262144 bytes`},
		{"ring size", func(c *Config) { c.Capture.RingSize = "lots" }, `capture.ring_size: "lots": want a size such as 100MiB, 64MB or 1048576`},
		{"ring multiple", func(c *Config) { c.Capture.RingSize = "1536KiB" }, `capture.ring_size: "1536KiB": want a multiple of capture.block_size (1MiB)`},
		{"ring small", func(c *Config) { c.Capture.RingSize = "512KiB" }, `capture.ring_size: "512KiB": smaller than capture.block_size (1MiB)`},
		{"block pow2", func(c *Config) { c.Capture.BlockSize = "3MiB"; c.Capture.RingSize = "30MiB" }, `capture.block_size: "3MiB": want a power of two…`},
		{"snaplen block", func(c *Config) { c.Capture.Snaplen = 65536; c.Capture.BlockSize = "64KiB" }, `capture.snaplen: 65536: larger than half of capture.block_size (64KiB)…`},
		{"fanout", func(c *Config) { c.Capture.FanoutGroup = 70000 }, `capture.fanout_group: 70000: want 0 (derived from the process ID) or a group id 1 to 65535 (one id per interface, counting up)`},
		{"fanout per interface", func(c *Config) { c.Capture.FanoutGroup = 65535; c.Capture.Interfaces = []string{"eth1", "eth2"} }, `capture.fanout_group: 65535: want 0 (derived from the process ID) or a group id 1 to 65534…`},
		{"local nets", func(c *Config) { c.Trace.LocalNets = []string{"10.0.0.1"} }, `trace.local_nets[0]: "10.0.0.1": want a CIDR prefix such as 10.0.0.0/8 or fd00::/8`},
		{"filter", func(c *Config) { c.Trace.Filter = []string{"allow all"} }, `trace.filter: rule 1 "allow all": unexpected "allow" at the start; want permit or deny`},
		{"max packet number", func(c *Config) { c.Trace.MaxPacketNumber = 0 }, `trace.max_packet_number: 0: want 1 to 1048576`},
		{"memory quota", func(c *Config) { c.Trace.MemoryQuota = "12XB" }, `trace.memory_quota: "12XB": want a size such as 100MiB, 64MB or 1048576`},
		{"idle timeout", func(c *Config) { c.Trace.IdleTimeout = 0 }, `trace.idle_timeout: 0s: want a positive duration such as 5m`},
		{"close linger", func(c *Config) { c.Trace.CloseLinger = -time.Second }, `trace.close_linger: -1s: want zero or a positive duration such as 5s`},
		{"max connections", func(c *Config) { c.Trace.MaxConnections = 0 }, `trace.max_connections: 0: want at least 1`},
		{"rt", func(c *Config) { c.Trace.RTMinRetransmissions = 0 }, `trace.rt_min_retransmissions: 0: want at least 1`},
		{"pt", func(c *Config) { c.Trace.PTMinProbes = 0 }, `trace.pt_min_probes: 0: want at least 1`},
		{"kt", func(c *Config) { c.Trace.KTMinProbes = 0 }, `trace.kt_min_probes: 0: want at least 1`},
		{"silence factor", func(c *Config) { c.Trace.SilenceFactor = 0.5 }, `trace.silence_factor: 0.5: want a number of at least 1`},
		{"silence factor NaN", func(c *Config) { c.Trace.SilenceFactor = math.NaN() }, `trace.silence_factor: NaN: want a number of at least 1`},
		{"min silence", func(c *Config) { c.Trace.MinSilence = -1 }, `trace.min_silence: -1ns: want zero or a positive duration`},
		{"syn silence", func(c *Config) { c.Trace.SYNSilence = -time.Minute }, `trace.syn_silence: -1m: want zero or a positive duration`},
		{"exporter listen", func(c *Config) { c.Exporter.Listen = "9911" }, `exporter.listen: "9911": want host:port such as :9911, 127.0.0.1:9911 or [::1]:9911`},
		{"exporter port", func(c *Config) { c.Exporter.Listen = ":http" }, `exporter.listen: ":http": port "http": want 1 to 65535`},
		{"port label", func(c *Config) { c.Exporter.PortLabels = []int{80, 0} }, `exporter.port_labels[1]: 0: want a port 1 to 65535`},
		{"port label twice", func(c *Config) { c.Exporter.PortLabels = []int{80, 80} }, `exporter.port_labels[1]: 80: given twice`},
		{"port labels 33", func(c *Config) {
			for p := 1; p <= 33; p++ {
				c.Exporter.PortLabels = append(c.Exporter.PortLabels, p)
			}
		}, `exporter.port_labels: 33 ports: want at most 32 (each is a label value on every per-port metric)`},
		{"exporter api", func(c *Config) { c.Exporter.API = "public" }, `exporter.api: "public": want loopback, all or none`},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, `log.level: "verbose": want debug, info, warn or error`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, `log.format: "xml": want text or json`},
		{"web config", func(c *Config) { c.Exporter.WebConfigFile = "/nonexistent/web.yml" }, `exporter.web_config_file: stat /nonexistent/web.yml: no such file or directory`},
		{"snmp listen", func(c *Config) { c.SNMP.Listen = []string{"localhost"} }, `snmp.listen[0]: "localhost": want host:port…`},
		{"community access", func(c *Config) { c.SNMP.Communities = []Community{{Name: "x", Access: "write"}} }, `snmp.communities[0].access: "write": want ro or rw`},
		{"community view", func(c *Config) { c.SNMP.Communities = []Community{{Name: "x", View: "tcp"}} }, `snmp.communities[0].view: "tcp": no such view in snmp.views`},
		{"community source", func(c *Config) { c.SNMP.Communities = []Community{{Name: "x", Sources: []string{"lan"}}} }, `snmp.communities[0].sources[0]: "lan": want an address or a CIDR prefix such as 10.0.0.0/8`},
		{"community name", func(c *Config) { c.SNMP.Communities = []Community{{Access: "ro"}} }, `snmp.communities[0].name: empty: every community needs a name`},
		{"user auth", func(c *Config) { c.SNMP.Users = []User{{Name: "u", AuthProtocol: "sha1", AuthPassword: "12345678"}} }, `snmp.users[0].auth_protocol: "sha1": want none, md5, sha, sha224, sha256, sha384 or sha512`},
		{"user password", func(c *Config) { c.SNMP.Users = []User{{Name: "u", AuthProtocol: "sha", AuthPassword: "short"}} }, `snmp.users[0].auth_password: want at least 8 characters`},
		{"user priv without auth", func(c *Config) { c.SNMP.Users = []User{{Name: "u", PrivProtocol: "aes", PrivPassword: "12345678"}} }, `snmp.users[0].priv_protocol: "aes" without auth_protocol: privacy needs authentication`},
		{"view oid", func(c *Config) { c.SNMP.Views = []View{{Name: "v", Included: []string{"iso.3.6"}}} }, `snmp.views[0].included[0]: "iso.3.6": want a numeric OID such as 1.3.6.1.2.1`},
		{"view empty", func(c *Config) { c.SNMP.Views = []View{{Name: "v"}} }, `snmp.views[0].included: empty…`},
		{"trap target", func(c *Config) { c.SNMP.TrapTargets = []string{"192.0.2.1:99999"} }, `snmp.trap_targets[0]: "192.0.2.1:99999": port "99999": want 1 to 65535`},
		{"state dir", func(c *Config) { c.SNMP.StateDir = "state" }, `snmp.state_dir: "state": want an absolute directory path such as /var/lib/tcptap`},
		{"engine id hex", func(c *Config) { c.SNMP.EngineID = "80zz" }, `snmp.engine_id: "80zz": want hexadecimal digits such as 8000fb8f05a1b2c3d4e5f60708`},
		{"engine id length", func(c *Config) { c.SNMP.EngineID = "8000" }, `snmp.engine_id: "8000": 2 bytes, want 5 to 32`},
		{"engine id zeros", func(c *Config) { c.SNMP.EngineID = "0000000000" }, `snmp.engine_id: "0000000000": all zeros or all ff: not a valid engine ID`},
		{"notification rate", func(c *Config) { c.SNMP.NotificationRate = 0 }, `snmp.notification_rate: 0: want a number above 0, at most 100000`},
		{"notification rate NaN", func(c *Config) { c.SNMP.NotificationRate = math.NaN() }, `snmp.notification_rate: NaN: want a number above 0, at most 100000`},
		{"notification burst", func(c *Config) { c.SNMP.NotificationBurst = 0 }, `snmp.notification_burst: 0: want 1 to 100000`},
		{"control socket", func(c *Config) { c.Control.Socket = "tcptap.sock" }, `control.socket: "tcptap.sock": want an absolute path`},
		{"control socket long", func(c *Config) { c.Control.Socket = "/" + strings.Repeat("x", 120) }, `control.socket: "/xxx…`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			kes := KeyErrors(err)
			if len(kes) != 1 {
				t.Fatalf("Validate() = %v; want exactly one problem", err)
			}
			got := kes[0].Error()
			if prefix, ok := strings.CutSuffix(tt.want, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("Validate() = %s\nwant prefix  %s", got, prefix)
				}
			} else if got != tt.want {
				t.Errorf("Validate() = %s\nwant         %s", got, tt.want)
			}
			if key := strings.SplitN(got, ":", 2)[0]; !strings.HasPrefix(key, kes[0].Key) {
				t.Errorf("message %q does not start with the key %q", got, kes[0].Key)
			}
		})
	}
}

// Validate reports every problem at once, not just the first.
func TestValidateCollectsAll(t *testing.T) {
	c := Default()
	c.Trace.CacheMode = "x"
	c.Trace.MaxPacketNumber = -1
	c.Capture.Workers = -1
	c.Control.Socket = ""
	c.SNMP.Users = []User{{Name: "u", Access: "admin"}}
	err := c.Validate()
	var keys []string
	for _, ke := range KeyErrors(err) {
		keys = append(keys, ke.Key)
	}
	want := []string{"capture.workers", "trace.max_packet_number", "trace.cache_mode", "snmp.users[0].access", "control.socket"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %v, want %v\n%v", keys, want, err)
	}
	if n := strings.Count(err.Error(), "\n"); n != len(want)-1 {
		t.Errorf("message has %d lines, want %d:\n%v", n+1, len(want), err)
	}
}

// A valid SNMP configuration with every kind of entry.
func TestValidateSNMP(t *testing.T) {
	c := Default()
	c.SNMP.Views = []View{{Name: "tcp", Included: []string{"1.3.6.1.2.1.6", ".1.3.6.1.2.1.1"}, Excluded: []string{"1.3.6.1.2.1.6.13"}}}
	c.SNMP.Communities = []Community{{Name: "ro-community", Access: "ro", View: "tcp", Sources: []string{"192.0.2.0/24", "2001:db8::1"}}, {Name: "rw-community", Access: "rw"}}
	c.SNMP.Users = []User{
		{Name: "monitor", AuthProtocol: "sha256", AuthPassword: "12345678", PrivProtocol: "aes", PrivPassword: "abcdefgh", Access: "ro", View: "tcp"},
		{Name: "noauth"},
	}
	c.SNMP.TrapTargets = []string{"192.0.2.9", "nms.example.net:10162", "[2001:db8::9]:162", "2001:db8::9"}
	c.SNMP.Listen = []string{"[::1]:1161", ":161"}
	c.SNMP.EngineID = "0x8000FB8F05a1b2c3d4e5f60708"
	c.SNMP.AuthenticationTraps = true
	c.SNMP.NotificationRate, c.SNMP.NotificationBurst = 0.5, 1
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	// Community names are secrets: a duplicate is reported without it.
	c.SNMP.Communities = append(c.SNMP.Communities, Community{Name: "ro-community"})
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "ro-community") {
		t.Errorf("duplicate community: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"100MiB", 100 << 20}, {"64MB", 64e6}, {"1048576", 1 << 20}, {"1.5GiB", 3 << 29},
		{"2k", 2048}, {" 10 KiB ", 10240}, {"0", 0}, {"7B", 7}, {"1gb", 1e9},
	} {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "lots", "-5MiB", "12XB", "NaN", "Inf", "1e300", "MiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 1024, 100 << 20, 1 << 30, 3 << 29, 64e6, 123456789} {
		s := FormatSize(n)
		back, err := ParseSize(s)
		if err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, s, back, err)
		}
	}
	if s := FormatSize(100 << 20); s != "100MiB" {
		t.Errorf("FormatSize(100MiB) = %q", s)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m", 5 * time.Second: "5s",
		90 * time.Second: "1m30s", 1500 * time.Millisecond: "1.5s", 0: "0s", 100 * time.Millisecond: "100ms",
		time.Hour + time.Second: "1h0m1s", 10 * time.Minute: "10m",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, %v", FormatDuration(d), back, err)
		}
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Every field: snake_case, the same name for mapstructure and yaml, and
// documented; every documentation entry belongs to a key.
func TestKeysAndTags(t *testing.T) {
	var walk func(t reflect.Type)
	seenTypes := map[reflect.Type]bool{}
	walk = func(rt reflect.Type) {
		if seenTypes[rt] {
			return
		}
		seenTypes[rt] = true
		for i := range rt.NumField() {
			f := rt.Field(i)
			y, m := yamlName(f), f.Tag.Get("mapstructure")
			if y != m || !snakeCase.MatchString(y) {
				t.Errorf("%s.%s: yaml %q, mapstructure %q; want the same snake_case name", rt.Name(), f.Name, y, m)
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
				walk(ft)
			}
		}
	}
	walk(reflect.TypeFor[Config]())

	names := map[string]bool{}
	for _, k := range Keys() {
		names[k.Name] = true
		if k.Help == "" || strings.HasSuffix(k.Help, ".") || strings.Contains(k.Help, "\n") {
			t.Errorf("%s: help %q: want one line without a final period", k.Name, k.Help)
		}
		if k.EnvName() != "TCPTAP_"+strings.ToUpper(strings.ReplaceAll(k.Name, ".", "_")) {
			t.Errorf("%s: EnvName %s", k.Name, k.EnvName())
		}
		if _, ok := sectionDocs[k.Section()]; !ok {
			t.Errorf("section %s has no documentation", k.Section())
		}
	}
	for name := range keyDocs {
		if !names[name] {
			t.Errorf("keyDocs[%q] documents no key", name)
		}
	}
	// The conventions' list (docs/trace.md).
	for _, name := range []string{
		"capture.interfaces", "capture.workers", "capture.snaplen", "capture.ring_size", "capture.promiscuous",
		"trace.enable", "trace.local_nets", "trace.filter", "trace.only_new_connection", "trace.max_packet_number",
		"trace.memory_quota", "trace.cache_mode", "trace.idle_timeout",
		"exporter.listen", "exporter.port_labels",
		"snmp.listen", "snmp.communities", "snmp.users", "snmp.views", "snmp.trap_targets", "snmp.state_dir",
		"control.socket",
	} {
		if !names[name] {
			t.Errorf("conventional key %s missing", name)
		}
	}
	if k, ok := Lookup("trace.cache_mode"); !ok || k.Default() != "abnormal-close" {
		t.Errorf("Lookup(trace.cache_mode) = %+v, %v", k, ok)
	}
	c := Default()
	k, _ := Lookup("trace.idle_timeout")
	*k.Ptr(&c).(*time.Duration) = time.Minute
	if c.Trace.IdleTimeout != time.Minute {
		t.Errorf("Ptr does not point into the config")
	}
}

func TestUnmarshalText(t *testing.T) {
	var c Community
	if err := c.UnmarshalText([]byte("name=public access=ro view=tcp sources=10.0.0.0/8 sources=192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	want := Community{Name: "public", Access: "ro", View: "tcp", Sources: []string{"10.0.0.0/8", "192.0.2.1"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Community = %+v, want %+v", c, want)
	}
	var u User
	if err := u.UnmarshalText([]byte("name=monitor auth_protocol=sha256 auth_password=p@ss=word priv_protocol=aes priv_password=x access=rw view=all")); err != nil {
		t.Fatal(err)
	}
	if u.AuthPassword != "p@ss=word" || u.PrivProtocol != "aes" || u.Access != "rw" {
		t.Errorf("User = %+v", u)
	}
	var v View
	if err := v.UnmarshalText([]byte("name=tcp included=1.3.6.1.2.1.6 included=1.3.6.1.2.1.1 excluded=1.3.6.1.2.1.6.13")); err != nil {
		t.Fatal(err)
	}
	if len(v.Included) != 2 || len(v.Excluded) != 1 {
		t.Errorf("View = %+v", v)
	}
	for _, bad := range []string{"", "name=x nmae=y", "name=x name=y", "name=x secret words"} {
		var u User
		err := u.UnmarshalText([]byte(bad))
		if err == nil {
			t.Errorf("UnmarshalText(%q): no error", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("UnmarshalText(%q) = %v: echoes a value", bad, err)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	in := `capture:
  interfaces: [eth1]
  snap_len: 96
trace:
  cache_mod: all
  enable: true
tarce:
  enable: true
snmp:
  communities:
    - name: x
      acess: ro
    - name=y access=rw
exporter:
  snaplen: 1
Control:
  socket: /x
`
	err := CheckKeys([]byte(in))
	var got []string
	for _, ke := range KeyErrors(err) {
		got = append(got, ke.Error())
	}
	want := []string{
		"capture.snap_len: unknown key (line 3); did you mean capture.snaplen?",
		"trace.cache_mod: unknown key (line 5); did you mean trace.cache_mode?",
		"tarce: unknown key (line 7); did you mean trace?",
		"snmp.communities[0].acess: unknown key (line 12); did you mean snmp.communities[0].access?",
		"exporter.snaplen: unknown key (line 15); did you mean capture.snaplen?",
		"Control: unknown key (line 16); did you mean control?",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CheckKeys:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for in, want := range map[string]string{
		"trace: 5\n":                       "trace: want a mapping of keys (line 1)",
		"- a\n":                            "(top level): want a mapping of keys (line 1)",
		"snmp:\n  communities:\n    - 7\n": "snmp.communities[0]: want a mapping of keys (line 3)",
	} {
		if err := CheckKeys([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("CheckKeys(%q) = %v, want %s", in, err, want)
		}
	}
	for _, ok := range []string{"", "# only a comment\n", "~\n", "trace:\n  enable: true\n", "trace:\n", "snmp:\n  users: [name=x]\n"} {
		if err := CheckKeys([]byte(ok)); err != nil {
			t.Errorf("CheckKeys(%q) = %v", ok, err)
		}
	}
	if err := CheckKeys([]byte("trace: [")); err == nil {
		t.Error("CheckKeys(bad YAML): no error")
	}
}

func TestDecode(t *testing.T) {
	in := `trace:
  cache_mode: all
  idle_timeout: 90s
  filter:
    - permit dport 80
snmp:
  communities:
    - name: a
      sources: [10.0.0.0/8]
    - name=b access=rw
`
	c, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Trace.CacheMode, want.Trace.IdleTimeout, want.Trace.Filter = "all", 90*time.Second, []string{"permit dport 80"}
	want.SNMP.Communities = []Community{{Name: "a", Sources: []string{"10.0.0.0/8"}}, {Name: "b", Access: "rw"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Decode =\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	// A number is not a duration: 300 would be 300ns.
	if _, err := Decode([]byte("trace:\n  idle_timeout: 300\n")); err == nil {
		t.Error("Decode(idle_timeout: 300): no error")
	}
	if _, err := Decode([]byte("trace:\n  idle_timout: 5m\n")); err == nil || !errors.As(err, new(*KeyError)) {
		t.Errorf("Decode(unknown key) = %v", err)
	}
}

// The defaults are safe: the JSON API only on loopback; and every port
// label the configuration accepts is exported.
func TestSafeDefaultsAndLimits(t *testing.T) {
	d := Default()
	if d.Exporter.API != APILoopback {
		t.Errorf("exporter.api defaults to %q, want %q", d.Exporter.API, APILoopback)
	}
	if maxPortLabels != metrics.MaxServices {
		t.Errorf("exporter.port_labels accepts %d ports, the metrics export %d", maxPortLabels, metrics.MaxServices)
	}
	if lv, err := d.Log.SlogLevel(); err != nil || lv != slog.LevelInfo || d.Log.Format != "text" {
		t.Errorf("log defaults: %v %v %q", lv, err, d.Log.Format)
	}
}
