package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/diagram"
	"github.com/tcptap/tcptap/record"
)

// The sensor's read-only pages (/ui/) and the diagram endpoint. They are
// served by the API's handler, so the API's listener, authentication (the
// web config file) and read-only rule apply to them as they are. The pages
// are rendered on the server from html/template (every string from a
// packet or record is escaped), with inline CSS and SVG and no script, so
// they work on an air-gapped network and in a browser with JavaScript off.

// uiLimit bounds the closed connections one page lists (the newest).
const uiLimit = 500

// registerUI adds the diagram endpoint and the pages to mux.
func registerUI(mux *http.ServeMux, b Backend, gate func(http.Handler) http.Handler) {
	u := &ui{b: b}
	mux.Handle("GET /api/v1/connections/{id}/svg", gate(http.HandlerFunc(u.svg)))
	mux.Handle("GET /ui/{$}", gate(http.HandlerFunc(u.list)))
	mux.Handle("GET /ui/connections/{id}", gate(http.HandlerFunc(u.connection)))
	mux.Handle("GET /ui", gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ui/", http.StatusMovedPermanently)
	})))
}

type ui struct{ b Backend }

// ClassifierConfigurer is a Backend that says the classifier configuration
// its verdicts were given with (the daemon): the diagrams draw when a
// silent sender counted as given up by it.
type ClassifierConfigurer interface {
	ClassifierConfig() classifier.Config
}

// diagramOptions are the sensor's: the verdicts were given by its clock,
// so the silence after a given-up sender is drawn up to now.
func (u *ui) diagramOptions(e *cache.Entry) diagram.Options {
	o := diagram.Options{Until: time.Now().UnixNano(), Dropped: e.Overwritten}
	if c, ok := u.b.(ClassifierConfigurer); ok {
		o.Classifier = c.ClassifierConfig()
	}
	return o
}

// svg serves one cached connection's time–sequence diagram.
func (u *ui) svg(w http.ResponseWriter, r *http.Request) {
	e := (&api{b: u.b}).entry(w, r)
	if e == nil {
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", strings.TrimSuffix(exporter.PcapFileName(&e.Record), ".pcap")+".svg"))
	diagram.WriteSVG(w, &e.Record, e.Packets(), u.diagramOptions(e))
}

// uiFilter is the list page's form: reasons, family, a port (either end),
// and a window on the time connections ended.
type uiFilter struct {
	Reasons    map[classifier.Code]bool
	Family     string
	Port       string
	Since      string
	Until      string
	port       int
	since, end time.Time
}

// formTime is the layout of the form's datetime-local fields (UTC).
const formTime = "2006-01-02T15:04:05"

func parseFormTime(s string) (time.Time, error) {
	for _, layout := range []string{formTime, "2006-01-02T15:04", time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a UTC time such as 2026-12-06T15:04:05", s)
}

func parseUIFilter(q url.Values) (*uiFilter, error) {
	f := &uiFilter{Reasons: map[classifier.Code]bool{}, Family: q.Get("family"), Port: q.Get("port"), Since: q.Get("since"), Until: q.Get("until"), port: -1}
	for _, v := range q["reason"] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			c := classifier.Code(strings.ToUpper(s))
			if !c.Valid() {
				return f, fmt.Errorf("reason %q: want a reason code", s)
			}
			f.Reasons[c] = true
		}
	}
	switch f.Family {
	case "", "ipv4", "ipv6":
	default:
		return f, fmt.Errorf("family %q: want ipv4 or ipv6", f.Family)
	}
	if f.Port != "" {
		n, err := strconv.ParseUint(f.Port, 10, 16)
		if err != nil {
			return f, fmt.Errorf("port %q: want 0 to 65535", f.Port)
		}
		f.port = int(n)
	}
	var err error
	if f.Since != "" {
		if f.since, err = parseFormTime(f.Since); err != nil {
			return f, fmt.Errorf("since %w", err)
		}
	}
	if f.Until != "" {
		if f.end, err = parseFormTime(f.Until); err != nil {
			return f, fmt.Errorf("until %w", err)
		}
	}
	return f, nil
}

func (f *uiFilter) keep(r *record.Record) bool {
	switch {
	case len(f.Reasons) > 0 && !f.Reasons[r.Reason]:
		return false
	case f.Family != "" && r.Family != f.Family:
		return false
	case f.port >= 0 && int(r.Client.Port()) != f.port && int(r.Server.Port()) != f.port:
		return false
	case !f.since.IsZero() && r.LastSeen.Before(f.since):
		return false
	case !f.end.IsZero() && r.LastSeen.After(f.end):
		return false
	}
	return true
}

type reasonBox struct {
	Code    classifier.Code
	Text    string
	Checked bool
}

type atRiskRow struct {
	Local, Foreign, VPN, Risk, Since, For string
	Retrans, Probes, Keepalives           uint32
}

type listPage struct {
	CSS         template.CSS
	Now         string
	Filter      *uiFilter
	Boxes       []reasonBox
	Error       string
	Conns       []diagram.ConnView
	Shown       int
	Matched     int
	Cached      int
	ReasonChart template.HTML
	PortChart   template.HTML
	TimeChart   template.HTML
	CanOpen     bool
	AtRisk      []atRiskRow
	AtRiskErr   string
	AtRiskMore  bool
}

// list is /ui/: the cache of closed connections, newest first, filtered
// by the form, with the charts of what matched, and the open connections
// at risk when the backend can list them.
func (u *ui) list(w http.ResponseWriter, r *http.Request) {
	p := &listPage{CSS: template.CSS(diagram.CSS), Now: time.Now().UTC().Format("2006-01-02 15:04:05")}
	f, err := parseUIFilter(r.URL.Query())
	p.Filter = f
	if err != nil {
		p.Error = err.Error()
		f = &uiFilter{Reasons: map[classifier.Code]bool{}, port: -1}
	}
	for _, c := range classifier.Codes {
		p.Boxes = append(p.Boxes, reasonBox{c, c.Text(), f.Reasons[c]})
	}
	entries := u.b.Cache().Entries(nil)
	p.Cached = len(entries)
	var conns []diagram.Conn
	counts := map[classifier.Code]uint64{}
	for _, e := range entries {
		if f.keep(&e.Record) {
			conns = append(conns, diagram.Conn{Record: &e.Record, Traced: e.Traced, Dropped: e.Overwritten})
			counts[e.Record.Reason]++
		}
	}
	p.Matched = len(conns)
	p.PortChart = diagram.PortChart(conns)
	p.TimeChart = diagram.TimeChart(conns)
	p.ReasonChart = reasonChart(counts)
	slices.Reverse(conns) // newest first
	if len(conns) > uiLimit {
		conns = conns[:uiLimit]
	}
	for i := range conns {
		p.Conns = append(p.Conns, diagram.NewConnView(&conns[i], false, diagram.Options{}))
	}
	p.Shown = len(p.Conns)
	if ol, ok := u.b.(OpenLister); ok {
		p.CanOpen = true
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		recs, more, err := ol.OpenPage(ctx, 0, 0, true, classifier.NoRisk)
		cancel()
		if err != nil {
			p.AtRiskErr = err.Error()
		}
		p.AtRiskMore = more
		now := time.Now()
		for i := range recs {
			rec := &recs[i]
			l, fo := record.LocalForeign(rec)
			p.AtRisk = append(p.AtRisk, atRiskRow{Local: l, Foreign: fo, VPN: record.VPNName(rec), Risk: rec.Risk,
				Since: rec.RiskSince.UTC().Format("2006-01-02 15:04:05.000"), For: now.Sub(rec.RiskSince).Round(100 * time.Millisecond).String(),
				Retrans: rec.Retransmissions.Client + rec.Retransmissions.Server, Probes: rec.WindowProbes.Client + rec.WindowProbes.Server,
				Keepalives: rec.KeepAlives.Client + rec.KeepAlives.Server})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if p.Error != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	listTemplate.Execute(w, p)
}

func reasonChart(counts map[classifier.Code]uint64) template.HTML {
	var rc []diagram.ReasonCount
	for _, c := range classifier.Codes {
		if n := counts[c]; n > 0 {
			rc = append(rc, diagram.ReasonCount{Code: c, Text: c.Text(), N: n})
		}
	}
	return diagram.ReasonChart(rc)
}

type connPage struct {
	CSS  template.CSS
	Conn diagram.ConnView
}

// connection is /ui/connections/{id}: one cached connection's diagram,
// packet list and pcap download.
func (u *ui) connection(w http.ResponseWriter, r *http.Request) {
	e := (&api{b: u.b}).entry(w, r)
	if e == nil {
		return
	}
	c := diagram.Conn{Record: &e.Record, Packets: e.Packets(), Traced: e.Traced, Dropped: e.Overwritten}
	v := diagram.NewConnView(&c, true, u.diagramOptions(e))
	if len(c.Packets) > 0 {
		v.PcapURI = template.URL(fmt.Sprintf("../../api/v1/connections/%d/pcap", e.Record.ID))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	connTemplate.Execute(w, &connPage{CSS: template.CSS(diagram.CSS), Conn: v})
}

const uiHeader = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tcptap sensor</title>
<meta name="viewport" content="width=device-width">
<link rel="icon" href="data:,">
<style>{{.CSS}}</style></head><body>`

var listTemplate = template.Must(template.New("list").Parse(uiHeader + `
<h1>tcptap sensor: connections that ended</h1>
<p class="muted">{{.Now}} UTC · {{.Cached}} connections in the trace cache · read-only ·
<a href="../api/v1/connections">JSON</a> · <a href="../metrics">metrics</a> · <a href="../api/v1/information">information</a></p>
<form class="filters" method="get" action="">
<fieldset><legend>reason</legend>{{range .Boxes}}<label style="display:inline"><input type="checkbox" name="reason" value="{{.Code}}"{{if .Checked}} checked{{end}}> <span title="{{.Text}}">{{.Code}}</span></label> {{end}}</fieldset>
<label>family <select name="family"><option value="">both</option><option value="ipv4"{{if eq .Filter.Family "ipv4"}} selected{{end}}>IPv4</option><option value="ipv6"{{if eq .Filter.Family "ipv6"}} selected{{end}}>IPv6</option></select></label>
<label>port (either end) <input type="number" name="port" min="0" max="65535" value="{{.Filter.Port}}"></label>
<label>ended since (UTC) <input type="datetime-local" step="1" name="since" value="{{.Filter.Since}}"></label>
<label>ended until (UTC) <input type="datetime-local" step="1" name="until" value="{{.Filter.Until}}"></label>
<button type="submit">Filter</button> <a href="./">clear</a>
</form>
{{if .Error}}<p class="error" style="color:#b00">{{.Error}}</p>{{end}}
{{if .CanOpen}}<h2 id="at-risk">Open connections at risk</h2>
{{if .AtRiskErr}}<p class="error">listing open connections: {{.AtRiskErr}}</p>{{end}}
{{if .AtRisk}}<table class="atrisk"><tr><th>local address:port</th><th>foreign address:port</th><th>VPN</th><th>risk</th><th>since (UTC)</th><th>for</th><th>retrans.</th><th>probes</th><th>keepalives</th></tr>
{{range .AtRisk}}<tr><td>{{.Local}}</td><td>{{.Foreign}}</td><td>{{.VPN}}</td><td>{{.Risk}}</td><td>{{.Since}}</td><td>{{.For}}</td><td class="n">{{.Retrans}}</td><td class="n">{{.Probes}}</td><td class="n">{{.Keepalives}}</td></tr>
{{end}}</table>{{if .AtRiskMore}}<p class="muted">More at risk: <a href="../api/v1/connections?state=open&amp;risk=any">the API</a> lists them all.</p>{{end}}
{{else}}<p class="muted">No open connection is at risk.</p>{{end}}{{end}}
<h2 id="closed">Closed connections</h2>
<p>{{.Matched}} match{{if lt .Shown .Matched}}; the newest {{.Shown}} are listed{{end}}.</p>
<div class="charts"><div class="chart">{{.ReasonChart}}</div><div class="chart">{{.PortChart}}</div><div class="chart">{{.TimeChart}}</div></div>
<table class="conns"><tr><th>id</th><th>local address:port</th><th>foreign address:port</th><th>VPN</th><th>reason</th><th>ended (UTC)</th><th>packets</th><th>retrans.</th><th></th></tr>
{{range .Conns}}<tr data-id="{{.ID}}"><td><a href="connections/{{.ID}}">{{.ID}}</a></td><td>{{.Local}}</td><td>{{.Foreign}}</td><td>{{.VPN}}</td><td class="reason" title="{{.Record.ReasonText}}">{{.Record.Reason}}</td><td>{{.Ended}}</td><td class="n">{{.Record.Packets.Client}}/{{.Record.Packets.Server}}</td><td class="n">{{.Record.Retransmissions.Client}}/{{.Record.Retransmissions.Server}}</td><td><a href="connections/{{.ID}}">diagram</a>{{if .Traced}} · <a class="pcap" href="../api/v1/connections/{{.ID}}/pcap" download="{{.PcapName}}">pcap</a>{{end}}</td></tr>
{{end}}</table>
</body></html>
`))

var connTemplate = template.Must(template.New("conn-page").Parse(diagram.ConnTemplate + uiHeader + `
<p><a href="../">← all connections</a> · <a href="../../api/v1/connections/{{.Conn.ID}}/packets">JSON</a> · <a href="../../api/v1/connections/{{.Conn.ID}}/svg">SVG</a></p>
{{template "conn" .Conn}}
</body></html>
`))
