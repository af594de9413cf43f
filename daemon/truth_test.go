//go:build linux

package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/scenarios"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/record"
)

// getJSON decodes the JSON body of a GET of url into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestLiveTruth runs the daemon on the tap's bridge port, with the Linux
// stack's default retransmission settings (tcp_retries2 = 15), while
// connections suffer faults they survive — a path blackholed for seconds
// and healed, a zero window held for seconds and released, keepalives over
// an idle period — and one that kills them only after the kernel's long
// retries (a permanent blackhole, ended by TCP_USER_TIMEOUT). While each
// fault holds, the connection must be open in the daemon's table, shown at
// risk with the right cause within scenarios.AtRiskWithin (or not at all
// for answered keepalives), and absent from the cache. In the end each
// connection gives exactly one record, and its reason is the one `tcptap
// read` gives for the capture of the same run.
func TestLiveTruth(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dump := lab.StartCapture(t, "truth.pcap", netlab.CaptureOptions{})
	ld := startLive(t, lab.Tap, netlab.ClientPort, 2, daemon.Options{
		Trace:     flightrec.Config{Enabled: true},
		CacheMode: cache.All,
	}, capture.LiveConfig{Promiscuous: true})

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	reg := metrics.NewRegistry(ld.MetricsSnapshot, metrics.Options{Version: "test"})
	srv, err := web.Listen("127.0.0.1:0", web.Handler(reg, ld.Daemon), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan struct{})
	go func() { defer close(srvDone); srv.Serve(ctx) }()
	defer func() { cancel(); <-srvDone }()
	api := "http://" + srv.Addr().String() + "/api/v1/connections?state=open&risk="

	// during looks at the live daemon while a fault holds.
	during := func(e scenarios.Expect, want classifier.Risk) error {
		k := connKey{e.Client, e.Server}
		if rs := cachedByKey(ld.Cache())[k]; len(rs) > 0 {
			t.Errorf("%s: a verdict while the connection still lives: %s", e.Scenario, describe(rs[0]))
		}
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		defer qcancel()
		open, err := ld.OpenConnections(qctx, 100000)
		if err != nil {
			return fmt.Errorf("listing open connections: %w", err)
		}
		var rec *record.Record
		for i := range open {
			if open[i].Client == e.Client && open[i].Server == e.Server {
				rec = &open[i]
			}
		}
		if rec == nil {
			for _, r := range open {
				t.Logf("open: %v -> %v %s", r.Client, r.Server, r.Reason)
			}
			t.Errorf("%s: the connection %v -> %v is not open in the daemon's table while its fault holds", e.Scenario, e.Client, e.Server)
			return nil
		}
		if rec.Risk != want.String() {
			t.Errorf("%s: risk %q (since %v), want %q", e.Scenario, rec.Risk, rec.RiskSince, want)
		}
		atRisk, _, err := ld.OpenPage(qctx, 0, 0, true, want)
		if err != nil {
			return err
		}
		listed := false
		for _, r := range atRisk {
			listed = listed || r.ID == rec.ID
		}
		if listed != (want != classifier.NoRisk) {
			t.Errorf("%s: listed at risk %v, want %v", e.Scenario, listed, want != classifier.NoRisk)
		}
		// The HTTP API's filter and the operator's at-risk view.
		for _, risk := range []string{"any", "retransmitting", "zero_window", "keepalive_unanswered", "syn_unanswered"} {
			var recs []record.Record
			if err := getJSON(api+risk, &recs); err != nil {
				return err
			}
			found := false
			for _, r := range recs {
				if r.Client == e.Client && r.Server == e.Server {
					found = true
					if r.Risk == "" || r.RiskSince.IsZero() {
						t.Errorf("%s: ?risk=%s lists it without risk and risk_since: %+v", e.Scenario, risk, r)
					}
				}
			}
			if wantFound := want != classifier.NoRisk && (risk == "any" || risk == want.String()); found != wantFound {
				t.Errorf("%s: ?state=open&risk=%s lists it: %v, want %v", e.Scenario, risk, found, wantFound)
			}
		}
		view, err := ld.call(daemon.Request{Cmd: "display at-risk"})
		if err != nil {
			return fmt.Errorf("display at-risk: %w", err)
		}
		if shown := strings.Contains(view, e.Client.String()+" "); shown != (want != classifier.NoRisk) {
			t.Errorf("%s: display at-risk shows it: %v, want %v:\n%s", e.Scenario, shown, want != classifier.NoRisk, view)
		}
		if want != classifier.NoRisk {
			var n uint64
			for _, w := range ld.Stats() {
				n += w.AtRisk[want]
			}
			if n == 0 {
				t.Errorf("%s: the at-risk gauge counts no connection %s", e.Scenario, want)
			}
		}
		t.Logf("%s: open, risk %q since %v", e.Scenario, rec.Risk, rec.RiskSince.Format(time.RFC3339Nano))
		return nil
	}

	type run func() ([]scenarios.Expect, error)
	runs := []run{
		func() ([]scenarios.Expect, error) {
			return scenarios.BlackholeHealed(ctx, t, lab, "tcp4", 6*time.Second, during)
		},
		func() ([]scenarios.Expect, error) {
			return scenarios.ZeroWindowReleased(ctx, t, lab, "tcp6", 6*time.Second, during)
		},
		func() ([]scenarios.Expect, error) {
			return scenarios.KeepaliveAnswered(ctx, t, lab, "tcp4", 5*time.Second, during)
		},
		// 20 s: Linux retransmits at about 0.2, 0.6, 1.4, 3.0, 6.2 and
		// 12.6 s, so a verdict on 1.5 times the last gap (at 11 s) would
		// come while the kernel still retries.
		func() ([]scenarios.Expect, error) {
			return scenarios.BlackholeGivesUp(ctx, t, lab, "tcp4", 20*time.Second, during)
		},
	}
	var (
		mu   sync.Mutex
		exps []scenarios.Expect
		wg   sync.WaitGroup
	)
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es, err := r()
			if err != nil {
				t.Errorf("scenario: %v", err)
			}
			mu.Lock()
			exps = append(exps, es...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	done := time.Now()

	// Every connection reaches the cache: the closed ones after the close
	// linger, the dead one once its sender is past its next retry.
	deadline := done.Add(30 * time.Second)
	for {
		got, missing := cachedByKey(ld.Cache()), 0
		for _, e := range exps {
			if len(got[connKey{e.Client, e.Server}]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections not in the cache %v after the scenarios ended", missing, len(exps), time.Since(done))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every connection cached %v after the scenarios ended", time.Since(done).Round(time.Millisecond))
	// A later packet, so the capture shows the silence the live verdict
	// saw, then the capture ends.
	if _, err := scenarios.Marker(ctx, t, lab, "tcp4"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	pcap := dump.Stop()

	offlineRecs := map[connKey][]record.Record{}
	st, err := offline.Run(ctx, []string{pcap}, offline.Options{Workers: 1}, func(r *record.Record) {
		k := connKey{r.Client, r.Server}
		offlineRecs[k] = append(offlineRecs[k], *r)
	})
	if err != nil {
		t.Fatalf("tcptap read %s: %v", pcap, err)
	}
	// The same pipeline worker counted the same segments live and from
	// the capture: the opens and every per-segment counter agree.
	var liveSum metrics.Worker
	for _, w := range ld.Stats() {
		liveSum.Add(&w)
	}
	if liveSum.Opens != st.Opens || liveSum.Table.Segments != st.Table.Segments {
		t.Errorf("live and offline counters differ:\nlive    opens %+v segments %+v\noffline opens %+v segments %+v",
			liveSum.Opens, liveSum.Table.Segments, st.Opens, st.Table.Segments)
	}
	t.Logf("live and offline: %d active opens, %d segments each", st.Opens.Active, st.Table.Packets)
	live := cachedByKey(ld.Cache())
	for _, e := range exps {
		k := connKey{e.Client, e.Server}
		ls, os := live[k], offlineRecs[k]
		if len(ls) != 1 {
			for _, r := range ls {
				t.Logf("%s live record: %s", e.Scenario, describe(r))
			}
			t.Errorf("%s: %d live records, want 1", e.Scenario, len(ls))
			continue
		}
		if len(os) != 1 {
			t.Errorf("%s: %d records from the capture, want 1", e.Scenario, len(os))
			continue
		}
		l, o := ls[0], os[0]
		if l.Reason != string(e.Reason) || l.Actor != e.Actor || l.Midstream {
			t.Errorf("%s live: %s, want reason %s actor %s", e.Scenario, describe(l), e.Reason, e.Actor)
		}
		if string(o.Reason) != l.Reason || o.Actor != l.Actor || o.ConnState != l.ConnState {
			t.Errorf("%s: tcptap read says %s (actor %s, %s), the live daemon %s (actor %s, %s)", e.Scenario, o.Reason, o.Actor, o.ConnState, l.Reason, l.Actor, l.ConnState)
		}
		t.Logf("%s: live %s, offline %s, %d retransmissions", e.Scenario, l.Reason, o.Reason, o.Retransmissions.Client+o.Retransmissions.Server)
	}
}
