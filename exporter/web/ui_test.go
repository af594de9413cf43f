package web_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/internal/browser"
)

var uiRowRE = regexp.MustCompile(`<tr data-id="(\d+)">.*?<td class="reason"[^>]*>([A-Z]{2})</td>`)

// uiRows returns the id → reason of the closed connections a /ui/ page lists.
func uiRows(body string) map[string]string {
	rows := map[string]string{}
	for _, m := range uiRowRE.FindAllStringSubmatch(body, -1) {
		rows[m[1]] = m[2]
	}
	return rows
}

// TestUI: the sensor's pages over a daemon replaying the reason suite's
// capture: the list and its filters, a connection's page, the SVG
// endpoint (well-formed XML), and the read-only rule.
func TestUI(t *testing.T) {
	d, base := serve(t)
	code, body := get(t, base+"/ui/")
	if code != 200 {
		t.Fatalf("/ui/: %d %s", code, body)
	}
	all := uiRows(body)
	if len(all) != d.Cache().Len() || len(all) < 14 {
		t.Errorf("/ui/ lists %d connections, the cache holds %d", len(all), d.Cache().Len())
	}
	for _, tc := range []struct {
		query string
		keep  func(id, reason string) bool
	}{
		{"reason=RT", func(_, r string) bool { return r == "RT" }},
		{"reason=RT&reason=pt", func(_, r string) bool { return r == "RT" || r == "PT" }},
		{"family=ipv6", nil},
		{"port=20004", nil},
		{"since=2000-01-01T00:00:00&until=2000-01-02T00:00:00", func(_, _ string) bool { return false }},
	} {
		_, body := get(t, base+"/ui/?"+tc.query)
		got := uiRows(body)
		if tc.keep != nil {
			want := 0
			for id, r := range all {
				if tc.keep(id, r) {
					want++
					if got[id] != r {
						t.Errorf("/ui/?%s lacks %s (%s)", tc.query, id, r)
					}
				}
			}
			if len(got) != want {
				t.Errorf("/ui/?%s lists %d connections, want %d", tc.query, len(got), want)
			}
		} else if len(got) == 0 || len(got) >= len(all) {
			t.Errorf("/ui/?%s lists %d of %d connections", tc.query, len(got), len(all))
		}
	}
	if code, _ := get(t, base+"/ui/?reason=XX"); code != http.StatusBadRequest {
		t.Errorf("/ui/?reason=XX: %d, want 400", code)
	}
	var rt string
	for id, r := range all {
		if r == "RT" {
			rt = id
		}
	}
	code, body = get(t, base+"/ui/connections/"+rt)
	if code != 200 || !strings.Contains(body, `class="retrans"`) || !strings.Contains(body, "/pcap") {
		t.Errorf("/ui/connections/%s: %d, no diagram or pcap link", rt, code)
	}
	resp, err := http.Get(base + "/api/v1/connections/" + rt + "/svg")
	if err != nil {
		t.Fatal(err)
	}
	svg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "image/svg+xml" {
		t.Errorf("svg: %d %s", resp.StatusCode, ct)
	}
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("the SVG is not well-formed XML: %v", err)
			}
			break
		}
	}
	if code, _ := get(t, base+"/api/v1/connections/999999/svg"); code != 404 {
		t.Errorf("svg of an unknown connection: %d, want 404", code)
	}
	resp, err = http.Post(base+"/ui/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405", resp.StatusCode)
	}
}

// TestUIInBrowser opens the sensor's page (a daemon replaying the reason
// suite's capture) in headless chromium: no console errors, every
// connection listed, the RT connection's page holds one retransmission
// mark per retransmission of its record, and its pcap link downloads a
// file tshark reads.
func TestUIInBrowser(t *testing.T) {
	b := browser.Start(t)
	d, base := serve(t)
	b.Open(base + "/ui/")
	n := browser.Eval[int](b, `document.querySelectorAll("table.conns tr[data-id]").length`)
	if n != d.Cache().Len() {
		t.Errorf("the page lists %d connections, the cache holds %d", n, d.Cache().Len())
	}
	b.Screenshot("sensor-replay.png")

	// The filter form, as a user fills it: RT, IPv6.
	b.Do(chromedp.Click(`input[name="reason"][value="RT"]`), chromedp.SetValue(`select[name="family"]`, "ipv6"), chromedp.Click(`form.filters button`))
	b.WaitURL("reason=RT")
	got := browser.Eval[[]string](b, `Array.from(document.querySelectorAll("table.conns tr[data-id]")).map(tr => tr.cells[1].textContent + " " + tr.querySelector("td.reason").textContent)`)
	if len(got) != 1 || !strings.HasPrefix(got[0], "[fd00:") || !strings.HasSuffix(got[0], " RT") {
		t.Errorf("filtered by RT and IPv6, the page lists %v", got)
	}
	b.Screenshot("sensor-replay-filtered.png")
	checkRTPage(t, b)
}

// checkRTPage follows the first RT connection's link on the list page
// open in b and checks its page, screenshot and pcap download.
func checkRTPage(t *testing.T, b *browser.Browser) {
	t.Helper()
	href := browser.Eval[string](b, `(() => { for (const tr of document.querySelectorAll("table.conns tr[data-id]")) {
		if (tr.querySelector("td.reason").textContent === "RT") return tr.querySelector("a").href } return "" })()`)
	if href == "" {
		t.Fatal("no RT connection listed")
	}
	b.Open(href)
	want := browser.Eval[string](b, `document.querySelector("section.conn").dataset.retransmissions`)
	marks := browser.Eval[int](b, `document.querySelectorAll("section.conn svg line.retrans[data-packet]").length`)
	if w, _ := strconv.Atoi(want); w == 0 || marks != w {
		t.Errorf("%s: %d retransmission marks, the record counts %s", href, marks, want)
	} else {
		t.Logf("%s: %d retransmission marks for %s retransmissions in its record", href, marks, want)
	}
	b.Screenshot("sensor-rt-connection.png")
	rows := browser.Eval[int](b, `document.querySelectorAll("table.packets tr").length - 1`)
	path, err := b.Download("a.pcap")
	if err != nil {
		t.Fatal(err)
	}
	browser.CheckPcap(t, path, rows)
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestUIAuthentication: the pages and the diagram endpoint sit behind the
// API's basic authentication (the web config file), as the API does.
func TestUIAuthentication(t *testing.T) {
	d, _ := serve(t)
	cfg := filepath.Join(t.TempDir(), "web.yml")
	// bcrypt (cost 4) of "s3cret".
	if err := os.WriteFile(cfg, []byte("basic_auth_users:\n  op: $2a$04$hFQfE3LEHMHay9craE6yRet5N1lXEaYkm.1VDZDeQ9K92/wfjkzUu\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := web.Listen("127.0.0.1:0", web.Handler(metrics.NewRegistry(d.MetricsSnapshot, metrics.Options{Version: "test"}), d), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + srv.Addr().String()
	id := d.Cache().Entries(nil)[0].Record.ID
	for _, path := range []string{"/ui/", fmt.Sprintf("/ui/connections/%d", id), fmt.Sprintf("/api/v1/connections/%d/svg", id)} {
		for _, auth := range []struct {
			user, pass string
			want       int
		}{{"", "", 401}, {"op", "wrong", 401}, {"op", "s3cret", 200}} {
			req, _ := http.NewRequest("GET", base+path, nil)
			if auth.user != "" {
				req.SetBasicAuth(auth.user, auth.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != auth.want {
				t.Errorf("%s as %q/%q: %d, want %d", path, auth.user, auth.pass, resp.StatusCode, auth.want)
			}
		}
	}
}
