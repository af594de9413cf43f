//go:build linux

package web_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/internal/livelab"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/snmp"
)

// The paced transfer of TestLiveRatesWhileOpen: long enough for several
// 5-second rate windows entirely inside it.
const (
	paceRate     = 200_000 // payload bytes a second
	paceTick     = 10 * time.Millisecond
	paceDuration = 22 * time.Second
)

// TestLiveRatesWhileOpen (issue 16, counters as packets go): a live daemon
// captures on the mirror port of a netlab lab while the client sends to the
// server at 200 kB/s, paced by the sender, for 22 s on one connection. A
// real Prometheus server scraping the daemon every second sees
// rate(tcptap_payload_bytes_total[5s]) within 10 % of the paced throughput
// while the connection is open, and net-snmp's snmpget sees tcpInSegs and
// tcpOutSegs of the daemon's agent grow between polls, also while it is
// open. After the close, the payload counter equals the bytes sent.
func TestLiveRatesWhileOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a network lab, starts a Prometheus server and runs a 22 s transfer")
	}
	netlab.Require(t)
	bin := promtool(t, "prometheus")
	snmpget, err := exec.LookPath("snmpget")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("snmpget not found: install the Debian package snmp")
		}
		t.Skip("snmpget not found: install the Debian package snmp (apt-get install snmp) to run this test")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	lab := netlab.New(t, netlab.Options{})
	tap := lab.Tap
	if out, err := tap.Exec("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("lo up in %s: %v: %s", tap, err, out)
	}

	// The daemon, one worker on the mirror port; the server is the local
	// side, so TCP-MIB's in-segments are the client's data and its
	// out-segments the server's ACKs.
	d, err := daemon.New(daemon.Options{
		Interfaces: []string{netlab.ClientPort},
		Workers:    1,
		Open:       livelab.Open(tap, capture.LiveConfig{Promiscuous: true}, 0),
		Classifier: classifier.Config{LocalNets: []netip.Prefix{netip.PrefixFrom(lab.Server.Addr("tcp4"), 32)}},
		Table:      reassembly.Config{CloseLinger: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry(d.MetricsSnapshot, metrics.Options{Version: "test"})
	var srv *web.Server
	if err := tap.Do(func() error {
		var err error
		srv, err = web.Listen("127.0.0.1:0", web.Handler(reg, d), "", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The SNMP agent, on the test host's loopback.
	agent, err := snmp.New(config.SNMP{Communities: []config.Community{{Name: "public"}}}, d, snmp.Info{Version: "test", Start: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	go func() { done <- d.Run(dctx) }()
	go func() { done <- srv.Serve(dctx) }()
	go func() { done <- snmp.Serve(dctx, udp, agent) }()
	t.Cleanup(func() {
		dcancel()
		for range 3 {
			select {
			case err := <-done:
				if err != nil && dctx.Err() == nil {
					t.Errorf("daemon, web or agent: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("daemon, web or agent did not return within 10s of the cancel")
				return
			}
		}
	})

	prom := startPrometheus(t, bin, tap, srv.Addr().String())
	client := nsClient(tap)
	t.Cleanup(client.CloseIdleConnections)
	waitReady(ctx, t, client, prom)

	promQL := func(q string) string { return "http://" + prom + "/api/v1/query?" + url.Values{"query": {q}}.Encode() }
	// Prometheus has scraped the daemon a few times: a rate window inside
	// the transfer then holds its every-second samples.
	for scrapedQ := promQL(`count_over_time(tcptap_payload_bytes_total{job="tcptap",direction="client_to_server"}[1m])`); ; {
		got, err := query(ctx, client, scrapedQ)
		if n, _ := strconv.Atoi(got[""]); err == nil && n >= 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus never scraped the daemon three times: %v %v", got, err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The server reads everything; the client paces its writes.
	ln, err := lab.Server.ListenTCP("tcp4", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var received atomic.Int64
	readDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			readDone <- err
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		received.Store(n)
		readDone <- err
	}()
	conn, err := lab.Client.DialTCP(ctx, "tcp4", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sendDone := make(chan int64, 1)
	go func() {
		defer conn.Close()
		buf := make([]byte, paceRate*int(paceTick)/int(time.Second)*4)
		var sent int64
		tick := time.NewTicker(paceTick)
		defer tick.Stop()
		for now := start; now.Sub(start) < paceDuration; now = <-tick.C {
			// Catch up with the schedule after a late tick.
			due := int64(now.Sub(start).Seconds()*paceRate) - sent
			for due > 0 {
				n, err := conn.Write(buf[:min(due, int64(len(buf)))])
				sent += int64(n)
				due -= int64(n)
				if err != nil {
					sendDone <- sent
					return
				}
			}
		}
		sendDone <- sent
	}()
	t.Logf("lab, daemon and Prometheus up after %v; transfer started", start.Sub(began).Round(time.Millisecond))

	// While the connection is open: every second, the rate Prometheus
	// computes, and TCP-MIB's segment counters.
	rateQ := promQL(`sum(rate(tcptap_payload_bytes_total{job="tcptap",direction="client_to_server"}[5s]))`)
	closedQ := promQL(`sum(tcptap_connections_closed_total{job="tcptap"})`)
	var rates []float64
	var inSegs, outSegs []uint64
	for next := start.Add(time.Second); ; next = next.Add(time.Second) {
		time.Sleep(time.Until(next))
		el := time.Since(start)
		if el > paceDuration-500*time.Millisecond {
			break
		}
		in, out := tcpSegs(t, snmpget, udp.LocalAddr().String())
		inSegs, outSegs = append(inSegs, in), append(outSegs, out)
		// The first rate window entirely inside the transfer, with the
		// scrape that ends it: from 7 s on.
		if el < 7*time.Second {
			continue
		}
		got, err := query(ctx, client, rateQ)
		if err != nil {
			t.Fatalf("at %v: %v", el.Round(time.Millisecond), err)
		}
		r, err := strconv.ParseFloat(got[""], 64)
		if err != nil {
			t.Fatalf("rate %q: %v", got[""], err)
		}
		rates = append(rates, r)
		if c, err := query(ctx, client, closedQ); err != nil || c[""] != "0" {
			t.Fatalf("at %v: connections closed %v (%v), want none while the transfer runs", el.Round(time.Millisecond), c, err)
		}
	}
	t.Logf("rate(tcptap_payload_bytes_total[5s]) every second while open, B/s: %.0f", rates)
	t.Logf("tcpInSegs %v\ntcpOutSegs %v", inSegs, outSegs)
	if len(rates) < 10 {
		t.Fatalf("only %d rate samples while open", len(rates))
	}
	for i, r := range rates {
		if r < 0.9*paceRate || r > 1.1*paceRate {
			t.Errorf("rate sample %d: %.0f B/s, want within 10%% of %d B/s", i, r, paceRate)
		}
	}
	for i := 1; i < len(inSegs); i++ {
		if inSegs[i] <= inSegs[i-1] || outSegs[i] <= outSegs[i-1] {
			t.Errorf("poll %d: tcpInSegs %d -> %d, tcpOutSegs %d -> %d: want both to grow while the connection is open",
				i, inSegs[i-1], inSegs[i], outSegs[i-1], outSegs[i])
		}
	}

	// After the close, the counter is exactly the bytes sent.
	sent := <-sendDone
	if err := <-readDone; err != nil || received.Load() != sent {
		t.Fatalf("server read %d of %d bytes: %v", received.Load(), sent, err)
	}
	elapsed := time.Since(start)
	// The family counts the payload of every segment, retransmissions
	// included (as the records' bytes and tshark's tcp.len do), so a loaded
	// machine's occasional retransmission adds a segment's bytes: all the
	// bytes sent must be there, and little more.
	var payload, retransmitted uint64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		payload, retransmitted = 0, 0
		for _, w := range d.Stats() {
			c := w.Table.Segments.Direction(reassembly.Client)
			payload += c.PayloadBytes
			retransmitted += c.Retransmissions
		}
		if payload >= uint64(sent) || time.Now().After(deadline) {
			break
		}
	}
	if payload < uint64(sent) || payload > uint64(sent)+uint64(sent)/100 {
		t.Errorf("tcptap_payload_bytes_total{direction=client_to_server} %d, bytes sent %d (%d retransmissions)", payload, sent, retransmitted)
	}
	t.Logf("%d bytes in %v (%.0f B/s); test took %v", sent, elapsed.Round(time.Millisecond),
		float64(sent)/elapsed.Seconds(), time.Since(began).Round(time.Millisecond))
}

// tcpSegs reads tcpInSegs.0 and tcpOutSegs.0 with net-snmp's snmpget.
func tcpSegs(t *testing.T, snmpget, agent string) (in, out uint64) {
	t.Helper()
	cmd := exec.Command(snmpget, "-v2c", "-c", "public", "-On", "-Oqv", "-m", "", "-M", "/nonexistent",
		agent, ".1.3.6.1.2.1.6.10.0", ".1.3.6.1.2.1.6.11.0")
	cmd.Env = append(os.Environ(), "MIBS=", "SNMPCONFPATH=/nonexistent")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("snmpget: %v\n%s", err, b)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Fatalf("snmpget: %q", b)
	}
	var v [2]uint64
	for i := range f {
		if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
			t.Fatalf("snmpget: %q", b)
		}
	}
	return v[0], v[1]
}

// nsClient is an HTTP client whose connections are made in ns.
func nsClient(ns *netlab.Namespace) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := ns.Do(func() error {
					var err error
					c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
}
