package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/peers"
)

// logLines returns the JSON log lines of logs whose msg is msg.
func logLines(t *testing.T, logs *peers.Output, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Every command that changes the daemon, sent over the control socket,
// logs one line with what changed and the peer's uid and pid as the
// kernel gives them (SO_PEERCRED); a refused one logs why; displays log
// nothing.
func TestControlAudit(t *testing.T) {
	var logs peers.Output
	_, sock := startReplay(t, Options{
		Trace:     flightrec.Config{Enabled: true},
		CacheMode: cache.All,
		Logger:    slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	for _, req := range []Request{
		{Cmd: "display information"},
		{Cmd: "trace disable"},
		{Cmd: "trace filter", Args: []string{"permit destination-port 80"}},
		{Cmd: "trace enable"},
		{Cmd: "trace max-packet-number", Args: []string{"10"}}, // refused: tracing is enabled
		{Cmd: "reset cache"},
	} {
		Call(sock, &req)
	}
	ok := logLines(t, &logs, "operator action")
	if len(ok) != 4 {
		t.Fatalf("%d audit lines, want 4 (disable, filter, enable, reset): %v", len(ok), ok)
	}
	want := []struct{ action, changed string }{
		{"trace disable", "enabled: true -> false"},
		{"trace filter", `filter: [] -> ["permit destination-port 80"]`},
		{"trace enable", "enabled: false -> true"},
		{"reset cache", "cache cleared (14 connections)"},
	}
	for i, w := range want {
		l := ok[i]
		if l["action"] != w.action || l["changed"] != w.changed {
			t.Errorf("line %d: action %v changed %v, want %q %q", i, l["action"], l["changed"], w.action, w.changed)
		}
		if l["via"] != "control" || l["uid"] != float64(os.Getuid()) || l["pid"] != float64(os.Getpid()) {
			t.Errorf("line %d: via %v uid %v pid %v, want control, uid %d, pid %d", i, l["via"], l["uid"], l["pid"], os.Getuid(), os.Getpid())
		}
	}
	failed := logLines(t, &logs, "operator action failed")
	if len(failed) != 1 || failed[0]["action"] != "trace max-packet-number" || !strings.Contains(failed[0]["err"].(string), "tracing is enabled") {
		t.Errorf("failed lines: %v", failed)
	}
}

// The vendor's "display tcp trace cache-connection ip" is the IPv4 table.
func TestCacheConnectionIP(t *testing.T) {
	_, sock := startReplay(t, Options{CacheMode: cache.All})
	ip, err := Call(sock, &Request{Cmd: "display cache-connection", Family: "ip"})
	if err != nil {
		t.Fatal(err)
	}
	v4, err := Call(sock, &Request{Cmd: "display cache-connection", Family: "ipv4"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ip, v4) || len(ip) == 0 {
		t.Errorf("ip:\n%s\nipv4:\n%s", ip, v4)
	}
	if _, err := Call(sock, &Request{Cmd: "display cache-connection", Family: "ipx"}); err == nil {
		t.Error("family ipx accepted")
	}
}

// A reload applies the file's trace settings within the vendor's rules.
func TestApplyTrace(t *testing.T) {
	var logs peers.Output
	d, _ := startReplay(t, Options{
		Trace:     flightrec.Config{Enabled: true, MaxPacketNumber: 100},
		CacheMode: cache.AbnormalClose,
		Logger:    slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	base := d.Settings()
	who := Actor{"via", "signal", "signal", "SIGHUP"}

	// Enabled before and after: the filter and max-packet-number are
	// kept, cache-mode applies.
	want := base
	want.Filter, want.MaxPacketNumber, want.CacheMode = []string{"permit destination-port 443"}, 7, cache.All
	changed, kept := d.ApplyTrace(want, who)
	if changed != "cache-mode: abnormal-close -> all" || strings.Join(kept, ",") != "trace.filter,trace.max_packet_number" {
		t.Errorf("changed %q kept %q", changed, kept)
	}
	if s := d.Settings(); len(s.Filter) != 0 || s.MaxPacketNumber != 100 || s.CacheMode != cache.All {
		t.Errorf("settings %+v", s)
	}
	if d.Cache().Mode() != cache.All {
		t.Error("cache mode not applied")
	}
	// A file that disables tracing gets everything applied.
	want.Enabled = false
	changed, kept = d.ApplyTrace(want, who)
	if kept != nil || !strings.Contains(changed, "enabled: true -> false") || !strings.Contains(changed, "max-packet-number: 100 -> 7") {
		t.Errorf("changed %q kept %q", changed, kept)
	}
	if s := d.Settings(); s.Enabled || s.MaxPacketNumber != 7 || len(s.Filter) != 1 {
		t.Errorf("settings %+v", s)
	}
	// The same file again changes nothing and logs no action.
	n := len(logLines(t, &logs, "operator action"))
	if changed, _ := d.ApplyTrace(want, who); changed != "nothing" {
		t.Errorf("changed %q", changed)
	}
	if len(logLines(t, &logs, "operator action")) != n {
		t.Error("an unchanged reload logged an operator action")
	}
	if w := logLines(t, &logs, "operator action"); len(w) == 0 || w[0]["via"] != "signal" {
		t.Errorf("reload audit lines: %v", w)
	}
}

// Ready while the workers read; not once they stopped.
func TestReady(t *testing.T) {
	d, err := New(Options{Interfaces: []string{"idle"}, Workers: 2, Open: func(string, int, int) (Source, error) { return idleSource{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ready(context.Background()); err == nil {
		t.Error("ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("not ready while running: %v", err)
	}
	cancel()
	<-done
	if err := d.Ready(context.Background()); err == nil {
		t.Error("ready after the workers stopped")
	}
}

// idleSource never has a frame: each Next waits a poll timeout.
type idleSource struct{}

func (idleSource) Next() (capture.Frame, error) {
	time.Sleep(20 * time.Millisecond)
	return capture.Frame{}, capture.ErrTimeout
}
func (idleSource) Close() error { return nil }

// droppingSource is an idle source whose kernel statistics count drops:
// 5 more at each call.
type droppingSource struct {
	idleSource
	drops atomic.Uint64
}

func (s *droppingSource) Stats() (capture.LiveStats, error) {
	n := s.drops.Add(5)
	return capture.LiveStats{Packets: n, Drops: n, QueueFreezes: n / 5}, nil
}

// Kernel drops are logged at most once per interval, with the drops and
// freezes of that interval; none while nothing drops.
func TestLogDrops(t *testing.T) {
	var logs peers.Output
	src := &droppingSource{}
	d, err := New(Options{Interfaces: []string{"eth9"}, Workers: 1, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Open: func(string, int, int) (Source, error) { return src, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.Run(ctx) }()
	go func() { defer wg.Done(); d.LogDrops(ctx, 300*time.Millisecond) }()
	time.Sleep(1100 * time.Millisecond)
	cancel()
	wg.Wait()
	lines := logLines(t, &logs, "capture: kernel dropped packets (raise capture.ring_size or capture.workers)")
	// The worker publishes every 20-50 ms, so every interval has drops:
	// 3 intervals in 1.1 s, at most 3 lines.
	if len(lines) < 2 || len(lines) > 3 {
		t.Fatalf("%d drop lines in 1.1 s at a 300 ms interval, want 2 or 3: %v", len(lines), lines)
	}
	for _, l := range lines {
		if l["interface"] != "eth9" || l["drops"].(float64) <= 0 || l["ring_freezes"] == nil || l["interval"] != "300ms" {
			t.Errorf("drop line: %v", l)
		}
	}
}
