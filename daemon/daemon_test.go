package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/peers"
)

// startReplay runs a daemon whose single worker replays the sample capture.
func startReplay(t *testing.T, opts Options) (*Daemon, string) {
	t.Helper()
	return startReplayIdle(t, opts, 0)
}

// startReplayIdle is startReplay with an idle timeout (0: the default);
// with a long one, it returns once the replay is done.
func startReplayIdle(t *testing.T, opts Options, idle time.Duration) (*Daemon, string) {
	t.Helper()
	opts.Table.IdleTimeout = idle
	sample := filepath.Join(peers.ModuleRoot(t), "testdata", "sample.pcap")
	opts.Interfaces = []string{"replay"}
	opts.Workers = 1
	opts.Open = func(string, int, int) (Source, error) {
		src, err := capture.Open(sample)
		return &capture.Replay{Src: src}, err
	}
	// The sample's packets are older than the idle timeout by the wall
	// clock the workers tick with, so connections still open at its end
	// age out at once and reach the cache too.
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sock := filepath.Join(t.TempDir(), "control.sock")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.Run(ctx) }()
	go func() { defer wg.Done(); d.ServeControl(ctx, sock) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	// Wait until every connection of the sample reached the cache.
	deadline := time.Now().Add(10 * time.Second)
	want := 14
	if idle > 0 {
		want = 9 // the connections that ended with a RST or FINs
	}
	for d.Cache().Len() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return d, sock
}

func TestControlCommands(t *testing.T) {
	var persisted []config.TraceSettings
	d, sock := startReplay(t, Options{
		Trace:     flightrec.Config{Enabled: true},
		CacheMode: cache.All,
		Persist:   func(s config.TraceSettings) error { persisted = append(persisted, s); return nil },
	})
	call := func(req Request) (string, error) {
		out, err := Call(sock, &req)
		return string(out), err
	}
	out, err := call(Request{Cmd: "display cache-connection"})
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"RF", "ST", "RT", "PT", "KT", "AA", "SR", "RR", "AN", "PN"} {
		if !strings.Contains(out, "  "+code+" ") {
			t.Errorf("cache-connection lacks %s:\n%s", code, out)
		}
	}
	if out6, _ := call(Request{Cmd: "display cache-connection", Family: "ipv6"}); strings.Contains(out6, "10.201.0.1") || !strings.Contains(out6, "fd00:201::1") {
		t.Errorf("ipv6 view:\n%s", out6)
	}
	if out, err := call(Request{Cmd: "display cache-packet", Source: "10.201.0.1:20004", Destination: "10.201.0.2:45991", Last: 3}); err != nil || strings.Count(out, "\nPacket ") != 3 {
		t.Errorf("cache-packet --last 3: %v\n%s", err, out)
	}
	if out, err := call(Request{Cmd: "display information"}); err != nil || !strings.Contains(out, "Cached") {
		t.Errorf("information: %v\n%s", err, out)
	}

	// The vendor refuses filter changes while tracing is enabled.
	if _, err := call(Request{Cmd: "trace filter", Args: []string{"permit destination-port 80"}}); err == nil || !strings.Contains(err.Error(), "disable") {
		t.Errorf("filter change while enabled: %v", err)
	}
	if _, err := call(Request{Cmd: "trace max-packet-number", Args: []string{"4"}}); err == nil || !strings.Contains(err.Error(), "disable") {
		t.Errorf("max-packet-number while enabled: %v", err)
	}
	for _, req := range []Request{
		{Cmd: "trace disable"},
		{Cmd: "trace filter", Args: []string{"permit destination-port 80"}},
		{Cmd: "trace max-packet-number", Args: []string{"4"}},
		{Cmd: "trace memory-quota", Args: []string{"1MiB"}},
		{Cmd: "trace cache-mode", Args: []string{"abnormal-close"}},
		{Cmd: "trace enable"},
		{Cmd: "trace persist"},
	} {
		if _, err := call(req); err != nil {
			t.Errorf("%s %v: %v", req.Cmd, req.Args, err)
		}
	}
	if len(persisted) != 1 {
		t.Fatalf("persisted %d times", len(persisted))
	}
	p := persisted[0]
	if !p.Enabled || p.MaxPacketNumber != 4 || p.MemoryQuota != 1<<20 || p.CacheMode != cache.AbnormalClose || len(p.Filter) != 1 {
		t.Errorf("persisted %+v", p)
	}
	if _, err := call(Request{Cmd: "trace filter", Args: []string{"allow all"}}); err == nil {
		t.Error("bad rule accepted")
	}
	if _, err := call(Request{Cmd: "reset cache"}); err != nil {
		t.Fatal(err)
	}
	if out, _ := call(Request{Cmd: "display cache-connection"}); !strings.Contains(out, "(no connections)") {
		t.Errorf("after reset:\n%s", out)
	}
	if d.Quota().Used() != 0 {
		t.Errorf("quota holds %d bytes after reset with no live connections", d.Quota().Used())
	}
	if _, err := call(Request{Cmd: "no such thing"}); err == nil {
		t.Error("unknown command accepted")
	}
}

// TestOpenConnections lists connections still open from the workers: with
// an idle timeout longer than the sample's age, its last connections are
// still in the tables, and the listing judges them as of now.
func TestOpenConnections(t *testing.T) {
	d, _ := startReplayIdle(t, Options{CacheMode: cache.All}, 100*365*24*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recs, err := d.OpenConnections(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	byPort := map[uint16]string{}
	for _, r := range recs {
		byPort[r.Client.Port()] = string(r.Reason)
	}
	// 20010 is the sample's connection still open at its end; 20004 the
	// retransmission timeout, whose silence has lasted ever since.
	if byPort[20010] != "OP" || byPort[20004] != "RT" {
		t.Errorf("open connections by client port: %v", byPort)
	}
	if n, _ := d.OpenConnections(ctx, 1); len(n) != 1 {
		t.Errorf("max 1 gave %d records", len(n))
	}
}
