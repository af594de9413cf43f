package diagram

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/record"
)

// Report is what the HTML report shows.
type Report struct {
	Title     string
	Generated time.Time
	Sources   []string // the capture files read
	// Counts are every connection's reasons (the table's summary), Conns
	// the connections kept (the cache) with their packets.
	Counts map[classifier.Code]uint64
	Conns  []Conn
	// MaxDiagrams bounds the abnormal connections drawn in full (default
	// 200); the rest are listed in the table only.
	MaxDiagrams int
	// Diagram shapes each diagram (its Until is the capture's end).
	Diagram Options
}

// CSS is the stylesheet of the report and of the sensor's pages: inline,
// as everything in them, so they work air-gapped.
const CSS = `body{font:14px/1.4 sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;font-size:13px}
th{background:#f3f3f3}td.n{text-align:right}tr.retrans td{color:#b00}
.reason{font-weight:bold;font-family:monospace}.muted{color:#777}
.charts{display:flex;flex-wrap:wrap;gap:2em}.chart text{font:11px sans-serif;fill:#222}.chart .bar{fill:#4a7ab5}.chart .bar.abn{fill:#c44}
details{margin:.5em 0}summary{cursor:pointer}
.conn{margin-top:2em;padding-top:.5em;border-top:2px solid #ddd}
.diagram svg{max-width:100%;height:auto}
form.filters{display:flex;flex-wrap:wrap;gap:1em;align-items:end}form.filters label{display:flex;flex-direction:column;font-size:12px}
`

// ConnView is one connection as the report's and the sensor's pages show
// it.
type ConnView struct {
	ID       uint64
	Record   *record.Record
	Local    string
	Foreign  string
	VPN      string
	Ended    string
	Abnormal bool
	Evidence string
	SVG      template.HTML // the diagram, built here with every packet-derived string escaped
	Rows     []PacketRow
	PcapURI  template.URL // data: URI (report) or the API's URL (sensor)
	PcapName string
	Traced   bool
	Anchor   string
	// Retransmissions is the record's count, both directions: the
	// diagram marks as many when no record was overwritten (Dropped 0).
	Retransmissions uint32
	Dropped         uint64
}

// NewConnView prepares c for a page; with diagram it draws its diagram and
// lists its packets.
func NewConnView(c *Conn, diagram bool, opts Options) ConnView {
	rec := c.Record
	local, foreign := record.LocalForeign(rec)
	v := ConnView{
		ID: rec.ID, Record: rec, Local: local, Foreign: foreign, VPN: record.VPNName(rec),
		Ended: rec.LastSeen.UTC().Format("2006-01-02 15:04:05.000"), Abnormal: rec.Reason.Abnormal(),
		Traced: c.Traced, PcapName: exporter.PcapFileName(rec), Anchor: fmt.Sprintf("conn-%d", rec.ID),
		Retransmissions: rec.Retransmissions.Client + rec.Retransmissions.Server, Dropped: c.Dropped,
	}
	if diagram {
		opts.Dropped = c.Dropped
		ev := FindEvidence(rec, c.Packets, classifierConfig(opts))
		v.Evidence = ev.Summary()
		v.SVG = template.HTML(SVG(rec, c.Packets, opts)) // every string in it went through esc
		v.Rows = PacketRows(c)
	}
	return v
}

// classifierConfig is o's classifier configuration with the defaults in
// its zero fields (as classifier.New fills them).
func classifierConfig(o Options) classifier.Config {
	c, d := o.Classifier, classifier.DefaultConfig()
	if c.SilenceFactor == 0 {
		c.SilenceFactor = d.SilenceFactor
	}
	if c.MinSilence == 0 {
		c.MinSilence = d.MinSilence
	}
	return c
}

// ReasonCount is one reason's count, as the charts take it.
type ReasonCount struct {
	Code classifier.Code
	Text string
	N    uint64
}

type reportPage struct {
	*Report
	CSS          template.CSS
	Total        uint64
	Reasons      []ReasonCount
	ReasonChart  template.HTML
	PortChart    template.HTML
	TimeChart    template.HTML
	Table        []ConnView
	Diagrams     []ConnView
	NotDrawn     int
	AbnormalSeen int
	SourcesText  string
}

// WriteHTML writes the report as one self-contained HTML file: counts by
// reason, abnormal closes by server port and over time (inline SVG
// charts), the table of connections, and for each abnormal connection its
// diagram, packet list and pcap (embedded as a data: URI download).
func WriteHTML(w io.Writer, r *Report) error {
	if r.MaxDiagrams <= 0 {
		r.MaxDiagrams = 200
	}
	if r.Diagram.Until == 0 {
		for _, c := range r.Conns {
			r.Diagram.Until = max(r.Diagram.Until, c.Record.LastSeen.UnixNano())
		}
	}
	p := &reportPage{Report: r, CSS: template.CSS(CSS)}
	// A long list of inputs is cut: the header is no place for 50 paths.
	if n := len(r.Sources); n > 4 {
		p.SourcesText = fmt.Sprintf("%s and %d more files", strings.Join(r.Sources[:3], ", "), n-3)
	} else {
		p.SourcesText = strings.Join(r.Sources, ", ")
	}
	for _, code := range classifier.Codes {
		if n := r.Counts[code]; n > 0 {
			p.Reasons = append(p.Reasons, ReasonCount{code, code.Text(), n})
			p.Total += n
		}
	}
	p.ReasonChart = ReasonChart(p.Reasons)
	conns := slices.Clone(r.Conns)
	slices.SortStableFunc(conns, func(a, b Conn) int { return a.Record.LastSeen.Compare(b.Record.LastSeen) })
	p.PortChart = PortChart(conns)
	p.TimeChart = TimeChart(conns)
	for i := range conns {
		c := &conns[i]
		abn := c.Record.Reason.Abnormal()
		draw := abn && p.AbnormalSeen < r.MaxDiagrams
		if abn {
			p.AbnormalSeen++
			if !draw {
				p.NotDrawn++
			}
		}
		v := NewConnView(c, draw, r.Diagram)
		if draw {
			if len(c.Packets) > 0 {
				v.PcapURI = PcapDataURI(c)
			}
			p.Diagrams = append(p.Diagrams, v)
		}
		p.Table = append(p.Table, v)
	}
	return reportTemplate.Execute(w, p)
}

// ConnTemplate is the part of a page showing one connection: its header,
// evidence, diagram, pcap link and packet list (shared by the report and
// the sensor's page).
const ConnTemplate = `{{define "conn"}}
<section class="conn" id="{{.Anchor}}" data-id="{{.ID}}" data-reason="{{.Record.Reason}}" data-retransmissions="{{.Retransmissions}}" data-dropped="{{.Dropped}}">
<h3><span class="reason">{{.Record.Reason}}</span> {{.Record.ReasonText}} — {{.Record.Client}} → {{.Record.Server}}</h3>
<p>id {{.ID}} · {{.Record.Family}} · interface {{.Record.Interface}} · VPN {{.VPN}} · actor {{.Record.Actor}} · state {{.Record.State}} · ended {{.Ended}} UTC · {{printf "%.3f" .Record.DurationS}} s ·
packets {{.Record.Packets.Client}}/{{.Record.Packets.Server}} (client/server) · retransmissions {{.Record.Retransmissions.Client}}/{{.Record.Retransmissions.Server}}</p>
{{if .Evidence}}<p class="evidence">Evidence: {{.Evidence}}</p>{{end}}
{{if .Rows}}<p>{{if .PcapURI}}<a class="pcap" href="{{.PcapURI}}" download="{{.PcapName}}">Download the packets as pcap ({{.PcapName}})</a>{{end}}</p>
<div class="diagram">{{.SVG}}</div>
<details{{if le (len .Rows) 40}} open{{end}}><summary>{{len .Rows}} recorded packets</summary>
<table class="packets"><tr><th>#</th><th>time (s)</th><th>from</th><th>flags</th><th>seq</th><th>ack</th><th>len</th><th>window</th><th>analysis</th></tr>
{{range .Rows}}<tr{{if .Retrans}} class="retrans"{{end}}><td class="n">{{.Index}}</td><td class="n">{{.Time}}</td><td>{{.From}}</td><td>{{.Flags}}</td><td class="n">{{.Seq}}</td><td class="n">{{.Ack}}</td><td class="n">{{.Len}}</td><td class="n">{{.Window}}</td><td>{{.Analysis}}</td></tr>
{{end}}</table></details>
{{else}}<p class="muted">No packets recorded: the connection was not traced (filter, only-new-connection or memory quota).</p>{{end}}
</section>{{end}}`

var reportTemplate = template.Must(template.New("report").Parse(ConnTemplate + `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width">
<link rel="icon" href="data:,">
<style>{{.CSS}}</style></head><body>
<h1>{{.Title}}</h1>
<p class="muted">Generated {{.Generated.UTC.Format "2006-01-02 15:04:05"}} UTC by tcptap{{if .SourcesText}} from {{.SourcesText}}{{end}}. {{.Total}} connections ended; {{len .Table}} kept with their packets, {{.AbnormalSeen}} of them abnormal.</p>
<h2 id="reasons">Connections by reason</h2>
<table class="counts"><tr><th>reason</th><th>meaning</th><th>connections</th></tr>
{{range .Reasons}}<tr><td class="reason">{{.Code}}</td><td>{{.Text}}</td><td class="n">{{.N}}</td></tr>
{{end}}</table>
<div class="charts"><div class="chart">{{.ReasonChart}}</div><div class="chart">{{.PortChart}}</div><div class="chart">{{.TimeChart}}</div></div>
<h2 id="table">Connections</h2>
<table class="conns"><tr><th>local address:port</th><th>foreign address:port</th><th>VPN</th><th>reason</th><th>ended (UTC)</th><th>packets</th><th>retrans.</th><th>diagram</th></tr>
{{range .Table}}<tr data-id="{{.ID}}"><td>{{.Local}}</td><td>{{.Foreign}}</td><td>{{.VPN}}</td><td class="reason">{{.Record.Reason}}</td><td>{{.Ended}}</td><td class="n">{{.Record.Packets.Client}}/{{.Record.Packets.Server}}</td><td class="n">{{.Record.Retransmissions.Client}}/{{.Record.Retransmissions.Server}}</td><td>{{if .Rows}}<a href="#{{.Anchor}}">diagram</a>{{end}}</td></tr>
{{end}}</table>
{{if .NotDrawn}}<p class="muted">{{.NotDrawn}} more abnormal connections are not drawn here: use tcptap read --connection … --svg FILE.</p>{{end}}
<h2 id="diagrams">Abnormal connections</h2>
{{range .Diagrams}}{{template "conn" .}}{{else}}<p>None.</p>{{end}}
</body></html>
`))

// bar is one bar of a chart.
type bar struct {
	Label string
	N     uint64
	Abn   bool
}

// barChart draws a horizontal bar chart as inline SVG.
func barChart(title string, bars []bar) template.HTML {
	const width, labelW, rowH = 440, 190, 18
	h := 24 + rowH*max(len(bars), 1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img"><title>%s</title>`, width, h, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="14" font-weight="bold">%s</text>`, esc(title))
	var top uint64 = 1
	for _, br := range bars {
		top = max(top, br.N)
	}
	for i, br := range bars {
		y := 24 + i*rowH
		wd := float64(width-labelW-50) * float64(br.N) / float64(top)
		class := "bar"
		if br.Abn {
			class += " abn"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+13, esc(br.Label))
		fmt.Fprintf(&b, `<rect class="%s" x="%d" y="%d" width="%.1f" height="%d"/>`, class, labelW, y+2, max(wd, 1), rowH-4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%d</text>`, float64(labelW)+wd+4, y+13, br.N)
	}
	if len(bars) == 0 {
		b.WriteString(`<text x="0" y="38">none</text>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every string escaped above
}

// ReasonChart draws the counts by reason.
func ReasonChart(reasons []ReasonCount) template.HTML {
	bars := make([]bar, len(reasons))
	for i, r := range reasons {
		bars[i] = bar{string(r.Code) + " " + r.Text, r.N, r.Code.Abnormal()}
	}
	return barChart("Connections by reason", bars)
}

// PortChart draws the abnormal closes by server port (the 12 ports with the most).
func PortChart(conns []Conn) template.HTML {
	n := map[uint16]uint64{}
	for _, c := range conns {
		if c.Record.Reason.Abnormal() {
			n[c.Record.Server.Port()]++
		}
	}
	var bars []bar
	for port, k := range n {
		bars = append(bars, bar{fmt.Sprintf("port %d", port), k, true})
	}
	slices.SortFunc(bars, func(a, b bar) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return strings.Compare(a.Label, b.Label)
	})
	if len(bars) > 12 {
		bars = bars[:12]
	}
	return barChart("Abnormal closes by server port", bars)
}

// TimeChart draws the abnormal closes over time: a histogram of their end
// times in up to 24 bins.
func TimeChart(conns []Conn) template.HTML {
	var ts []time.Time
	for _, c := range conns {
		if c.Record.Reason.Abnormal() {
			ts = append(ts, c.Record.LastSeen)
		}
	}
	const width, height, left, bottom = 420, 170, 30, 36
	var b strings.Builder
	title := "Abnormal closes over time"
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img"><title>%s</title><text x="0" y="14" font-weight="bold">%s</text>`, width, height, title, title)
	if len(ts) == 0 {
		b.WriteString(`<text x="0" y="38">none</text></svg>`)
		return template.HTML(b.String())
	}
	first, last := slices.MinFunc(ts, time.Time.Compare), slices.MaxFunc(ts, time.Time.Compare)
	span := last.Sub(first)
	bin := time.Duration(niceStep(float64(max(span, time.Second)) / 24))
	start := first.Truncate(bin)
	nb := int(last.Sub(start)/bin) + 1
	counts := make([]uint64, nb)
	var top uint64 = 1
	for _, t := range ts {
		i := int(t.Sub(start) / bin)
		counts[i]++
		top = max(top, counts[i])
	}
	plotW, plotH := float64(width-left-10), float64(height-24-bottom)
	bw := plotW / float64(nb)
	for i, k := range counts {
		hh := plotH * float64(k) / float64(top)
		fmt.Fprintf(&b, `<rect class="bar abn" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d</title></rect>`,
			float64(left)+float64(i)*bw+1, 24+plotH-hh, max(bw-2, 1), hh, start.Add(time.Duration(i)*bin).UTC().Format("15:04:05.000"), k)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%d</text><text x="%d" y="%.1f" text-anchor="end">0</text>`, left-4, 24+10.0, top, left-4, 24+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f">%s</text><text x="%d" y="%.1f" text-anchor="end">%s UTC</text>`,
		left, 24+plotH+14, start.UTC().Format("2006-01-02 15:04:05"), width-10, 24+plotH+14, last.UTC().Format("15:04:05"))
	fmt.Fprintf(&b, `<text x="%d" y="%.1f">bins of %s</text></svg>`, left, 24+plotH+28, bin)
	return template.HTML(b.String())
}
