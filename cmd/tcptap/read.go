package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tcptap/tcptap/acl"
	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/pipeline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// readFlushIdle is how long a pipe on standard input may stay silent
// before the JSON records of the connections finished so far are written.
const readFlushIdle = 200 * time.Millisecond

type readFlags struct {
	udpTunnels []string
	duplicates string
	decoder    capture.DecoderConfig
	format     string
	cacheMode  string
	family     string
	workers    int
	localNets  []string
	progress   string
	sensor     string
	cidSeed    int

	idleTimeout    time.Duration
	closeLinger    time.Duration
	maxConnections int
	cls            classifier.Config
	captureEnd     string
	vlanPolicy     string

	captureEndAt func(clock int64) int64 // from captureEnd; nil: the capture's clock
	vlan         reassembly.VLANPolicy

	// The trace feature (flight recorder and cache).
	trace             bool
	maxPacketNumber   int
	memoryQuota       string
	filter            []string
	onlyNewConnection bool
	connection        string
	verbose           bool
	last              int
	wireshark         bool
	pcapDir           string
	information       bool

	metricsOut string
	report     reportFlags // --svg, --html (report.go)

	quotaBytes int64
	acl        acl.List
	connA      netip.AddrPort
	connB      netip.AddrPort
}

func newReadCmd() *cobra.Command {
	f := readFlags{cls: classifier.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "read [flags] FILE|- ...",
		Short: "Analyse pcap/pcapng captures and report why each connection ended",
		Long: `Read one or more .pcap or .pcapng files (gzip-compressed too; "-" reads standard
input, so "tcpdump -w - | tcptap read -" works), rebuild every TCP connection
and print the table of ended connections with their reason codes, or JSON
Lines with --format json. Files are read in the order given, as one capture.`,
		Example: `  tcptap read capture.pcap
  tcptap read --cache-mode all --format json capture.pcapng
  tcptap read --local-net 10.0.0.0/8 --idle-timeout 2m a.pcap b.pcap
  tcpdump -i eth1 -w - | tcptap read -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRead(cmd, args, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "table", "output format: table or json (JSON Lines)")
	fl.StringVar(&f.cacheMode, "cache-mode", "abnormal-close", "which connections to report: abnormal-close (every reason but AN, PN, OP) or all")
	fl.StringVar(&f.family, "family", "", "report only ipv4 or ipv6 connections")
	fl.IntVar(&f.workers, "workers", 0, "worker goroutines (0: one per CPU)")
	fl.StringArrayVar(&f.localNets, "local-net", nil, "CIDR of the local side (repeatable); default: the client is local")
	fl.StringVar(&f.sensor, "sensor", "", "the records' sensor field (default: the host name)")
	fl.IntVar(&f.cidSeed, "community-id-seed", 0, "seed of the records' Community ID flow hash, 0 to 65535")
	fl.StringVar(&f.progress, "progress", "auto", "progress bar on standard error: auto (when it is a terminal), always or never")
	fl.StringSliceVar(&f.udpTunnels, "udp-tunnel", config.DefaultUDPTunnels(), "UDP tunnels to decapsulate, TYPE:PORT (vxlan, geneve, gtpu, gre-udp; repeatable or comma-separated)")
	fl.StringVar(&f.duplicates, "duplicates", "drop", "a segment seen twice by two paths (plain and tunnelled): drop (count it once) or keep (count both, as Wireshark)")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", reassembly.DefaultIdleTimeout, "end a connection after this long without a segment (reason IT)")
	fl.IntVar(&f.maxConnections, "max-connections", reassembly.DefaultMaxConnections, "connections tracked at once; when full the least recently seen is let go (end \"evicted\")")
	fl.StringVar(&f.vlanPolicy, "vlan-policy", reassembly.VLANAuto.String(), "how VLAN tags separate connections: auto (by tags when both directions carry the same; directions on different tags or one untagged joined; a direction seen again on other tags is a copy, set aside) or strict (every tag set its own connection)")
	fl.DurationVar(&f.closeLinger, "close-linger", reassembly.DefaultCloseLinger, "keep a reset or closed connection this long to absorb trailing segments")
	fl.StringVar(&f.captureEnd, "capture-end", "last-frame", "when the capture ended, for judging the connections still open: last-frame (the last frame of any kind, or a pcapng isb_endtime), now (the wall clock when the input ends, for a live pipe) or an RFC 3339 time")
	fl.Uint32Var(&f.cls.RTMinRetransmissions, "rt-min-retransmissions", f.cls.RTMinRetransmissions, "retransmissions of unacknowledged data, backing off, that make a retransmit timeout (RT)")
	fl.Uint32Var(&f.cls.PTMinProbes, "pt-min-probes", f.cls.PTMinProbes, "window probes against a zero window that make a persist timeout (PT)")
	fl.Uint32Var(&f.cls.KTMinProbes, "kt-min-probes", f.cls.KTMinProbes, "evenly spaced unanswered keepalives that make a keepalive timeout (KT) when no RST follows")
	fl.Float64Var(&f.cls.SilenceFactor, "silence-factor", f.cls.SilenceFactor, "a sender's next retransmission/probe is due this many times its last gap after the last; it has given up once silent past that by a quarter, at least --min-silence")
	fl.DurationVar(&f.cls.MinSilence, "min-silence", f.cls.MinSilence, "the least margin of silence past a sender's next due retransmission or probe")
	fl.DurationVar(&f.cls.SYNSilence, "syn-silence", f.cls.SYNSilence, "how long a single unanswered SYN must stay unanswered to be a SYN timeout (ST)")

	fl.BoolVar(&f.trace, "trace", false, "record packets of traced connections (implied by --connection, --pcap-dir and --information)")
	fl.IntVar(&f.maxPacketNumber, "max-packet-number", flightrec.DefaultMaxPacketNumber, "packet records kept per connection; newer ones overwrite the oldest")
	fl.StringVar(&f.memoryQuota, "memory-quota", "100MiB", "memory for recorded connections and packets (e.g. 64MiB, 1GiB, 500000)")
	fl.StringArrayVar(&f.filter, "filter", nil, "trace only connections an ACL permits (repeatable rule, first match wins), e.g. 'permit destination-port 80'")
	fl.BoolVar(&f.onlyNewConnection, "only-new-connection", false, "trace only connections whose handshake is seen")
	fl.StringVar(&f.connection, "connection", "", "show the recorded packets of one cached connection: 'SRC-IP:PORT DST-IP:PORT'")
	fl.BoolVar(&f.verbose, "verbose", false, "with --connection: add each packet's sequence snapshot and analysis flags")
	fl.IntVar(&f.last, "last", 0, "with --connection: show only the last N packets")
	fl.BoolVar(&f.wireshark, "wireshark", false, "with --connection: write the connection's packets as a pcap to standard output")
	fl.StringVar(&f.pcapDir, "pcap-dir", "", "write one pcap per cached connection into this directory")
	fl.BoolVar(&f.information, "information", false, "print the trace configuration and statistics after the table")
	fl.StringVar(&f.metricsOut, "metrics-out", "", "write the run's final metrics to `FILE` in the Prometheus text format (for node_exporter's textfile collector)")
	addReportFlags(fl, &f.report)
	return cmd
}

func (f *readFlags) validate() error {
	switch f.format {
	case "table", "json":
	default:
		return fmt.Errorf("--format %q: want table or json", f.format)
	}
	switch f.cacheMode {
	case "abnormal-close", "all":
	default:
		return fmt.Errorf("--cache-mode %q: want abnormal-close or all", f.cacheMode)
	}
	switch f.family {
	case "", "ipv4", "ipv6":
	default:
		return fmt.Errorf("--family %q: want ipv4 or ipv6", f.family)
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("--progress %q: want auto, always or never", f.progress)
	}
	if f.workers < 0 {
		return fmt.Errorf("--workers %d: want 0 (one per CPU) or more", f.workers)
	}
	if f.cidSeed < 0 || f.cidSeed > 0xffff {
		return fmt.Errorf("--community-id-seed %d: want 0 to 65535", f.cidSeed)
	}
	if f.idleTimeout <= 0 {
		return fmt.Errorf("--idle-timeout %v: want a positive duration", f.idleTimeout)
	}
	var err error
	if f.decoder, err = (config.Capture{UDPTunnels: f.udpTunnels, Duplicates: f.duplicates}).DecoderConfig(); err != nil {
		if _, ok := capture.ParseDuplicatePolicy(f.duplicates); !ok {
			return fmt.Errorf("--duplicates %q: want drop or keep", f.duplicates)
		}
		return fmt.Errorf("--udp-tunnel %w", err)
	}
	if f.maxConnections < 1 {
		return fmt.Errorf("--max-connections %d: want at least 1", f.maxConnections)
	}
	if f.closeLinger < 0 {
		return fmt.Errorf("--close-linger %v: want zero or a positive duration", f.closeLinger)
	}
	vlan, err := reassembly.ParseVLANPolicy(f.vlanPolicy)
	if err != nil {
		return fmt.Errorf("--vlan-policy %w", err)
	}
	f.vlan = vlan
	switch f.captureEnd {
	case "last-frame":
	case "now":
		f.captureEndAt = func(int64) int64 { return time.Now().UnixNano() }
	default:
		at, err := time.Parse(time.RFC3339Nano, f.captureEnd)
		if err != nil {
			return fmt.Errorf("--capture-end %q: want last-frame, now or an RFC 3339 time such as 2026-12-06T15:04:05Z", f.captureEnd)
		}
		end := at.UnixNano()
		f.captureEndAt = func(int64) int64 { return end }
	}
	for _, s := range f.localNets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("--local-net %q: want a CIDR prefix such as 10.0.0.0/8 or fd00::/8", s)
		}
		f.cls.LocalNets = append(f.cls.LocalNets, p.Masked())
	}
	if err := f.cls.Validate(); err != nil {
		return fmt.Errorf("threshold: %w", err)
	}
	if f.connection != "" || f.pcapDir != "" || f.information {
		f.trace = true
	}
	if err := flightrec.CheckMaxPacketNumber(f.maxPacketNumber); err != nil {
		return fmt.Errorf("--max-packet-number %w", err)
	}
	q, err := parseSize(f.memoryQuota)
	if err != nil {
		return fmt.Errorf("--memory-quota %q: %w", f.memoryQuota, err)
	}
	f.quotaBytes = q
	if f.acl, err = acl.Parse(f.filter); err != nil {
		return fmt.Errorf("--filter: %w", err)
	}
	if f.connection != "" {
		fields := strings.Fields(f.connection)
		if len(fields) != 2 {
			return fmt.Errorf("--connection %q: want 'SRC-IP:PORT DST-IP:PORT' (IPv6 as [addr]:port)", f.connection)
		}
		if f.connA, err = netip.ParseAddrPort(fields[0]); err == nil {
			f.connB, err = netip.ParseAddrPort(fields[1])
		}
		if err != nil {
			return fmt.Errorf("--connection %q: %v; want 'SRC-IP:PORT DST-IP:PORT' (IPv6 as [addr]:port)", f.connection, err)
		}
	} else if f.verbose || f.last != 0 || f.wireshark {
		return fmt.Errorf("--verbose, --last and --wireshark go with --connection")
	}
	if f.last < 0 {
		return fmt.Errorf("--last %d: want a positive count", f.last)
	}
	return nil
}

// parseSize parses a byte count: config.ParseSize.
func parseSize(s string) (int64, error) { return config.ParseSize(s) }

func runRead(cmd *cobra.Command, args []string, f *readFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	if err := f.report.validate(f); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	errOut := cmd.ErrOrStderr()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	keep := func(r *record.Record) bool {
		if f.cacheMode == "abnormal-close" && !r.Reason.Abnormal() {
			return false
		}
		return f.family == "" || r.Family == f.family
	}
	summary := exporter.NewSummary()
	var recs []record.Record
	var jw *exporter.JSONWriter
	if f.format == "json" {
		jw = exporter.NewJSONWriter(out)
	}
	var writeErr error
	sink := func(r *record.Record) {
		if f.family != "" && r.Family != f.family {
			return
		}
		summary.Add(r)
		if !keep(r) {
			return
		}
		if jw != nil {
			if err := jw.Write(r); err != nil && writeErr == nil {
				writeErr = err
			}
			return
		}
		recs = append(recs, *r)
	}

	opts := offline.Options{
		Decoder:    f.decoder,
		Workers:    f.workers,
		Table:      reassembly.Config{IdleTimeout: f.idleTimeout, CloseLinger: lingerOrNone(f.closeLinger), MaxConnections: f.maxConnections},
		Classifier: f.cls,
		CaptureEnd: f.captureEndAt,
		Fleet:      &record.Fleet{Sensor: f.sensor, CommunityIDSeed: uint16(f.cidSeed)},
	}
	if opts.Fleet.Sensor == "" {
		opts.Fleet.Sensor = record.DefaultSensor()
	}
	if jw != nil {
		// From a pipe, each record as its connection finishes: after
		// 200 ms without input the pending packets are processed and
		// the records written out.
		opts.FlushIdle = readFlushIdle
		opts.Flush = func() {
			if jw == nil {
				return // --connection: nothing written per record
			}
			if err := jw.Flush(); err != nil && writeErr == nil {
				writeErr = err
			}
		}
	}
	opts.Table.VLANPolicy = f.vlan
	var tc *cache.Cache
	quota := flightrec.NewQuota(f.quotaBytes)
	if f.trace {
		mode, _ := cache.ParseMode(f.cacheMode)
		tc = cache.New(mode, quota)
		opts.Trace = flightrec.Config{Enabled: true, MaxPacketNumber: f.maxPacketNumber,
			Filter: f.acl, OnlyNewConnection: f.onlyNewConnection}
		opts.Quota, opts.Cache = quota, tc
	}
	if f.connection != "" {
		// The packet view replaces the table: collect nothing else.
		recs, jw = nil, nil
		sink = func(*record.Record) {}
	}
	bar := newProgressBar(errOut, f.progress)
	opts.Progress = bar.update
	st, runErr := offline.Run(ctx, args, opts, sink)
	bar.done()
	if f.metricsOut != "" {
		snap := pipeline.Snapshot([]metrics.Worker{st.Worker}, quota, tc, f.trace)
		if err := metrics.WriteTextfile(f.metricsOut, snap, metrics.Options{Version: version}); err != nil {
			return fmt.Errorf("--metrics-out: %w", err)
		}
	}

	switch {
	case f.connection != "":
		if err := writeConnection(out, tc, f); err != nil {
			if runErr != nil {
				fmt.Fprintf(errOut, "tcptap: %v\n", runErr)
			}
			return err // a lookup that failed, not an output error
		}
	case jw != nil:
		if err := jw.Flush(); err != nil && writeErr == nil {
			writeErr = err
		}
	case st.Opened > 0:
		exporter.SortRecords(recs)
		if err := exporter.WriteTable(out, recs); err != nil && writeErr == nil {
			writeErr = err
		}
		if err := summary.Write(out); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if f.pcapDir != "" && writeErr == nil {
		n, err := writePcapDir(f.pcapDir, tc)
		if err != nil {
			writeErr = err
		} else {
			fmt.Fprintf(errOut, "tcptap: wrote %d pcap files to %s\n", n, f.pcapDir)
		}
	}
	if f.information && f.connection == "" && writeErr == nil {
		infoOut := out
		if jw != nil {
			infoOut = errOut // keep standard output valid JSON Lines
		}
		fmt.Fprintln(infoOut)
		writeErr = exporter.WriteInformation(infoOut, information(f, st, quota, tc))
	}
	if writeErr == nil {
		writeErr = writeReports(errOut, f, args, tc, summary)
	}
	if writeErr != nil {
		return fmt.Errorf("writing output: %w", writeErr)
	}
	// Nothing is dropped silently: say what was not decoded, and fail
	// when nothing was (a capture of a link type or tunnel tcptap does
	// not decode would otherwise print "(no connections)" and succeed).
	if why := st.Decode.UndecodedSummary(); why != "" {
		if st.Decode.TCP == 0 && runErr == nil {
			fmt.Fprintf(errOut, "tcptap: no TCP segment decoded in %d frames: %s\n", st.Frames, why)
			return exitError{code: 1}
		}
		var n uint64
		for _, c := range st.Decode.Undecoded() {
			n += c.Frames
		}
		fmt.Fprintf(errOut, "tcptap: %d of %d frames not decoded: %s\n", n, st.Frames, why)
	}
	if runErr != nil {
		for _, line := range strings.Split(runErr.Error(), "\n") {
			fmt.Fprintf(errOut, "tcptap: %s\n", line)
		}
		return exitError{code: 1}
	}
	return nil
}

// progressBar draws "name  42% 120.0/286.1 MiB" on a terminal once an input
// has taken more than a second.
type progressBar struct {
	w       io.Writer
	on      bool
	start   time.Time
	last    time.Time
	drawn   bool
	current string
}

func newProgressBar(w io.Writer, mode string) *progressBar {
	on := mode == "always"
	if mode == "auto" {
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				on = true
			}
		}
	}
	return &progressBar{w: w, on: on, start: time.Now()}
}

func (b *progressBar) update(name string, done, total int64) {
	if !b.on {
		return
	}
	now := time.Now()
	if name != b.current {
		b.current, b.start = name, now
	}
	if now.Sub(b.start) < time.Second || now.Sub(b.last) < 200*time.Millisecond {
		return
	}
	b.last = now
	const mib = 1 << 20
	if total > 0 {
		fmt.Fprintf(b.w, "\r%s  %3d%%  %.1f/%.1f MiB ", name, done*100/total, float64(done)/mib, float64(total)/mib)
	} else {
		fmt.Fprintf(b.w, "\r%s  %.1f MiB ", name, float64(done)/mib)
	}
	b.drawn = true
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

// lingerOrNone maps --close-linger 0 (no linger) onto the table's negative
// "none", since the table reads zero as "the default".
func lingerOrNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
