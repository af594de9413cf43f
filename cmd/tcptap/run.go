package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/output"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/record"
	"github.com/tcptap/tcptap/snmp"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the sensor daemon: live capture on mirror interfaces, trace cache, control socket",
		Long: `Capture live on one or more mirror/SPAN interfaces through AF_PACKET (a
TPACKET_V3 ring per worker, one fanout group per interface so both directions
of a connection reach the same worker), track every TCP connection, and keep
the closed ones in the trace cache. Operator commands ('tcptap trace ...',
'tcptap display ...', 'tcptap reset cache') reach the daemon over its Unix
control socket (mode 0600). Stop it with SIGINT or SIGTERM.

Privileges: the daemon needs CAP_NET_RAW to open capture sockets (promiscuous
mode is a socket option and needs nothing more) and no other privilege, so run
it as an unprivileged user with that capability (see deploy/); binding SNMP to
port 161 also needs CAP_NET_BIND_SERVICE.

` + configHelp,
		Example: `  tcptap run -i eth1
  tcptap run --config /etc/tcptap/tcptap.yaml
  TCPTAP_TRACE_ENABLE=true tcptap run -i eth1 -i eth2 --capture.workers 2`,
		Args: cobra.NoArgs,
	}
	v := bindConfig(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		hup := notifyHangup() // from the start: a SIGHUP never kills the daemon
		defer signal.Stop(hup)
		cfg, err := loadConfig(v)
		if err == nil {
			err = cfg.Capture.RequireInterfaces()
		}
		if err != nil {
			return err
		}
		opts, err := daemonOptions(&cfg)
		if err != nil {
			return err
		}
		path := persistPath(v)
		rl := &reloader{v: v, mu: new(sync.Mutex), cfg: &cfg, started: cfg, log: opts.Logger}
		opts.Persist = func(s config.TraceSettings) error {
			rl.mu.Lock()
			defer rl.mu.Unlock()
			t := cfg.Trace
			t.Enable, t.Filter, t.OnlyNewConnection, t.MaxPacketNumber = s.Enabled, s.Filter, s.OnlyNewConnection, s.MaxPacketNumber
			t.MemoryQuota, t.CacheMode = config.FormatSize(s.MemoryQuota), s.CacheMode.String()
			if err := config.PersistTrace(path, t); err != nil {
				return err
			}
			cfg.Trace = t
			return nil
		}
		return runDaemon(cmd.Context(), &cfg, opts, hup, rl)
	}
	return cmd
}

// daemonOptions turns the validated configuration into the daemon's.
func daemonOptions(cfg *config.Config) (daemon.Options, error) {
	log := newLogger(cfg.Log)
	tc, err := cfg.Trace.TraceConfig()
	if err != nil {
		return daemon.Options{}, err
	}
	cls, err := cfg.Trace.ClassifierConfig()
	if err != nil {
		return daemon.Options{}, err
	}
	quota, err := cfg.Trace.QuotaBytes()
	if err != nil {
		return daemon.Options{}, err
	}
	mode, err := cfg.Trace.Mode()
	if err != nil {
		return daemon.Options{}, err
	}
	ring, err := cfg.Capture.RingBytes()
	if err != nil {
		return daemon.Options{}, err
	}
	block, err := cfg.Capture.BlockBytes()
	if err != nil {
		return daemon.Options{}, err
	}
	// One fanout group per interface; by default derived from the process
	// ID so two daemons on one host never share a group.
	base := uint16(cfg.Capture.FanoutGroup)
	if base == 0 {
		base = uint16(os.Getpid())
	}
	group := map[string]uint16{}
	for i, iface := range cfg.Capture.Interfaces {
		group[iface] = base + uint16(i)
	}
	decoder, err := cfg.Capture.DecoderConfig()
	if err != nil {
		return daemon.Options{}, err
	}
	live := capture.LiveConfig{
		UDPTunnelPorts: decoder.UDPTunnelPorts,
		Snaplen:        cfg.Capture.Snaplen,
		BlockSize:      int(block),
		NumBlocks:      int(ring / block),
		Promiscuous:    cfg.Capture.Promiscuous,
	}
	return daemon.Options{
		Interfaces: cfg.Capture.Interfaces,
		Workers:    cfg.Capture.Workers,
		Open: func(iface string, _, workers int) (daemon.Source, error) {
			lc := live
			lc.Interface = iface
			// A lone socket needs no group: the kernel would hash
			// every frame for nothing (about 10 % of the receive
			// path's cost on a veth), unless the operator shares the
			// group with other processes.
			if workers > 1 || cfg.Capture.FanoutGroup != 0 {
				lc.FanoutGroup = group[iface]
			}
			return capture.OpenLive(lc)
		},
		Decoder:     decoder,
		Table:       cfg.Trace.TableConfig(),
		Classifier:  cls,
		Trace:       tc,
		MemoryQuota: quota,
		CacheMode:   mode,
		Logger:      log,
		PortLabels:  portLabels(cfg.Exporter.PortLabels),
	}, nil
}

// runDaemon runs the daemon and its control socket until SIGINT/SIGTERM,
// reloading on SIGHUP (hup) with rl.
func runDaemon(parent context.Context, cfg *config.Config, opts daemon.Options, hup <-chan os.Signal, rl *reloader) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	usm, notifier, err := openSNMP(cfg.SNMP, opts.Logger)
	if err != nil {
		return err
	}
	fleet := cfg.Sensor.Fleet()
	opts.Fleet = &fleet
	set, err := openOutputs(cfg, fleet.Sensor, opts.Logger)
	if err != nil {
		return err
	}
	outs := &liveOutputs{set: set}
	// Stopped after the daemon: the records of the connections it
	// finishes at stop are delivered within output.flush_timeout.
	defer outs.Close()
	opts.OnClose = onClose(notifier, outs)
	rl.outs, rl.sensor = outs, fleet.Sensor // a reload reopens the file output first, and may replace the outputs
	d, err := daemon.New(opts)
	if err != nil {
		return err
	}
	opts.Logger.Info("tcptap running", "version", version, "interfaces", cfg.Capture.Interfaces,
		"workers", len(d.Stats()), "control_socket", cfg.Control.Socket, "trace", opts.Trace.Enabled,
		"snaplen", cfg.Capture.Snaplen, "ring_size", cfg.Capture.RingSize, "block_size", cfg.Capture.BlockSize,
		"promiscuous", cfg.Capture.Promiscuous, "pid", os.Getpid())
	ctlCtx, ctlStop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.LogDrops(ctlCtx, time.Minute) }()
	var ctlErr, httpErr error
	if cfg.Exporter.Listen != "" {
		reg := metrics.NewRegistry(d.MetricsSnapshot, metrics.Options{Version: version, PortLabels: opts.PortLabels})
		reg.MustRegister(outs)
		h := web.NewHandler(reg, d, web.Options{API: cfg.Exporter.API})
		srv, err := web.Listen(cfg.Exporter.Listen, h, cfg.Exporter.WebConfigFile, opts.Logger)
		if err != nil {
			ctlStop()
			return err
		}
		opts.Logger.Info("HTTP listening", "address", srv.Addr().String(), "web_config_file", cfg.Exporter.WebConfigFile, "api", cfg.Exporter.API)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if httpErr = srv.Serve(ctlCtx); httpErr != nil {
				opts.Logger.Error("HTTP", "err", httpErr)
			}
		}()
	}
	agent, err := startSNMP(ctlCtx, cfg.SNMP, usm, d, notifier, opts.Logger, &wg)
	if err != nil {
		ctlStop()
		wg.Wait()
		return err
	}
	if notifier != nil {
		wg.Add(1)
		go func() { defer wg.Done(); notifier.Run(ctlCtx) }()
	}
	// Reloads start here (a SIGHUP meanwhile waited in hup): from now on
	// Reload may rewrite *cfg, which nothing below reads.
	sock := cfg.Control.Socket
	rl.d = d
	rl.snmp = &snmpReloader{started: cfg.SNMP, usm: usm, agent: agent, n: notifier, log: opts.Logger}
	d.SetReload(rl.Reload) // tcptap reload: the same reload, audited with the caller's uid
	wg.Add(2)
	go func() { defer wg.Done(); reloadOnHangup(ctlCtx, hup, rl) }()
	go func() {
		defer wg.Done()
		if ctlErr = d.ServeControl(ctlCtx, sock); ctlErr != nil {
			opts.Logger.Error("control socket", "err", ctlErr)
			stop() // without a control socket the operator cannot reach the daemon
		}
	}()
	runErr := d.Run(ctx)
	ctlStop()
	wg.Wait()
	outs.Close()
	stopped := []any{"version", version}
	if err := errors.Join(runErr, ctlErr, httpErr); err != nil {
		stopped = append(stopped, "err", err.Error())
	}
	opts.Logger.Info("tcptap stopped", stopped...)
	if err := errors.Join(runErr, ctlErr, httpErr); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// portLabels turns exporter.port_labels into ports (validated to 1-65535 by
// the configuration; duplicates dropped).
func portLabels(ports []int) []uint16 {
	var out []uint16
	seen := map[int]bool{}
	for _, p := range ports {
		if p > 0 && p <= 65535 && !seen[p] {
			seen[p] = true
			out = append(out, uint16(p))
		}
	}
	return out
}

// openOutputs starts the record outputs of output.* (none configured: an
// empty set, whose Write does nothing).
func openOutputs(cfg *config.Config, sensor string, log *slog.Logger) (*output.Set, error) {
	ocfg, oopts, err := cfg.Output.Outputs(sensor)
	if err != nil {
		return nil, err
	}
	oopts.Logger = log
	outs, err := output.New(ocfg, oopts)
	if err != nil {
		return nil, err
	}
	for _, st := range outs.Stats() {
		log.Info("record output", "output", st.Name, "queue_bytes", st.QueueLimit, "records", cfg.Output.Records)
	}
	return outs, nil
}

// onClose is the daemon's hook for every finished connection: SNMP
// notifications of abnormal closes and the record outputs (which a reload
// may add, so they are always called).
func onClose(notifier *snmp.Notifier, outs *liveOutputs) func(rec *record.Record) {
	if notifier == nil {
		return outs.Write
	}
	return func(rec *record.Record) {
		notifier.AbnormalClose(rec)
		outs.Write(rec)
	}
}
