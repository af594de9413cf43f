// Package config is tcptap's configuration: the keys of docs/trace.md's conventions as plain
// structs, their documented defaults, validation that names the key at
// fault, the parsed forms the daemon needs, the commented example file, and
// 'tcptap trace persist' (rewriting the trace section of the YAML file).
//
// Keys are snake_case and grouped by section: capture.*, trace.*,
// exporter.*, snmp.*, control.*. The same key is a YAML path in the file
// (trace: {cache_mode: all}), an environment variable TCPTAP_SECTION_KEY
// (TCPTAP_TRACE_CACHE_MODE) and a flag --section.key of 'tcptap run'
// (--trace.cache_mode). The package knows nothing of viper: cmd/tcptap binds
// the sources and decodes each key with [Keys] and [Key.Ptr].
package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcptap/tcptap/acl"
	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
)

// DefaultFile is the configuration file 'tcptap run' reads when it exists
// and no --config is given, and where 'tcptap trace persist' writes then.
const DefaultFile = "/etc/tcptap/tcptap.yaml"

// EnvPrefix is the prefix of the environment variables: TCPTAP_TRACE_ENABLE.
const EnvPrefix = "TCPTAP"

// Config is the whole configuration.
type Config struct {
	Capture  Capture  `mapstructure:"capture" yaml:"capture"`
	Trace    Trace    `mapstructure:"trace" yaml:"trace"`
	Exporter Exporter `mapstructure:"exporter" yaml:"exporter"`
	SNMP     SNMP     `mapstructure:"snmp" yaml:"snmp"`
	Control  Control  `mapstructure:"control" yaml:"control"`
	Sensor   Sensor   `mapstructure:"sensor" yaml:"sensor"`
	Output   Output   `mapstructure:"output" yaml:"output"`
	Log      Log      `mapstructure:"log" yaml:"log"`
}

// Capture is live capture with AF_PACKET (tcptap run).
type Capture struct {
	// Interfaces are the capture interfaces (mirror/SPAN ports).
	Interfaces []string `mapstructure:"interfaces" yaml:"interfaces"`
	// Workers per interface, each with its own socket in the interface's
	// fanout group; 0: one per CPU.
	Workers int `mapstructure:"workers" yaml:"workers"`
	// Snaplen is how many bytes of each frame the kernel puts in the ring.
	Snaplen int `mapstructure:"snaplen" yaml:"snaplen"`
	// RingSize is the ring memory of each socket, a size ([ParseSize]).
	RingSize string `mapstructure:"ring_size" yaml:"ring_size"`
	// BlockSize is the TPACKET_V3 block size, a size ([ParseSize]).
	BlockSize string `mapstructure:"block_size" yaml:"block_size"`
	// Promiscuous puts the interfaces in promiscuous mode.
	Promiscuous bool `mapstructure:"promiscuous" yaml:"promiscuous"`
	// FanoutGroup is the PACKET_FANOUT group id of the first interface;
	// the next interfaces take the next ids (a group serves one
	// interface). 0: derived from the process ID.
	FanoutGroup int `mapstructure:"fanout_group" yaml:"fanout_group"`
	// UDPTunnels are the UDP tunnels decapsulated, "TYPE:PORT".
	UDPTunnels []string `mapstructure:"udp_tunnels" yaml:"udp_tunnels"`
	// Duplicates is the duplicates policy: "drop" or "keep".
	Duplicates string `mapstructure:"duplicates" yaml:"duplicates"`
}

// DecoderConfig returns the decoder settings of c.
func (c Capture) DecoderConfig() (capture.DecoderConfig, error) {
	ports, err := capture.ParseUDPTunnelPorts(c.UDPTunnels)
	if err != nil {
		return capture.DecoderConfig{}, err
	}
	dup, ok := capture.ParseDuplicatePolicy(c.Duplicates)
	if !ok {
		return capture.DecoderConfig{}, fmt.Errorf("%q: want drop or keep", c.Duplicates)
	}
	return capture.DecoderConfig{UDPTunnelPorts: ports, Duplicates: dup}, nil
}

// DefaultUDPTunnels are capture.DefaultUDPTunnelPorts as configured.
func DefaultUDPTunnels() []string {
	out := make([]string, len(capture.DefaultUDPTunnelPorts))
	for i, t := range capture.DefaultUDPTunnelPorts {
		out[i] = t.String()
	}
	return out
}

// Trace is the trace feature (docs/trace.md) and the connection analysis:
// the connection table's timers and the classifier's thresholds.
type Trace struct {
	Enable            bool     `mapstructure:"enable" yaml:"enable"`
	LocalNets         []string `mapstructure:"local_nets" yaml:"local_nets"`
	Filter            []string `mapstructure:"filter" yaml:"filter"`
	OnlyNewConnection bool     `mapstructure:"only_new_connection" yaml:"only_new_connection"`
	MaxPacketNumber   int      `mapstructure:"max_packet_number" yaml:"max_packet_number"`
	MemoryQuota       string   `mapstructure:"memory_quota" yaml:"memory_quota"`
	CacheMode         string   `mapstructure:"cache_mode" yaml:"cache_mode"`

	IdleTimeout    time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
	CloseLinger    time.Duration `mapstructure:"close_linger" yaml:"close_linger"`
	MaxConnections int           `mapstructure:"max_connections" yaml:"max_connections"`
	VLANPolicy     string        `mapstructure:"vlan_policy" yaml:"vlan_policy"`

	RTMinRetransmissions uint32        `mapstructure:"rt_min_retransmissions" yaml:"rt_min_retransmissions"`
	PTMinProbes          uint32        `mapstructure:"pt_min_probes" yaml:"pt_min_probes"`
	KTMinProbes          uint32        `mapstructure:"kt_min_probes" yaml:"kt_min_probes"`
	SilenceFactor        float64       `mapstructure:"silence_factor" yaml:"silence_factor"`
	MinSilence           time.Duration `mapstructure:"min_silence" yaml:"min_silence"`
	SYNSilence           time.Duration `mapstructure:"syn_silence" yaml:"syn_silence"`
}

// Exporter is the read-only HTTP endpoint (Prometheus metrics).
type Exporter struct {
	// Listen is host:port; empty: no HTTP listener.
	Listen string `mapstructure:"listen" yaml:"listen"`
	// PortLabels are the server ports that get their own label value.
	PortLabels []int `mapstructure:"port_labels" yaml:"port_labels"`
	// WebConfigFile is a Prometheus exporter-toolkit web configuration
	// (TLS, basic authentication); empty: plain HTTP.
	WebConfigFile string `mapstructure:"web_config_file" yaml:"web_config_file"`
	// API says to whom the JSON API (connections, packets, pcaps,
	// information) is served: APILoopback (requests that reach the
	// listener on a loopback address), APIAll, or APINone. /metrics,
	// /healthz and /readyz are served to everyone.
	API string `mapstructure:"api" yaml:"api"`
}

// exporter.api values.
const (
	APILoopback = "loopback"
	APIAll      = "all"
	APINone     = "none"
)

// SNMP is the SNMP agent. It is read-only unless a community or user with
// access rw is configured.
type SNMP struct {
	// Listen are UDP addresses host:port; empty: no agent.
	Listen      []string    `mapstructure:"listen" yaml:"listen"`
	Communities []Community `mapstructure:"communities" yaml:"communities"`
	Users       []User      `mapstructure:"users" yaml:"users"`
	Views       []View      `mapstructure:"views" yaml:"views"`
	// TrapTargets are [udp:]HOST[:PORT][?OPTIONS] (port 162 by default).
	TrapTargets []string `mapstructure:"trap_targets" yaml:"trap_targets"`
	// AuthenticationTraps sends authenticationFailure notifications
	// (snmpEnableAuthenTraps).
	AuthenticationTraps bool `mapstructure:"authentication_traps" yaml:"authentication_traps"`
	// NotificationRate limits notifications other than coldStart, per
	// second, in bursts of up to NotificationBurst.
	NotificationRate  float64 `mapstructure:"notification_rate" yaml:"notification_rate"`
	NotificationBurst int     `mapstructure:"notification_burst" yaml:"notification_burst"`
	// StateDir keeps the agent's persistent state (SNMPv3 engine ID and
	// boots) when SNMPv3 is configured.
	StateDir string `mapstructure:"state_dir" yaml:"state_dir"`
	// EngineID is the SNMPv3 snmpEngineID in hexadecimal; empty: a
	// random one kept in StateDir.
	EngineID string `mapstructure:"engine_id" yaml:"engine_id"`
}

// Community is an SNMPv1/v2c community.
type Community struct {
	Name string `mapstructure:"name" yaml:"name"`
	// Access is ro (the default when empty) or rw.
	Access string `mapstructure:"access" yaml:"access"`
	// View names one of SNMP.Views; empty: every object tcptap serves.
	View string `mapstructure:"view" yaml:"view"`
	// Sources are the prefixes requests may come from; empty: any.
	Sources []string `mapstructure:"sources" yaml:"sources"`
}

// User is an SNMPv3 USM user.
type User struct {
	Name string `mapstructure:"name" yaml:"name"`
	// AuthProtocol is none (or empty), md5, sha, sha224, sha256, sha384
	// or sha512.
	AuthProtocol string `mapstructure:"auth_protocol" yaml:"auth_protocol"`
	AuthPassword string `mapstructure:"auth_password" yaml:"auth_password"`
	// PrivProtocol is none (or empty), des, aes (AES-128), aes192 or
	// aes256; it needs an AuthProtocol.
	PrivProtocol string `mapstructure:"priv_protocol" yaml:"priv_protocol"`
	PrivPassword string `mapstructure:"priv_password" yaml:"priv_password"`
	// Access is ro (the default when empty) or rw.
	Access string `mapstructure:"access" yaml:"access"`
	// View names one of SNMP.Views; empty: every object tcptap serves.
	View string `mapstructure:"view" yaml:"view"`
}

// View is a MIB view: the OID subtrees included, minus those excluded.
type View struct {
	Name     string   `mapstructure:"name" yaml:"name"`
	Included []string `mapstructure:"included" yaml:"included"`
	Excluded []string `mapstructure:"excluded" yaml:"excluded"`
}

// Control is the Unix control socket of the operator commands.
type Control struct {
	Socket string `mapstructure:"socket" yaml:"socket"`
}

// Sensor names this sensor in its records.
type Sensor struct {
	// Name is the records' sensor field; empty: the host name.
	Name string `mapstructure:"name" yaml:"name"`
	// CommunityIDSeed seeds the records' Community ID, 0 to 65535.
	CommunityIDSeed int `mapstructure:"community_id_seed" yaml:"community_id_seed"`
}

// Output is where tcptap run writes the record of every finished
// connection, besides the trace cache: any combination of a file,
// standard output, syslog and NATS JetStream.
type Output struct {
	// Records is all or abnormal.
	Records string `mapstructure:"records" yaml:"records"`
	// QueueSize bounds each output's queue of records not yet written, a
	// size ([ParseSize]).
	QueueSize string `mapstructure:"queue_size" yaml:"queue_size"`
	// FlushTimeout bounds the time spent writing queued records at stop.
	FlushTimeout time.Duration `mapstructure:"flush_timeout" yaml:"flush_timeout"`
	// Stdout writes JSON Lines to standard output.
	Stdout bool       `mapstructure:"stdout" yaml:"stdout"`
	File   OutputFile `mapstructure:"file" yaml:"file"`
	Syslog Syslog     `mapstructure:"syslog" yaml:"syslog"`
	NATS   NATS       `mapstructure:"nats" yaml:"nats"`
}

// OutputFile is the JSON Lines file output.
type OutputFile struct {
	// Path is the file; empty: no file output.
	Path string `mapstructure:"path" yaml:"path"`
	// MaxSize rotates the file when it would grow beyond this size ("0":
	// never by size).
	MaxSize string `mapstructure:"max_size" yaml:"max_size"`
	// MaxAge rotates the file when it is this old (0: never by age).
	MaxAge time.Duration `mapstructure:"max_age" yaml:"max_age"`
	// MaxFiles is how many rotated files are kept (path.1 ... path.N).
	MaxFiles int `mapstructure:"max_files" yaml:"max_files"`
}

// Syslog is the syslog output.
type Syslog struct {
	// Address is unix:PATH, udp://HOST:PORT, tcp://HOST:PORT or
	// tls://HOST:PORT; empty: no syslog output.
	Address string `mapstructure:"address" yaml:"address"`
	// Format is rfc5424 or rfc3164.
	Format   string `mapstructure:"format" yaml:"format"`
	Facility string `mapstructure:"facility" yaml:"facility"`
	Tag      string `mapstructure:"tag" yaml:"tag"`
	// TLS: the CA that signs the server's certificate (empty: the
	// system's), and a client certificate and key when the server asks.
	TLSCAFile   string `mapstructure:"tls_ca_file" yaml:"tls_ca_file"`
	TLSCertFile string `mapstructure:"tls_cert_file" yaml:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file" yaml:"tls_key_file"`
}

// NATS is the NATS JetStream output.
type NATS struct {
	// URL is the server, nats://HOST:PORT or tls://HOST:PORT (several
	// separated by commas); empty: no NATS output.
	URL     string `mapstructure:"url" yaml:"url"`
	Subject string `mapstructure:"subject" yaml:"subject"`
	// Stream, when set, is created if missing (capturing Subject) and
	// every publish must land in it.
	Stream          string `mapstructure:"stream" yaml:"stream"`
	CredentialsFile string `mapstructure:"credentials_file" yaml:"credentials_file"`
	TLSCAFile       string `mapstructure:"tls_ca_file" yaml:"tls_ca_file"`
	TLSCertFile     string `mapstructure:"tls_cert_file" yaml:"tls_cert_file"`
	TLSKeyFile      string `mapstructure:"tls_key_file" yaml:"tls_key_file"`
}

// Output defaults.
const (
	DefaultOutputRecords      = "all"
	DefaultOutputQueueSize    = "64MiB"
	DefaultOutputFlushTimeout = 5 * time.Second
	DefaultOutputFileMaxSize  = "100MiB"
	DefaultOutputFileMaxFiles = 10
	DefaultSyslogFormat       = "rfc5424"
	DefaultSyslogFacility     = "local0"
	DefaultSyslogTag          = "tcptap"
	DefaultNATSSubject        = "tcptap.records"
)

// Log is the daemon's log on standard error (log/slog).
type Log struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level" yaml:"level"`
	// Format is text (logfmt-like key=value) or json.
	Format string `mapstructure:"format" yaml:"format"`
}

// Capture defaults.
const (
	// DefaultSnaplen (capture.DefaultLiveSnaplen) keeps the headers: Ethernet with two VLAN tags and a
	// few MPLS labels (38 bytes), IPv6 (40) with room for extension
	// headers, and the largest TCP header (60). tcptap never looks at the
	// payload; the segment length comes from the IP header.
	DefaultSnaplen = 256
	// DefaultRingSize is per socket (64 blocks of 1 MiB, capture's
	// default): ring_size × workers × interfaces is the total. At 256
	// bytes per frame it absorbs about 190,000 segments.
	DefaultRingSize  = "64MiB"
	DefaultBlockSize = "1MiB"
)

// Other defaults.
const (
	DefaultExporterListen = ":9911"
	DefaultSNMPListen     = "127.0.0.1:161"
	DefaultSNMPStateDir   = "/var/lib/tcptap"
	DefaultControlSocket  = "/run/tcptap/control.sock"
	DefaultMemoryQuota    = "100MiB"
)

// Notification rate limit defaults: 10 notifications a second, in bursts
// of 10.
const (
	DefaultNotificationRate  = 10.0
	DefaultNotificationBurst = 10
)

// Default returns the documented defaults. Lists are empty, not nil, so the
// example file and the flags show [] rather than null.
func Default() Config {
	cls := classifier.DefaultConfig()
	return Config{
		Capture: Capture{
			Interfaces:  []string{},
			Workers:     0,
			Snaplen:     DefaultSnaplen,
			RingSize:    DefaultRingSize,
			BlockSize:   DefaultBlockSize,
			Promiscuous: true,
			FanoutGroup: 0,
			UDPTunnels:  DefaultUDPTunnels(),
			Duplicates:  "drop",
		},
		Trace: Trace{
			Enable:               false,
			LocalNets:            []string{},
			Filter:               []string{},
			OnlyNewConnection:    false,
			MaxPacketNumber:      flightrec.DefaultMaxPacketNumber,
			MemoryQuota:          DefaultMemoryQuota,
			CacheMode:            cache.AbnormalClose.String(),
			IdleTimeout:          reassembly.DefaultIdleTimeout,
			CloseLinger:          reassembly.DefaultCloseLinger,
			MaxConnections:       reassembly.DefaultMaxConnections,
			VLANPolicy:           reassembly.VLANAuto.String(),
			RTMinRetransmissions: cls.RTMinRetransmissions,
			PTMinProbes:          cls.PTMinProbes,
			KTMinProbes:          cls.KTMinProbes,
			SilenceFactor:        cls.SilenceFactor,
			MinSilence:           cls.MinSilence,
			SYNSilence:           cls.SYNSilence,
		},
		Exporter: Exporter{
			Listen:     DefaultExporterListen,
			PortLabels: []int{},
			API:        APILoopback,
		},
		SNMP: SNMP{
			Listen:            []string{DefaultSNMPListen},
			Communities:       []Community{},
			Users:             []User{},
			Views:             []View{},
			TrapTargets:       []string{},
			NotificationRate:  DefaultNotificationRate,
			NotificationBurst: DefaultNotificationBurst,
			StateDir:          DefaultSNMPStateDir,
		},
		Control: Control{Socket: DefaultControlSocket},
		Output: Output{
			Records:      DefaultOutputRecords,
			QueueSize:    DefaultOutputQueueSize,
			FlushTimeout: DefaultOutputFlushTimeout,
			File:         OutputFile{MaxSize: DefaultOutputFileMaxSize, MaxFiles: DefaultOutputFileMaxFiles},
			Syslog:       Syslog{Format: DefaultSyslogFormat, Facility: DefaultSyslogFacility, Tag: DefaultSyslogTag},
			NATS:         NATS{Subject: DefaultNATSSubject},
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// maxSize bounds a size: far above any sane ring or quota, far below int64
// overflow.
const maxSize = 1 << 50

// ParseSize parses a byte count: a number with an optional unit B, KB, MB,
// GB (powers of 1000) or K, M, G, KiB, MiB, GiB (powers of 1024), case
// insensitive, e.g. 100MiB, 64MB, 1.5GiB or 1048576.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	// !(n >= 0) also refuses NaN.
	if err != nil || !(n >= 0) || n*float64(mult) > maxSize {
		return 0, fmt.Errorf("want a size such as 100MiB, 64MB or 1048576")
	}
	return int64(n * float64(mult)), nil
}

// FormatSize formats a byte count so that ParseSize gives it back: in the
// largest binary unit that divides it (100MiB), else in bytes.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// FormatDuration formats d as time.Duration.String does, without the zero
// trailing units: 5m rather than 5m0s, 1h rather than 1h0m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// TraceConfig returns the trace feature's configuration with the filter
// parsed.
func (t Trace) TraceConfig() (flightrec.Config, error) {
	acl, err := t.ACL()
	if err != nil {
		return flightrec.Config{}, err
	}
	tc := flightrec.Config{
		Enabled:           t.Enable,
		MaxPacketNumber:   t.MaxPacketNumber,
		Filter:            acl,
		OnlyNewConnection: t.OnlyNewConnection,
	}
	if err := tc.Validate(); err != nil {
		return flightrec.Config{}, keyErr("trace.max_packet_number", "%d: want 1 to %d", t.MaxPacketNumber, maxPacketNumber)
	}
	return tc, nil
}

// ACL parses trace.filter.
func (t Trace) ACL() (acl.List, error) {
	acl, err := acl.Parse(t.Filter)
	if err != nil {
		return nil, &KeyError{Key: "trace.filter", Err: err}
	}
	return acl, nil
}

// ClassifierConfig returns the classifier's configuration: the local
// networks parsed and the thresholds of the timeout rules.
func (t Trace) ClassifierConfig() (classifier.Config, error) {
	nets, err := t.localNets()
	if err != nil {
		return classifier.Config{}, err
	}
	c := classifier.Config{
		LocalNets:            nets,
		RTMinRetransmissions: t.RTMinRetransmissions,
		PTMinProbes:          t.PTMinProbes,
		KTMinProbes:          t.KTMinProbes,
		SilenceFactor:        t.SilenceFactor,
		MinSilence:           t.MinSilence,
		SYNSilence:           t.SYNSilence,
	}
	var v validator
	t.validateThresholds(&v)
	if err := v.err(); err != nil {
		return classifier.Config{}, err
	}
	return c, nil
}

func (t Trace) localNets() ([]netip.Prefix, error) {
	var nets []netip.Prefix
	var v validator
	for i, s := range t.LocalNets {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			v.add(fmt.Sprintf("trace.local_nets[%d]", i), "%q: want a CIDR prefix such as 10.0.0.0/8 or fd00::/8", s)
			continue
		}
		nets = append(nets, p.Masked())
	}
	return nets, v.err()
}

// TableConfig returns the connection table's timers and bound. A
// close_linger of 0 (no linger) becomes the table's negative "none", since
// the table reads zero as its default.
func (t Trace) TableConfig() reassembly.Config {
	linger := t.CloseLinger
	if linger == 0 {
		linger = -1
	}
	vlan, _ := reassembly.ParseVLANPolicy(t.VLANPolicy) // validated
	return reassembly.Config{IdleTimeout: t.IdleTimeout, CloseLinger: linger, MaxConnections: t.MaxConnections, VLANPolicy: vlan}
}

// QuotaBytes parses trace.memory_quota.
func (t Trace) QuotaBytes() (int64, error) {
	n, err := ParseSize(t.MemoryQuota)
	if err != nil {
		return 0, keyErr("trace.memory_quota", "%q: %v", t.MemoryQuota, err)
	}
	if n == 0 {
		return 0, keyErr("trace.memory_quota", "%q: want more than 0 (nothing could be recorded)", t.MemoryQuota)
	}
	return n, nil
}

// Mode parses trace.cache_mode.
func (t Trace) Mode() (cache.Mode, error) {
	m, err := cache.ParseMode(t.CacheMode)
	if err != nil {
		return 0, keyErr("trace.cache_mode", "%q: want abnormal-close or all", t.CacheMode)
	}
	return m, nil
}

// RingBytes parses capture.ring_size.
func (c Capture) RingBytes() (int64, error) {
	n, err := ParseSize(c.RingSize)
	if err != nil {
		return 0, keyErr("capture.ring_size", "%q: %v", c.RingSize, err)
	}
	return n, nil
}

// BlockBytes parses capture.block_size.
func (c Capture) BlockBytes() (int64, error) {
	n, err := ParseSize(c.BlockSize)
	if err != nil {
		return 0, keyErr("capture.block_size", "%q: %v", c.BlockSize, err)
	}
	return n, nil
}

// RequireInterfaces reports a configuration without capture interfaces,
// which 'tcptap run' cannot start with. Validate accepts it, so that
// commands that only need the control socket can load the configuration.
func (c Capture) RequireInterfaces() error {
	if len(c.Interfaces) == 0 {
		return keyErr("capture.interfaces", "none given: name the mirror interface with -i IFACE, --capture.interfaces, TCPTAP_CAPTURE_INTERFACES or capture.interfaces in the file")
	}
	return nil
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// TraceSettings is the trace configuration the operator changes at run
// time (the control socket's trace commands, SNMP sets, a reload): the
// vendor's settings, whose bounds are checked where they are set
// (flightrec.CheckMaxPacketNumber, ParseSize). 'tcptap trace persist'
// writes them back to the file's trace keys.
type TraceSettings struct {
	Enabled           bool
	Filter            []string
	OnlyNewConnection bool
	MaxPacketNumber   int
	MemoryQuota       int64
	CacheMode         cache.Mode
}
