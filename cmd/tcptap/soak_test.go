//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/peers"
)

// Soak parameters. CI runs 3 minutes; scripts/soak.sh sets
// TCPTAP_SOAK_DURATION (10m or more) and TCPTAP_SOAK_RATE.
const (
	soakDefaultDuration = 3 * time.Minute
	soakDefaultRate     = 100 // connections a second
	soakWarmup          = 60 * time.Second
	soakSampleEvery     = 5 * time.Second
	soakAbortEvery      = 10 // every 10th connection is aborted (RST): SR
)

// parseMetrics parses the Prometheus text format's samples.
func parseMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// sumPrefix adds the samples whose series starts with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if k == prefix || strings.HasPrefix(k, prefix+"{") {
			s += v
		}
	}
	return s
}

// slope is the least-squares slope of ys over xs (per unit of x).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", key, v, err)
		}
		return d
	}
	return def
}

// TestSoak runs the real tcptap binary on a lab's mirror port with tracing
// on while real connections churn through the lab for TCPTAP_SOAK_DURATION
// (3 minutes by default): every tenth aborted with a RST (SR), the others
// closed by the client (AN). Sampled every 5 s from /metrics after a warm-up
// (the trace quota fills, the table reaches its steady size), the resident
// memory, goroutines and open files stay flat (their slopes are logged and
// bounded), the kernel drops nothing, and after the churn stops the
// counters add up: opened = closed + still tracked, and the closes by
// reason equal what the clients did.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak of minutes")
	}
	netlab.Require(t)
	dur := envDuration(t, "TCPTAP_SOAK_DURATION", soakDefaultDuration)
	rate := soakDefaultRate
	if v := os.Getenv("TCPTAP_SOAK_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5000 {
			t.Fatalf("TCPTAP_SOAK_RATE=%q: want 1 to 5000 connections a second", v)
		}
		rate = n
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tcptap")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tcptap")
	build.Dir = peers.ModuleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lab := netlab.New(t, netlab.Options{})
	if out, err := lab.Tap.Exec("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("lo up in %s: %v: %s", lab.Tap, err, out)
	}
	sock := filepath.Join(dir, "control.sock")
	cfgFile := filepath.Join(dir, "tcptap.yaml")
	// A small quota, so the cache of aborted connections fills it during
	// the warm-up and memory can be flat afterwards (the cache keeps what
	// it holds until reset); a ring of 128 small blocks, each written (made
	// resident) by the kernel within the warm-up and together enough for a
	// worker descheduled for a while on a loaded machine; a short linger, so
	// the table's size settles fast.
	cfgText := fmt.Sprintf(`capture:
  interfaces: [%s]
  workers: 1
  ring_size: 32MiB
  block_size: 256KiB
trace:
  enable: true
  memory_quota: 1MiB
  close_linger: 1s
exporter:
  listen: "127.0.0.1:19913"
snmp:
  listen: []
control:
  socket: %s
`, netlab.ClientPort, sock)
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, log, exited := startSensor(t, lab.Tap, bin, cfgFile)
	httpc := httpIn(lab.Tap)
	metricsAt := func() (map[string]float64, error) {
		resp, err := httpc.Get("http://127.0.0.1:19913/metrics")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return parseMetrics(resp.Body), nil
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := httpc.Get("http://127.0.0.1:19913/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 15s: %v\n%s", err, log.String())
		}
	}

	// The server: accept, read until the client closes or aborts, close.
	ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var srvWG sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srvWG.Add(1)
			go func() {
				defer srvWG.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	addr := ln.Addr().String()

	// The clients: rate connections a second, each a request and its echo,
	// then a close (AN) or, every tenth, an abort (SR).
	var normal, aborted, failed atomic.Uint64
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	one := func(i int) {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		c, err := lab.Client.DialTCP(dctx, "tcp4", addr, netlab.DialOptions{})
		if err != nil {
			failed.Add(1)
			return
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte("GET / soak\n")
		if _, err := c.Write(msg); err != nil {
			c.Close()
			failed.Add(1)
			return
		}
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			c.Close()
			failed.Add(1)
			return
		}
		if i%soakAbortEvery == 0 {
			c.SetLinger(0)
			c.Close()
			aborted.Add(1)
			return
		}
		c.Close()
		normal.Add(1)
	}
	var cliWG sync.WaitGroup
	cliWG.Add(1)
	go func() {
		defer cliWG.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		sem := make(chan struct{}, 64) // at most 64 connections at once
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			cliWG.Add(1)
			go func() { defer cliWG.Done(); defer func() { <-sem }(); one(i) }()
		}
	}()

	// Samples after the warm-up.
	type sample struct{ at, rss, heap, goroutines, fds, tracked float64 }
	var samples []sample
	began := time.Now()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(soakSampleEvery):
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("tcptap exited during the soak: %v\n%s", err, log.String())
		default:
		}
		m, err := metricsAt()
		if err != nil {
			t.Errorf("scrape: %v", err)
			continue
		}
		if time.Since(began) < soakWarmup {
			continue
		}
		samples = append(samples, sample{
			at: time.Since(began).Minutes(), rss: m["process_resident_memory_bytes"], heap: m["go_memstats_heap_inuse_bytes"], goroutines: m["go_goroutines"],
			fds: m["process_open_fds"], tracked: m["tcptap_connections_tracked"],
		})
	}
	cliWG.Wait()
	ln.Close()
	srvWG.Wait()
	made := normal.Load() + aborted.Load()
	t.Logf("%s at %d/s: %d connections (%d closed, %d aborted, %d failed)", dur, rate, made, normal.Load(), aborted.Load(), failed.Load())
	if made < uint64(float64(rate)*dur.Seconds()*0.8) {
		t.Errorf("only %d connections made in %s at %d/s", made, dur, rate)
	}
	if len(samples) < 4 {
		t.Fatalf("%d samples after the warm-up: run longer than %s", len(samples), soakWarmup)
	}
	xs := make([]float64, len(samples))
	col := func(f func(sample) float64) (ys []float64, lo, hi float64) {
		lo, hi = math.Inf(1), math.Inf(-1)
		for i, s := range samples {
			xs[i] = s.at
			v := f(s)
			ys = append(ys, v)
			lo, hi = min(lo, v), max(hi, v)
		}
		return ys, lo, hi
	}
	rss, rssLo, rssHi := col(func(s sample) float64 { return s.rss })
	heap, heapLo, heapHi := col(func(s sample) float64 { return s.heap })
	gor, gorLo, gorHi := col(func(s sample) float64 { return s.goroutines })
	fds, fdsLo, fdsHi := col(func(s sample) float64 { return s.fds })
	_, trLo, trHi := col(func(s sample) float64 { return s.tracked })
	rssSlope, gorSlope, fdsSlope := slope(xs, rss), slope(xs, gor), slope(xs, fds)
	t.Logf("after %s of warm-up, %d samples: RSS %.1f-%.1f MiB (slope %+.2f MiB/min), Go heap in use %.1f-%.1f MiB (slope %+.2f MiB/min), goroutines %.0f-%.0f (slope %+.2f/min), open files %.0f-%.0f (slope %+.2f/min), tracked %.0f-%.0f",
		soakWarmup, len(samples), rssLo/(1<<20), rssHi/(1<<20), rssSlope/(1<<20), heapLo/(1<<20), heapHi/(1<<20), slope(xs, heap)/(1<<20), gorLo, gorHi, gorSlope, fdsLo, fdsHi, fdsSlope, trLo, trHi)
	// Flat: RSS within 2 MiB a minute of slope and an 8 MiB band (the
	// garbage collector's swing over a few minutes); goroutines and open
	// files within a few of each other (a leak per connection would be
	// thousands).
	if math.Abs(rssSlope) > 2<<20 || rssHi-rssLo > 8<<20 {
		t.Errorf("RSS %.1f-%.1f MiB, slope %+.2f MiB/min: not flat", rssLo/(1<<20), rssHi/(1<<20), rssSlope/(1<<20))
	}
	if gorHi-gorLo > 5 {
		t.Errorf("goroutines %.0f-%.0f, slope %+.2f/min: not flat", gorLo, gorHi, gorSlope)
	}
	if fdsHi-fdsLo > 3 {
		t.Errorf("open files %.0f-%.0f, slope %+.2f/min: not flat", fdsLo, fdsHi, fdsSlope)
	}

	// The churn stopped: once every connection left the table (linger 1 s)
	// the counters add up.
	var m map[string]float64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if m, err = metricsAt(); err != nil {
			t.Fatal(err)
		}
		if m["tcptap_connections_tracked"] == 0 || time.Now().After(deadline) {
			break
		}
	}
	opened, tracked := m["tcptap_connections_opened_total"], m["tcptap_connections_tracked"]
	closed := sumPrefix(m, "tcptap_connections_closed_total")
	an, sr := m[`tcptap_connections_closed_total{reason="AN"}`], m[`tcptap_connections_closed_total{reason="SR"}`]
	drops := sumPrefix(m, "tcptap_capture_kernel_drops_total")
	t.Logf("opened %.0f, closed %.0f (AN %.0f, SR %.0f), tracked %.0f, kernel drops %.0f; clients: %d closed, %d aborted",
		opened, closed, an, sr, tracked, drops, normal.Load(), aborted.Load())
	if drops != 0 {
		t.Errorf("kernel drops: %.0f", drops)
	}
	if opened != closed+tracked {
		t.Errorf("opened %.0f != closed %.0f + tracked %.0f", opened, closed, tracked)
	}
	if an != float64(normal.Load()) || sr != float64(aborted.Load()) {
		t.Errorf("closes AN %.0f SR %.0f, want the clients' %d closes and %d aborts (by reason: %v)", an, sr, normal.Load(), aborted.Load(), closedByReason(m))
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("tcptap exited: %v\n%s", err, log.String())
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("no exit within 15s of SIGTERM")
	}
}

// closedByReason lists the nonzero closes by reason.
func closedByReason(m map[string]float64) string {
	var parts []string
	for k, v := range m {
		if r, ok := strings.CutPrefix(k, `tcptap_connections_closed_total{reason="`); ok && v != 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimSuffix(r, `"}`), v))
		}
	}
	return strings.Join(parts, ", ")
}
