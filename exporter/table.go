package exporter

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/record"
)

// SortRecords orders records by first-seen time, then endpoints, so output
// does not depend on how many workers produced them.
func SortRecords(recs []record.Record) {
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := &recs[i], &recs[j]
		if !a.FirstSeen.Equal(b.FirstSeen) {
			return a.FirstSeen.Before(b.FirstSeen)
		}
		if c := a.Client.Compare(b.Client); c != 0 {
			return c < 0
		}
		if c := a.Server.Compare(b.Server); c != 0 {
			return c < 0
		}
		return a.ID < b.ID
	})
}

// timeLayout is how the table prints times: the vendor prints local device
// time to the second; tcptap prints UTC to the millisecond.
const timeLayout = "2006-01-02 15:04:05.000"

// WriteTable prints the vendor's cache-connection table: local and foreign
// endpoint, VPN name (VLAN), reason code and the time the connection ended,
// followed by the legend of the codes that appear.
func WriteTable(w io.Writer, recs []record.Record) error {
	bw := bufio.NewWriter(w)
	lw, fw, vw := len("Local Address"), len("Foreign Address"), len("VPN Name")
	for i := range recs {
		l, f := record.LocalForeign(&recs[i])
		lw, fw, vw = max(lw, len(l)), max(fw, len(f)), max(vw, len(record.VPNName(&recs[i])))
	}
	fmt.Fprintf(bw, "%-*s  %-*s  %-*s  %-6s  %s\n", lw, "Local Address", fw, "Foreign Address", vw, "VPN Name", "Reason", "Time (UTC)")
	seen := map[classifier.Code]bool{}
	for i := range recs {
		r := &recs[i]
		l, f := record.LocalForeign(r)
		seen[r.Reason] = true
		fmt.Fprintf(bw, "%-*s  %-*s  %-*s  %-6s  %s\n", lw, l, fw, f, vw, record.VPNName(r), r.Reason, r.LastSeen.Format(timeLayout))
	}
	if len(recs) == 0 {
		fmt.Fprintln(bw, "(no connections)")
	}
	var legend []string
	for _, c := range classifier.Codes {
		if seen[c] {
			legend = append(legend, fmt.Sprintf("%s: %s", c, c.Text()))
		}
	}
	if len(legend) > 0 {
		fmt.Fprintf(bw, "\nReason: %s\n", strings.Join(legend, ", "))
	}
	return bw.Flush()
}

// WriteAtRisk writes the at-risk view: open connections in a pattern that
// ends in a timer's verdict if it goes on, the oldest risk first, with how
// long each has been at risk as of now and the retransmissions and probes
// that show it.
func WriteAtRisk(w io.Writer, recs []record.Record, now time.Time) error {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b record.Record) int { return a.RiskSince.Compare(b.RiskSince) })
	bw := bufio.NewWriter(w)
	lw, fw, vw := len("Local Address"), len("Foreign Address"), len("VPN Name")
	for i := range recs {
		l, f := record.LocalForeign(&recs[i])
		lw, fw, vw = max(lw, len(l)), max(fw, len(f)), max(vw, len(record.VPNName(&recs[i])))
	}
	const head = "%-*s  %-*s  %-*s  %-20s  %-23s  %8s  %7s  %6s  %10s\n"
	fmt.Fprintf(bw, head, lw, "Local Address", fw, "Foreign Address", vw, "VPN Name", "Risk", "Since (UTC)", "For", "Retrans", "Probes", "Keepalives")
	for i := range recs {
		r := &recs[i]
		l, f := record.LocalForeign(r)
		d := now.Sub(r.RiskSince).Round(100 * time.Millisecond)
		fmt.Fprintf(bw, head, lw, l, fw, f, vw, record.VPNName(r), r.Risk, r.RiskSince.Format(timeLayout), d,
			strconv.FormatUint(uint64(r.Retransmissions.Client+r.Retransmissions.Server), 10),
			strconv.FormatUint(uint64(r.WindowProbes.Client+r.WindowProbes.Server), 10),
			strconv.FormatUint(uint64(r.KeepAlives.Client+r.KeepAlives.Server), 10))
	}
	if len(recs) == 0 {
		fmt.Fprintln(bw, "(no connection at risk)")
	} else {
		fmt.Fprintln(bw, "\nRisk: retransmitting (unacknowledged data retransmitted: the road to RT), zero_window (probing a zero window: PT), keepalive_unanswered (KT), syn_unanswered (ST)")
	}
	return bw.Flush()
}

// Summary counts connections by reason.
type Summary struct {
	ByReason map[classifier.Code]uint64
	Total    uint64
}

// NewSummary returns an empty summary.
func NewSummary() *Summary { return &Summary{ByReason: map[classifier.Code]uint64{}} }

// Add counts one record.
func (s *Summary) Add(r *record.Record) {
	s.ByReason[r.Reason]++
	s.Total++
}

// Write prints one line per reason seen, abnormal ones marked, and a total.
func (s *Summary) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "\nConnections by reason (%d in all):\n", s.Total)
	for _, c := range classifier.Codes {
		n := s.ByReason[c]
		if n == 0 {
			continue
		}
		kind := "normal"
		if c.Abnormal() {
			kind = "abnormal"
		}
		fmt.Fprintf(bw, "  %-2s  %-28s  %8d  %s\n", c, c.Text(), n, kind)
	}
	return bw.Flush()
}

// JSONWriter writes records as JSON Lines.
type JSONWriter struct {
	bw  *bufio.Writer
	buf []byte // reused line buffer
}

// NewJSONWriter returns a writer of JSON Lines to w; call Flush at the end.
func NewJSONWriter(w io.Writer) *JSONWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &JSONWriter{bw: bw, buf: make([]byte, 0, 2048)}
}

// Write writes one record as a line: the bytes of json.Marshal(r) and a
// newline, as json.Encoder would write them.
func (j *JSONWriter) Write(r *record.Record) error {
	j.buf = append(r.AppendJSON(j.buf[:0]), '\n')
	_, err := j.bw.Write(j.buf)
	return err
}

// Flush writes buffered output.
func (j *JSONWriter) Flush() error { return j.bw.Flush() }
