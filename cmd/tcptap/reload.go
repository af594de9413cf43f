package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/viper"

	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/output"
)

// logLevel is the running daemon's log level (log.level), which a reload
// changes.
var logLevel = new(slog.LevelVar)

// newLogger returns the daemon's logger on standard error in log.format at
// log.level (validated by the configuration).
func newLogger(l config.Log) *slog.Logger {
	lv, err := l.SlogLevel()
	if err != nil {
		lv = slog.LevelInfo
	}
	logLevel.Set(lv)
	opts := &slog.HandlerOptions{Level: logLevel}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// runtimeKeys are the configuration keys a reload applies to the running
// daemon; a change of any other key is logged as needing a restart.
var runtimeKeys = map[string]bool{
	"trace.enable": true, "trace.filter": true, "trace.only_new_connection": true,
	"trace.max_packet_number": true, "trace.memory_quota": true, "trace.cache_mode": true,
	"log.level": true, "exporter.port_labels": true,
}

// reloader re-reads the configuration and applies it to the running daemon.
type reloader struct {
	v   *viper.Viper
	mu  *sync.Mutex    // guards *cfg, shared with 'trace persist'
	cfg *config.Config // the running configuration
	// started is the configuration the daemon started with: what keys
	// that need a restart are compared with.
	started config.Config
	d       *daemon.Daemon
	snmp    *snmpReloader // nil until the SNMP agent and notifier run
	outs    *liveOutputs  // the record outputs; nil until they run
	sensor  string        // the records' sensor name (sensor.name needs a restart)
	log     *slog.Logger
}

// Reload is the single entry point of a reload (SIGHUP): it re-reads the
// configuration file (with the same environment and flags over it) and
// applies what can change at run time: the trace settings (within the
// vendor's rules, see daemon.ApplyTrace), log.level, and the SNMP agent's
// communities, views, users, trap targets and authentication traps (see
// snmpReloader). A file that does not load or validate changes nothing
// and the error is logged and returned; keys that need a restart (capture,
// listeners, the SNMP engine, ...) are logged as such and left running as
// they are.
func (r *reloader) Reload(who daemon.Actor) error {
	// One reload at a time (SIGHUP and 'tcptap reload' may cross), and
	// none while 'trace persist' writes the file.
	r.mu.Lock()
	defer r.mu.Unlock()
	// Whatever the file says, the file output reopens its file: logrotate's
	// postrotate sends SIGHUP after moving or truncating it.
	if r.outs != nil {
		r.outs.Reopen()
		r.log.Info("reload: reopened the record file output", who...)
	}
	next, err := loadConfig(r.v)
	if err == nil {
		err = checkRuntime(&next)
	}
	if err != nil {
		r.log.Error("reload refused: the running configuration stays", append([]any{"action", "reload", "err", err.Error()}, who...)...)
		return fmt.Errorf("reload: %w", err)
	}
	var restart, snmpChanged, outputChanged []string
	snmpOK := r.snmp.applicable(next.SNMP)
	for _, k := range config.Keys() {
		switch {
		case runtimeKeys[k.Name]:
		case strings.HasPrefix(k.Name, "output.") && r.outs != nil:
			if !reflect.DeepEqual(k.Ptr(r.cfg), k.Ptr(&next)) {
				outputChanged = append(outputChanged, k.Name)
			}
		case snmpOK[k.Name]:
			if !reflect.DeepEqual(k.Ptr(r.cfg), k.Ptr(&next)) {
				snmpChanged = append(snmpChanged, k.Name)
			}
		case !reflect.DeepEqual(k.Ptr(&r.started), k.Ptr(&next)):
			restart = append(restart, k.Name)
		}
	}
	// The new outputs are opened first: a file that cannot work refuses
	// the whole reload before anything changed.
	var newOutputs *output.Set
	if len(outputChanged) > 0 {
		set, err := openOutputs(&next, r.sensor, r.log)
		if err != nil {
			r.log.Error("reload refused: the running configuration stays", append([]any{"action", "reload", "err", err.Error()}, who...)...)
			return fmt.Errorf("reload: %w", err)
		}
		newOutputs = set
	}
	if len(snmpChanged) > 0 {
		if err := r.snmp.apply(next.SNMP); err != nil {
			newOutputs.Close()
			r.log.Error("reload refused: the running configuration stays", append([]any{"action", "reload", "err", err.Error()}, who...)...)
			return fmt.Errorf("reload: %w", err)
		}
		// The keys, not their values: communities and passwords are secrets.
		r.log.Info("operator action", append([]any{"action", "reload snmp", "changed", snmpChanged}, who...)...)
	}
	if newOutputs != nil {
		// The new outputs run already; the old ones deliver what they
		// hold (output.flush_timeout) once no worker writes into them.
		r.outs.swap(newOutputs).Close()
		r.log.Info("operator action", append([]any{"action", "reload outputs", "changed", outputChanged}, who...)...)
	}
	if !slices.Equal(r.cfg.Exporter.PortLabels, next.Exporter.PortLabels) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.d.SetPortLabels(ctx, portLabels(next.Exporter.PortLabels))
		cancel()
		if err != nil {
			r.log.Error("reload: port labels not applied", append([]any{"action", "reload", "err", err.Error()}, who...)...)
		} else {
			r.log.Info("operator action", append([]any{"action", "reload port labels", "changed", fmt.Sprintf("exporter.port_labels: %v -> %v", r.cfg.Exporter.PortLabels, next.Exporter.PortLabels)}, who...)...)
		}
	}
	if r.cfg.Log.Level != next.Log.Level {
		lv, _ := next.Log.SlogLevel()
		logLevel.Set(lv)
		r.log.Info("operator action", append([]any{"action", "reload log", "changed", fmt.Sprintf("log.level: %s -> %s", r.cfg.Log.Level, next.Log.Level)}, who...)...)
	}
	quota, _ := next.Trace.QuotaBytes()
	mode, _ := next.Trace.Mode()
	changed, kept := r.d.ApplyTrace(config.TraceSettings{
		Enabled: next.Trace.Enable, Filter: next.Trace.Filter, OnlyNewConnection: next.Trace.OnlyNewConnection,
		MaxPacketNumber: next.Trace.MaxPacketNumber, MemoryQuota: quota, CacheMode: mode,
	}, who)
	if len(restart) > 0 {
		r.log.Warn("reload: changed keys take effect only after a restart", append([]any{"keys", restart}, who...)...)
	}
	// The running configuration is now the file's, for what 'trace
	// persist' writes back: the other trace keys as the file has them (the
	// runtime settings come from the daemon, as they run).
	*r.cfg = next
	r.log.Info("reloaded", append([]any{"action", "reload", "trace", changed, "kept_while_enabled", kept, "snmp", snmpChanged, "outputs", outputChanged, "restart_needed", restart}, who...)...)
	return nil
}

// checkRuntime parses what Reload applies (Validate has checked it).
func checkRuntime(c *config.Config) error {
	if _, err := c.Trace.TraceConfig(); err != nil {
		return err
	}
	if _, err := c.Trace.QuotaBytes(); err != nil {
		return err
	}
	_, err := c.Trace.Mode()
	return err
}

// reloadOnHangup calls r.Reload on every SIGHUP until ctx is done. The
// signal is caught from before the daemon starts, so a SIGHUP never kills
// it.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, r *reloader) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.Reload(daemon.Actor{"via", "signal", "signal", "SIGHUP"})
		}
	}
}

// notifyHangup starts catching SIGHUP; stop with signal.Stop.
func notifyHangup() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}
