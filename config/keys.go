package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/tcptap/tcptap/flightrec"
)

// Key describes one configuration key: its name, the one-line help of its
// flag and the longer documentation of the example file. The same table
// feeds both, so they cannot drift apart.
type Key struct {
	// Name is section.key, e.g. trace.cache_mode; also the flag's name.
	Name string
	// Help is one line: the flag's usage and the first comment line in
	// the example file.
	Help string
	// Doc are further lines for the example file (may be empty).
	Doc []string
	// Repeat: each flag occurrence is one list element, never split at
	// commas (lists whose elements may contain commas or spaces).
	Repeat bool

	index []int
}

// Section returns the key's section: capture, trace, exporter, snmp,
// control, sensor, output or log.
func (k Key) Section() string { return k.Name[:strings.IndexByte(k.Name, '.')] }

// Field returns the key's name within its section: file.path for
// output.file.path.
func (k Key) Field() string { return k.Name[strings.IndexByte(k.Name, '.')+1:] }

// EnvName returns the key's environment variable: TCPTAP_TRACE_CACHE_MODE.
func (k Key) EnvName() string { return EnvName(k.Name) }

// EnvName returns the environment variable of a key name.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Ptr returns a pointer to the key's field in c: *string, *bool, *int,
// *uint32, *float64, *time.Duration, *[]string, *[]int, *[]Community,
// *[]User or *[]View.
func (k Key) Ptr(c *Config) any {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.index).Addr().Interface()
}

// Default returns the key's default value.
func (k Key) Default() any {
	d := Default()
	return reflect.ValueOf(k.Ptr(&d)).Elem().Interface()
}

type keyDoc struct {
	help   string
	doc    []string
	repeat bool
}

// sectionDocs document the sections in the example file.
var sectionDocs = map[string][]string{
	"capture": {
		"Live capture (tcptap run): one AF_PACKET socket per worker and interface,",
		"a TPACKET_V3 ring each, the sockets of an interface in one fanout group",
		"(PACKET_FANOUT_HASH with defrag) so that both directions of a connection",
		"reach the same worker. A kernel filter passes only TCP (also in 802.1Q",
		"and QinQ frames).",
	},
	"trace": {
		"The trace feature, after the switch vendor's 'tcp trace' commands, and",
		"the connection analysis. enable, filter, only_new_connection,",
		"max_packet_number, memory_quota and cache_mode also change at run time",
		"(tcptap trace ...); filter, max_packet_number and memory_quota only while",
		"tracing is disabled. Run-time changes are lost on restart unless",
		"'tcptap trace persist' writes them into this section of the file (the",
		"other sections and the comments are kept).",
	},
	"exporter": {
		"The HTTP listener: Prometheus metrics at /metrics, /healthz and /readyz",
		"for probes, and the JSON API under /api/v1/ (see api). It is read-only;",
		"commands that change anything go through the control socket.",
	},
	"snmp": {
		"The SNMP agent (v1, v2c and v3): TCP-MIB and tcptap's own objects. It is",
		"read-only unless a community or user is explicitly given access rw.",
		"With no community and no user, a read-only community public answers",
		"requests from the loopback addresses.",
	},
	"control": {
		"The operator commands (tcptap trace|display|reset ...) reach the running",
		"daemon over this Unix socket.",
	},
	"sensor": {
		"This sensor's name and identifiers in its records (tcptap run and",
		"tcptap read): each record carries sensor, a uid unique across sensors",
		"and restarts, and community_id, the Community ID v1 flow hash that",
		"Zeek, Suricata, Arkime and Elastic records of the same flow carry.",
	},
	"output": {
		"Where tcptap run writes the JSON record of every finished connection, in",
		"any combination: a file (JSON Lines, rotated, reopened on SIGHUP),",
		"standard output, syslog and NATS JetStream. Independent of the trace",
		"cache. Capture never waits for an output: each has a queue of",
		"queue_size bytes; when an output is slow or down, records wait there and",
		"beyond it the newest are dropped and counted",
		"(tcptap_output_records_total{result=\"dropped\"}).",
	},
	"log": {
		"The daemon's log on standard error: start and stop, capture set-up,",
		"kernel drops, and one line per operator action (trace and reset",
		"commands, SNMP sets, reloads) naming who did it: the control socket",
		"peer's uid and pid, the SNMP community or user and source address.",
		"Both keys change on reload (SIGHUP).",
	},
}

// keyDocs document every key; a test checks that every field of Config has
// an entry and every entry a field.
var keyDocs = map[string]keyDoc{
	"capture.interfaces": {
		help: "interfaces to capture on, such as the mirror (SPAN) port (repeatable or comma-separated; also -i, --interface)",
		doc:  []string{"tcptap run needs at least one. Example: [eth1, eth2]."},
	},
	"capture.workers": {
		help: "capture workers per interface, each with its own socket and connection table (0: one per CPU)",
	},
	"capture.snaplen": {
		help: "bytes of each frame kept in the ring, 128 to 262144",
		doc: []string{
			"tcptap reads only the headers (the segment length comes from the IP",
			"header); 256 holds Ethernet with two VLAN tags, IPv6 and the largest",
			"TCP header. A larger snaplen fills the ring sooner.",
		},
	},
	"capture.ring_size": {
		help: "ring memory of each capture socket, a multiple of capture.block_size",
		doc: []string{
			"There is one socket per worker and interface: the total is",
			"ring_size × workers × interfaces, locked in kernel memory. Raise it",
			"when the kernel drops packets; at the default snaplen, 64MiB holds",
			"about 190,000 frames.",
		},
	},
	"capture.block_size": {
		help: "size of one ring block: a power of two, at least the page size",
		doc: []string{
			"The kernel hands a block to the worker when it is full or after a short",
			"timeout. Very large blocks can fail to allocate (ENOMEM) when memory is",
			"fragmented: prefer more blocks to bigger ones.",
		},
	},
	"capture.promiscuous": {
		help: "put the capture interfaces in promiscuous mode (a mirror port carries frames for other hosts)",
	},
	"capture.fanout_group": {
		help: "AF_PACKET fanout group id of the first interface, 1 to 65535; the next interfaces count up (0: derived from the process ID)",
		doc: []string{
			"Sockets with the same id share an interface's traffic, even across",
			"processes: the default keeps two tcptap processes apart. Set an id",
			"only to make cooperating processes share one group.",
		},
	},
	"capture.udp_tunnels": {
		help: "UDP tunnels to decapsulate, TYPE:PORT with TYPE vxlan, geneve, gtpu or gre-udp (repeatable or comma-separated)",
		doc: []string{
			"A datagram to (or else from) one of these ports is decapsulated to the",
			"TCP inside; the kernel filter passes them. Add the port a mirror",
			"session uses when it is not the standard one (Linux's old VXLAN",
			"default is 8472).",
		},
	},
	"capture.duplicates": {
		help: "a segment seen twice by two paths (plain and tunnelled, two mirror feeds): drop (count it once) or keep (count both, as Wireshark)",
		doc: []string{
			"drop: a segment identical to one decoded less than 100 ms before, in",
			"addresses, ports, sequence and acknowledgment numbers, flags, window,",
			"IPv4 ID, checksum, length and TCP timestamp, that came by another",
			"path (another encapsulation, VLAN or interface) is a copy: it is",
			"counted in tcptap_decode_ignored_frames_total{kind=\"copy\"} and not",
			"in the connection. A retransmission travels the path of its original",
			"and is kept.",
		},
	},

	"trace.enable": {
		help: "record the packets of traced connections from the start (tcptap trace enable|disable)",
	},
	"trace.local_nets": {
		help: "CIDR prefixes of the local side: the endpoint inside them is local when exactly one is; otherwise the client",
		doc:  []string{"Example: [10.0.0.0/8, fd00::/8]."},
	},
	"trace.filter": {
		help:   "ACL rule: trace only connections the rules permit, first match wins (repeatable; none: trace all)",
		repeat: true,
		doc: []string{
			"One rule per item:",
			"  permit|deny [ipv4|ipv6] [source|src PREFIX|ADDR|any] [source-port|sport PORTS]",
			"              [destination|dst PREFIX|ADDR|any] [destination-port|dport PORTS] [any]",
			"PORTS: 80, 1024-65535, eq 80, range 6000 6063 or any. A connection no rule",
			"matches is not traced (implicit deny at the end), as on the switch.",
			"Example: [\"permit destination-port 80\", \"permit ipv6 dst 2001:db8::/32\"].",
		},
	},
	"trace.only_new_connection": {
		help: "trace only connections whose handshake is seen after tracing was enabled",
	},
	"trace.max_packet_number": {
		help: fmt.Sprintf("packet records kept per traced connection, 1 to %d; newer ones overwrite the oldest", flightrec.MaxPacketNumberLimit),
	},
	"trace.memory_quota": {
		help: "memory for recorded connections and packets, such as 100MiB or 1GiB",
		doc: []string{
			"When it is used up no new connection is recorded; recorded ones",
			"overwrite their own oldest packets.",
		},
	},
	"trace.cache_mode": {
		help: "closed connections kept in the cache: abnormal-close (every reason but AN, PN and OP) or all",
	},
	"trace.idle_timeout": {
		help: "end a connection after this long without a segment (reason IT)",
	},
	"trace.close_linger": {
		help: "keep a reset or closed connection this long to absorb trailing segments (0: not at all)",
	},
	"trace.vlan_policy": {
		help: "how VLAN tags separate connections: auto (by tags when both directions carry the same; directions on different tags or one untagged joined; a direction seen again on other tags is a copy, set aside) or strict (every tag set its own connection)",
	},
	"trace.max_connections": {
		help: "connections tracked at once (all workers); when full, the least recently seen is let go",
		doc:  []string{"About 2 KiB each."},
	},
	"trace.rt_min_retransmissions": {
		help: "retransmissions of unacknowledged data, backing off, that make a retransmission timeout (RT)",
	},
	"trace.pt_min_probes": {
		help: "window probes against a zero window that make a persist timeout (PT)",
	},
	"trace.kt_min_probes": {
		help: "evenly spaced unanswered keepalives that make a keepalive timeout (KT) when no RST follows",
	},
	"trace.silence_factor": {
		help: "a sender's next retransmission or probe is due this many times its last gap after the last one (at least 1; Linux doubles: 2)",
		doc: []string{
			"A timer verdict (RT, PT, KT, ST by silence) needs the sender quiet past",
			"that due time (capped at Linux's 120 s maximum RTO) plus a quarter of",
			"it, and at least min_silence: the same rule live and offline.",
		},
	},
	"trace.min_silence": {
		help: "the least margin of silence, past a sender's next due retransmission or probe, that ends a connection",
	},
	"trace.syn_silence": {
		help: "how long a single SYN must stay unanswered to be a SYN timeout (ST)",
	},

	"exporter.listen": {
		help: "address of the HTTP listener, host:port (empty: none)",
		doc: []string{
			"9911 is not one of the well-known default ports of Prometheus's own",
			"exporters. /metrics, /healthz and /readyz are served on every address",
			"of the listener so Prometheus and probes reach them; the JSON API is",
			"governed by exporter.api. Use 127.0.0.1:9911 to serve only local",
			"scrapers.",
		},
	},
	"exporter.api": {
		help: "who gets the JSON API (connections, packets, pcaps): loopback (only requests to a loopback address), all, or none",
		doc: []string{
			"The API serves every tracked 4-tuple, packet header and pcap. With the",
			"default, a request that reaches the listener on a non-loopback address",
			"(such as the node's address on a host network) gets 403 for /api/;",
			"curl localhost:9911/api/v1/... on the sensor works. Set all only with",
			"exporter.web_config_file (TLS and basic authentication) or on a",
			"trusted network.",
		},
	},
	"exporter.port_labels": {
		help: "server ports whose closes are counted on their own in tcptap_service_connections_closed_total (at most 32)",
		doc: []string{
			"Closes on other ports are only in tcptap_connections_closed_total.",
			"Example: [22, 80, 443].",
		},
	},
	"exporter.web_config_file": {
		help: "Prometheus web configuration file (TLS, basic authentication) for the listener (empty: plain HTTP)",
	},

	"snmp.listen": {
		help: "UDP addresses of the SNMP agent, host:port (empty: no agent)",
		doc:  []string{"Port 161 needs CAP_NET_BIND_SERVICE."},
	},
	"snmp.communities": {
		help:   "SNMPv1/v2c community: 'name=NAME access=ro|rw view=VIEW sources=PREFIX' (repeatable)",
		repeat: true,
		doc: []string{
			"access: ro (default) or rw; view: one of snmp.views (default: every",
			"object); sources: prefixes requests may come from (default: any).",
			"Example:",
			"  communities:",
			"    - name: s3cret-ro",
			"      access: ro",
			"      view: tcp",
			"      sources: [192.0.2.0/24]",
		},
	},
	"snmp.users": {
		help:   "SNMPv3 user: 'name=NAME auth_protocol=sha256 auth_password=PASS priv_protocol=aes priv_password=PASS access=ro|rw view=VIEW' (repeatable)",
		repeat: true,
		doc: []string{
			"auth_protocol: none, md5, sha, sha224, sha256, sha384 or sha512;",
			"priv_protocol: none, des, aes, aes192 or aes256 (needs auth); passwords",
			"have at least 8 characters. The protocols set are the user's minimum",
			"security level (noAuthNoPriv, authNoPriv or authPriv). Keep passwords",
			"in this file (mode 0600): flags are visible to other users in the",
			"process list.",
			"Example:",
			"  users:",
			"    - name: monitor",
			"      auth_protocol: sha256",
			"      auth_password: change-me-please",
			"      priv_protocol: aes",
			"      priv_password: change-me-too",
			"      access: ro",
			"      view: tcp",
		},
	},
	"snmp.views": {
		help:   "MIB view: 'name=NAME included=OID excluded=OID' (repeatable; included and excluded may repeat)",
		repeat: true,
		doc: []string{
			"Example:",
			"  views:",
			"    - name: tcp",
			"      included: [1.3.6.1.2.1.1, 1.3.6.1.2.1.6]",
			"      excluded: []",
		},
	},
	"snmp.trap_targets": {
		help: "managers that receive notifications, [udp:]HOST[:PORT][?OPTIONS] (port 162 when omitted)",
		doc: []string{
			"OPTIONS: version=1|2c|3 (default 2c), community=NAME (v1/v2c; default",
			"public), user=NAME (v3: one of snmp.users), level=noAuthNoPriv|",
			"authNoPriv|authPriv (v3; default the user's), inform=true (acknowledged",
			"informs, v2c or v3), retries=N (default 3), timeout=DURATION (default",
			"2s). v3 traps are sent with this agent as the authoritative engine: the",
			"receiver configures the user with snmp.engine_id (net-snmp's snmptrapd:",
			"createUser -e 0xENGINEID NAME SHA PASS AES PASS); v3 informs discover",
			"the receiver's engine. Example:",
			"  trap_targets: [\"udp:nms.example.net:162?community=traps&inform=true\"]",
		},
	},
	"snmp.authentication_traps": {
		help: "send authenticationFailure notifications (wrong community, unknown v3 user, wrong digest, undecryptable message)",
		doc:  []string{"Also snmpEnableAuthenTraps, settable at run time with access rw."},
	},
	"snmp.notification_rate": {
		help: "notifications per second, beyond bursts of notification_burst (each goes to every target; coldStart is never limited)",
		doc: []string{
			"Abnormal closes beyond it are dropped and counted in",
			"tcptapNotificationsSuppressed.",
		},
	},
	"snmp.notification_burst": {
		help: "notifications sent at once before notification_rate applies",
	},
	"snmp.state_dir": {
		help: "directory for the SNMPv3 engine's ID and boots (used only when snmp.users or v3 trap targets are set)",
		doc: []string{
			"Created (mode 0700) if missing; it must be writable, or tcptap run",
			"fails at start: engine boots must go up at every start (RFC 3414).",
		},
	},
	"snmp.engine_id": {
		help: "SNMPv3 engine ID, 5 to 32 bytes in hexadecimal (empty: a random one, kept in state_dir)",
		doc: []string{
			"The running value is snmpEngineID (1.3.6.1.6.3.10.2.1.1.0). Example:",
			"  engine_id: 8000fb8f05a1b2c3d4e5f60708",
		},
	},

	"control.socket": {
		help: "Unix socket (mode 0600) of the operator commands",
	},

	"sensor.name": {
		help: "this sensor's name in the records' sensor field (empty: the host name)",
	},
	"sensor.community_id_seed": {
		help: "seed of the records' Community ID flow hash, 0 to 65535",
		doc:  []string{"Other tools whose records are joined on it must use the same seed."},
	},

	"output.records": {
		help: "records written to the outputs: all or abnormal (every reason but AN, PN and OP)",
	},
	"output.queue_size": {
		help: "queue of each output, in bytes of records (about 1.5 KB each) not yet written",
		doc: []string{
			"Records wait here while an output is slow, down or reconnecting",
			"(with backoff, up to 30s between attempts); when it is full, new records",
			"are dropped for that output and counted.",
		},
	},
	"output.flush_timeout": {
		help: "at stop (SIGINT, SIGTERM), how long to keep writing queued records before dropping the rest",
	},
	"output.stdout": {
		help: "write JSON Lines to standard output (containers, journald)",
	},
	"output.file.path": {
		help: "JSON Lines file, one record per line (empty: no file output)",
		doc: []string{
			"Records are written in batches of whole lines, so a crash never leaves",
			"a partial line. SIGHUP reopens the file: logrotate's create (with",
			"postrotate kill -HUP) and copytruncate both work.",
		},
	},
	"output.file.max_size": {
		help: "rotate the file before it grows beyond this size (0: never by size)",
	},
	"output.file.max_age": {
		help: "rotate the file when it is this old (0: never by age)",
	},
	"output.file.max_files": {
		help: "rotated files kept, PATH.1 (newest) to PATH.N; older ones are deleted (0: none kept)",
	},
	"output.syslog.address": {
		help: "syslog server, unix:PATH (datagram, such as unix:/dev/log), udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT (empty: no syslog output)",
		doc: []string{
			"One record per message; over TCP and TLS framed by octet counting",
			"(RFC 6587), over UDP one datagram each.",
		},
	},
	"output.syslog.format": {
		help: "message format: rfc5424 or rfc3164",
	},
	"output.syslog.facility": {
		help: "syslog facility: kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp or local0 to local7",
		doc:  []string{"Abnormal closes are sent with severity warning, others notice."},
	},
	"output.syslog.tag": {
		help: "APP-NAME (RFC 5424) or TAG (RFC 3164) of the messages",
	},
	"output.syslog.tls_ca_file": {
		help: "PEM CA certificates that sign the syslog server's certificate (empty: the system's)",
	},
	"output.syslog.tls_cert_file": {
		help: "PEM client certificate for a TLS syslog server that asks for one",
	},
	"output.syslog.tls_key_file": {
		help: "PEM key of output.syslog.tls_cert_file",
	},
	"output.nats.url": {
		help: "NATS server URLs, nats://HOST:PORT or tls://HOST:PORT, comma-separated (empty: no NATS output)",
		doc: []string{
			"Records are published to JetStream and each acknowledged by the",
			"server; a record stays queued until it is. Its uid is the message ID",
			"(Nats-Msg-Id), so a record sent again after a lost acknowledgement is",
			"stored once.",
		},
	},
	"output.nats.subject": {
		help: "subject the records are published on",
	},
	"output.nats.stream": {
		help: "JetStream stream the subject belongs to; created (file storage) when missing (empty: an existing stream must capture the subject)",
	},
	"output.nats.credentials_file": {
		help: "NATS credentials file (JWT and NKey seed) for servers that require it",
	},
	"output.nats.tls_ca_file": {
		help: "PEM CA certificates that sign the NATS server's certificate (empty: the system's)",
	},
	"output.nats.tls_cert_file": {
		help: "PEM client certificate for NATS servers that ask for one",
	},
	"output.nats.tls_key_file": {
		help: "PEM key of output.nats.tls_cert_file",
	},
	"log.level": {
		help: "least level logged: debug, info, warn or error",
	},
	"log.format": {
		help: "log line format: text (key=value) or json (one object a line)",
	},
}

var (
	keysOnce sync.Once
	keys     []Key
)

// Keys returns every key, in the order of the Config struct. A field that
// is itself a struct (output.file) holds keys one level down
// (output.file.path).
func Keys() []Key {
	keysOnce.Do(func() {
		var walk func(t reflect.Type, prefix string, index []int)
		walk = func(t reflect.Type, prefix string, index []int) {
			for j := range t.NumField() {
				f := t.Field(j)
				name := prefix + "." + yamlName(f)
				idx := append(append([]int{}, index...), j)
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type, name, idx)
					continue
				}
				d, ok := keyDocs[name]
				if !ok {
					panic(fmt.Sprintf("config: key %s has no documentation in keyDocs", name))
				}
				keys = append(keys, Key{Name: name, Help: d.help, Doc: d.doc, Repeat: d.repeat, index: idx})
			}
		}
		ct := reflect.TypeFor[Config]()
		for i := range ct.NumField() {
			sf := ct.Field(i)
			walk(sf.Type, yamlName(sf), []int{i})
		}
	})
	return keys
}

// Lookup returns the key of a name.
func Lookup(name string) (Key, bool) {
	for _, k := range Keys() {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// yamlName returns a field's YAML key.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}
