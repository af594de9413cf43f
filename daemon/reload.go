package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tcptap/tcptap/config"
)

// ApplyTrace applies the trace settings of a reloaded configuration file
// as an operator's commands would, within the vendor's rules: the filter,
// only-new-connection, max-packet-number and memory-quota change only
// while tracing is disabled. So a file that disables tracing has them
// applied (tracing is turned off first); a file that enables it has them
// applied before tracing is turned on; but while tracing is enabled
// before and after, they are kept as they run, and ApplyTrace names them
// in kept. cache-mode and enable always apply. It logs one audit line for
// who when anything changed, and returns what changed (SettingsDiff's
// form) and the settings kept.
func (d *Daemon) ApplyTrace(want config.TraceSettings, who Actor) (changed string, kept []string) {
	var before, after config.TraceSettings
	err := d.update(false, func(s *config.TraceSettings) error {
		before = *s
		restricted := !slices.Equal(s.Filter, want.Filter) || s.OnlyNewConnection != want.OnlyNewConnection ||
			s.MaxPacketNumber != want.MaxPacketNumber || s.MemoryQuota != want.MemoryQuota
		if restricted && s.Enabled && want.Enabled {
			if !slices.Equal(s.Filter, want.Filter) {
				kept = append(kept, "trace.filter")
			}
			if s.OnlyNewConnection != want.OnlyNewConnection {
				kept = append(kept, "trace.only_new_connection")
			}
			if s.MaxPacketNumber != want.MaxPacketNumber {
				kept = append(kept, "trace.max_packet_number")
			}
			if s.MemoryQuota != want.MemoryQuota {
				kept = append(kept, "trace.memory_quota")
			}
		} else {
			s.Filter = append([]string(nil), want.Filter...)
			s.OnlyNewConnection = want.OnlyNewConnection
			s.MaxPacketNumber = want.MaxPacketNumber
			s.MemoryQuota = want.MemoryQuota
		}
		s.Enabled, s.CacheMode = want.Enabled, want.CacheMode
		after = *s
		return nil
	})
	if err != nil {
		// The file validated, so its filter parses; keep the running
		// settings if it somehow does not.
		d.log.Error("reload: trace settings not applied", "err", err.Error())
		return "nothing", nil
	}
	changed = SettingsDiff(before, after)
	if changed != "nothing" {
		d.log.Info("operator action", append([]any{"action", "reload trace", "changed", changed}, who...)...)
	}
	if len(kept) > 0 {
		d.log.Warn("reload: not applied while tracing is enabled (disable tracing in the file, or run 'tcptap trace disable', then reload)",
			append([]any{"keys", kept}, who...)...)
	}
	return changed, kept
}

// Ready reports whether every capture worker is reading its socket: each
// answers a no-op query at its next sync (within 50 ms while it runs), so
// a worker that stopped, or a daemon not yet running, is not ready.
func (d *Daemon) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := d.ask(ctx, func(*worker, int64) any { return nil }); err != nil {
		return fmt.Errorf("capture workers not reading: %w", err)
	}
	return nil
}

// LogDrops logs, at most once per interval, the kernel drops and ring
// freezes of each interface's capture sockets since the last line, until
// ctx is done.
func (d *Daemon) LogDrops(ctx context.Context, interval time.Duration) {
	type counts struct{ drops, freezes uint64 }
	sum := func() map[string]counts {
		m := map[string]counts{}
		for _, s := range d.Stats() {
			c := m[s.Interface]
			c.drops += s.Kernel.Drops
			c.freezes += s.Kernel.QueueFreezes
			m[s.Interface] = c
		}
		return m
	}
	last := sum()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := sum()
		for _, iface := range d.opts.Interfaces {
			n, l := now[iface], last[iface]
			if n.drops > l.drops || n.freezes > l.freezes {
				d.log.Warn("capture: kernel dropped packets (raise capture.ring_size or capture.workers)",
					"interface", iface, "drops", n.drops-l.drops, "ring_freezes", n.freezes-l.freezes,
					"interval", interval.String(), "drops_total", n.drops)
			}
		}
		last = now
	}
}
