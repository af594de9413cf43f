package diagram

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/browser"
)

// TestReportInBrowser opens the report of the reason suite's capture
// (testdata/sample.pcap: every way of dying) in headless chromium: it
// renders without console errors, its table lists every reason, each RT
// connection's diagram holds one retransmission mark per retransmission in
// its record, and its pcap link (a data: URI) downloads a file tshark
// reads. The screenshots are kept under the test's artifact directory.
func TestReportInBrowser(t *testing.T) {
	b := browser.Start(t)
	conns, counts := readCapture(t, sample)
	path := filepath.Join(t.ArtifactDir(), "report.html")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(fh, &Report{Title: "tcptap report: sample.pcap", Generated: time.Now(), Sources: []string{"sample.pcap"}, Counts: counts, Conns: conns}); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	t.Logf("report: %s", path)

	b.Open("file://" + path)
	got := browser.Eval[[]string](b, `Array.from(document.querySelectorAll("table.conns td.reason")).map(e => e.textContent)`)
	for _, code := range []classifier.Code{"RF", "ST", "RT", "PT", "KT", "AA", "SR", "RR", "AN", "PN", "OP"} {
		if !slices.Contains(got, string(code)) {
			t.Errorf("the report's table lacks %s: %v", code, got)
		}
	}
	if len(got) != len(conns) {
		t.Errorf("the table has %d rows, the capture %d connections", len(got), len(conns))
	}
	// Each RT connection: its record's retransmissions against the marks
	// the browser finds in its diagram.
	type rt struct {
		ID      string `json:"id"`
		Want    string `json:"want"`
		Dropped string `json:"dropped"`
		Marks   int    `json:"marks"`
	}
	rts := browser.Eval[[]rt](b, `Array.from(document.querySelectorAll('section.conn[data-reason="RT"]')).map(s => ({
		id: s.dataset.id, want: s.dataset.retransmissions, dropped: s.dataset.dropped,
		marks: s.querySelectorAll("svg line.retrans[data-packet]").length}))`)
	if len(rts) == 0 {
		t.Fatal("no RT connection drawn")
	}
	for _, r := range rts {
		want, _ := strconv.Atoi(r.Want)
		if r.Dropped != "0" || r.Marks != want || want == 0 {
			t.Errorf("RT connection %s: %d retransmission marks in its diagram, its record counts %s (dropped %s)", r.ID, r.Marks, r.Want, r.Dropped)
		} else {
			t.Logf("RT connection %s: %d retransmission marks for %s retransmissions in its record", r.ID, r.Marks, r.Want)
		}
	}
	if n := browser.Eval[int](b, `document.querySelectorAll("section.conn svg").length`); n != countAbnormal(conns) {
		t.Errorf("%d diagrams for %d abnormal connections", n, countAbnormal(conns))
	}
	b.Screenshot("report.png")
	b.Open("file://" + path + "#conn-" + rts[0].ID)
	b.Screenshot("report-rt.png")

	dl, err := b.Download(`section.conn[data-reason="RT"] a.pcap`)
	if err != nil {
		t.Fatal(err)
	}
	rows := browser.Eval[int](b, `document.querySelectorAll('section.conn[data-reason="RT"]')[0].querySelectorAll("table.packets tr").length - 1`)
	browser.CheckPcap(t, dl, rows)
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func countAbnormal(conns []Conn) int {
	n := 0
	for _, c := range conns {
		if c.Record.Reason.Abnormal() {
			n++
		}
	}
	return n
}
