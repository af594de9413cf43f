//go:build linux

package web_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/browser"
	"github.com/tcptap/tcptap/internal/livelab"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/scenarios"
	"github.com/tcptap/tcptap/reassembly"
)

// uiLiveScenarios die while TestUILiveInBrowser watches: a refused
// connection, a reset and a retransmission timeout (at risk first).
var uiLiveScenarios = []scenarios.Job{
	{Name: "RF-closed-port", Network: "tcp4"},
	{Name: "RR-server-abort", Network: "tcp6"},
	{Name: "RT-blackhole", Network: "tcp4"},
}

// TestUILiveInBrowser: a live daemon captures the mirror port of a netlab
// lab; its page, open in headless chromium before any connection exists,
// shows the RT connection among the open connections at risk while it
// retransmits, then lists every connection that died while the test ran,
// and the RT connection's page has its diagram and a pcap tshark reads.
func TestUILiveInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a network lab and starts chromium")
	}
	netlab.Require(t)
	b := browser.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab := netlab.New(t, scenarios.LabOptions())
	tap := lab.Tap
	d, err := daemon.New(daemon.Options{
		Interfaces: []string{netlab.ClientPort},
		Workers:    1,
		Open:       livelab.Open(tap, capture.LiveConfig{Promiscuous: true}, 0),
		Table:      reassembly.Config{IdleTimeout: liveIdle, CloseLinger: 200 * time.Millisecond},
		Trace:      flightrec.Config{Enabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The HTTP endpoint listens on the test's own loopback, where chromium
	// reaches it; only the capture is inside the lab.
	srv, err := web.Listen("127.0.0.1:0", web.Handler(metrics.NewRegistry(d.MetricsSnapshot, metrics.Options{Version: "test"}), d), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(context.Background())
	runDone, srvDone := make(chan error, 1), make(chan error, 1)
	go func() { runDone <- d.Run(dctx) }()
	go func() { srvDone <- srv.Serve(dctx) }()
	t.Cleanup(func() {
		dcancel()
		for _, ch := range []chan error{runDone, srvDone} {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Error("the daemon did not stop within 10 s")
			}
		}
	})
	base := "http://" + srv.Addr().String()
	b.Open(base + "/ui/")
	if n := browser.Eval[int](b, `document.querySelectorAll("table.conns tr[data-id]").length`); n != 0 {
		t.Fatalf("the page lists %d connections before any died", n)
	}
	b.Screenshot("sensor-live-before.png")

	// While the scenarios run, watch the page for the RT connection at risk.
	var atRisk atomic.Bool
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		client := &http.Client{Timeout: 5 * time.Second}
		for watchCtx.Err() == nil && !atRisk.Load() {
			if resp, err := client.Get(base + "/ui/"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), `<table class="atrisk">`) && strings.Contains(string(body), "<td>retransmitting</td>") {
					atRisk.Store(true)
				}
			}
			select {
			case <-watchCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	began := time.Now()
	exps, _ := scenarios.RunConcurrently(ctx, t, lab, uiLiveScenarios, 10*time.Second, 0)
	if t.Failed() {
		t.FailNow()
	}

	// Reload until every connection that died is listed with its reason.
	type row struct {
		Local, Foreign, Reason string
	}
	var rows []row
	for {
		b.Open(base + "/ui/")
		rows = browser.Eval[[]row](b, `Array.from(document.querySelectorAll("table.conns tr[data-id]")).map(tr => ({
			Local: tr.cells[1].textContent, Foreign: tr.cells[2].textContent, Reason: tr.querySelector("td.reason").textContent}))`)
		missing := 0
		for _, e := range exps {
			found := false
			for _, r := range rows {
				ends := r.Local + " " + r.Foreign
				if r.Reason == string(e.Reason) && strings.Contains(ends, e.Client.String()) && strings.Contains(ends, e.Server.String()) {
					found = true
				}
			}
			if !found {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after %v the page lists %v, not every one of %v", time.Since(began).Round(time.Millisecond), rows, exps)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopWatch()
	<-watched
	t.Logf("%d connections died and were listed %v after the scenarios began: %v", len(exps), time.Since(began).Round(time.Millisecond), rows)
	if !atRisk.Load() {
		t.Error("the page never showed the RT connection at risk (retransmitting) while it retransmitted")
	}
	b.Screenshot("sensor-live-after.png")
	checkRTPage(t, b)
}
