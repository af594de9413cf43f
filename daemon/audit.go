package daemon

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/tcptap/tcptap/config"
)

// Actor says who asked for an operator action, as slog key-value pairs:
// "via", "control", "uid", 1000, "pid", 4242 for the control socket's
// peer; "via", "reload", "signal", "SIGHUP" for a reload.
type Actor []any

// PeerActor identifies the process at the other end of a control socket
// connection by its credentials (SO_PEERCRED: the kernel's, not the
// client's word).
func PeerActor(conn net.Conn) Actor {
	uid, gid, pid, err := peerCred(conn)
	if err != nil {
		return Actor{"via", "control", "peer", "unknown (" + err.Error() + ")"}
	}
	return Actor{"via", "control", "uid", uid, "gid", gid, "pid", pid}
}

// mutating reports whether a control command changes the daemon: those
// are audited.
func mutating(cmd string) bool {
	return strings.HasPrefix(cmd, "trace ") || cmd == "reset cache"
}

// SetReload sets what the "reload" command runs (tcptap run's reload of
// its configuration file); it logs its own audit lines with who.
func (d *Daemon) SetReload(fn func(who Actor) error) {
	d.mu.Lock()
	d.reload = fn
	d.mu.Unlock()
}

// HandleAs executes one request for who and, when the request changes
// anything, logs one audit line: the command, its arguments, what changed
// and who asked.
func (d *Daemon) HandleAs(req *Request, who Actor) ([]byte, error) {
	if req.Cmd == "reload" {
		d.mu.Lock()
		fn := d.reload
		d.mu.Unlock()
		if fn == nil {
			return nil, errors.New("reload: this daemon has no configuration file to reload")
		}
		return nil, fn(who)
	}
	if !mutating(req.Cmd) {
		return d.Handle(req)
	}
	before, cached := d.Settings(), d.cache.Len()
	out, err := d.Handle(req)
	args := []any{"action", req.Cmd}
	if len(req.Args) > 0 {
		args = append(args, "args", req.Args)
	}
	switch {
	case err != nil:
	case req.Cmd == "reset cache":
		args = append(args, "changed", fmt.Sprintf("cache cleared (%d connections)", cached))
	case req.Cmd == "trace persist":
		args = append(args, "changed", "trace settings written to the configuration file")
	default:
		args = append(args, "changed", SettingsDiff(before, d.Settings()))
	}
	args = append(args, who...)
	if err != nil {
		d.log.Warn("operator action failed", append(args, "err", err.Error())...)
	} else {
		d.log.Info("operator action", args...)
	}
	return out, err
}

// SettingsDiff describes what differs from a to b, such as "enabled:
// false -> true; cache-mode: abnormal-close -> all", or "nothing".
func SettingsDiff(a, b config.TraceSettings) string {
	var parts []string
	add := func(name string, x, y any) {
		parts = append(parts, fmt.Sprintf("%s: %v -> %v", name, x, y))
	}
	if a.Enabled != b.Enabled {
		add("enabled", a.Enabled, b.Enabled)
	}
	if !slices.Equal(a.Filter, b.Filter) {
		add("filter", fmt.Sprintf("%q", a.Filter), fmt.Sprintf("%q", b.Filter))
	}
	if a.OnlyNewConnection != b.OnlyNewConnection {
		add("only-new-connection", a.OnlyNewConnection, b.OnlyNewConnection)
	}
	if a.MaxPacketNumber != b.MaxPacketNumber {
		add("max-packet-number", a.MaxPacketNumber, b.MaxPacketNumber)
	}
	if a.MemoryQuota != b.MemoryQuota {
		add("memory-quota", config.FormatSize(a.MemoryQuota), config.FormatSize(b.MemoryQuota))
	}
	if a.CacheMode != b.CacheMode {
		add("cache-mode", a.CacheMode, b.CacheMode)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}
