package diagram

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// Options shape a diagram.
type Options struct {
	// Width is the drawing's width in pixels (default 960); each
	// direction's panel is PanelHeight high (default 240).
	Width, PanelHeight int
	// Classifier is the configuration the verdict was given with: it says
	// when a silent sender counted as given up (zero: the defaults).
	Classifier classifier.Config
	// Until is when the verdict was given (the end of the capture, or the
	// sensor's clock), in ns; 0 when unknown. The diagram's time axis
	// reaches it so the silence after the last segment is drawn.
	Until int64
	// Dropped is how many records the ring overwrote before the first
	// one given: packets are numbered from Dropped+1.
	Dropped uint64
}

// The classes of the diagram's elements: one element per marked segment
// carries each, so a test (or a reader's stylesheet) can count them.
const (
	ClassSegment    = "seg"       // a segment sent, a bar from seq to seq+len
	ClassRetrans    = "retrans"   // a retransmission (tcptrace's red R)
	ClassOutOfOrder = "ooo"       // out-of-order
	ClassLost       = "lost"      // a segment before this one was not captured
	ClassProbe      = "probe"     // a window (persist) probe
	ClassKeepalive  = "keepalive" // a keepalive probe
	ClassSYN        = "syn"
	ClassFIN        = "fin"
	ClassRST        = "rst"
	ClassZeroWindow = "zerowin" // a period the peer advertised a zero window
)

// style is tcptrace's palette as Wireshark's Stevens/tcptrace graph keeps
// it: data black, retransmissions red, the ACK line green, the window line
// olive, SYN/FIN/RST labelled.
const style = `<style>
.dg text{font:11px sans-serif;fill:#222}
.dg .frame{fill:#fff;stroke:#888}
.dg .grid{stroke:#eee}
.dg .seg{stroke:#000;stroke-width:2}
.dg .retrans{stroke:#d00;stroke-width:3}
.dg .ooo{stroke:#a0a;stroke-width:3}
.dg .lost{stroke:#e80;stroke-width:2}
.dg .probe{stroke:#06c;stroke-width:3}
.dg .keepalive{stroke:#0a8;stroke-width:3}
.dg .syn,.dg .fin{stroke:#000;stroke-width:3}
.dg .rst{stroke:#d00;stroke-width:3}
.dg .mark{font-weight:bold}
.dg .mark.dupack{fill:#090;font-size:10px}
.dg .mark.r{fill:#d00}.dg .mark.o{fill:#a0a}.dg .mark.l{fill:#e80}.dg .mark.p{fill:#06c}.dg .mark.k{fill:#0a8}
.dg .ack{fill:none;stroke:#090;stroke-width:1.5}
.dg .win{fill:none;stroke:#aa0;stroke-width:1.5}
.dg .zerowin{fill:#9bd;fill-opacity:.35}
.dg .silence{fill:#f99;fill-opacity:.18}
.dg .gap{stroke:#d00;fill:none}
.dg .due{stroke:#d00;stroke-dasharray:4 3}
.dg .verdict{font-size:13px;font-weight:bold}
.dg .decisive{fill:none;stroke:#d00;stroke-width:1.5}
</style>`

// WriteSVG writes the time–sequence diagram of one connection from its
// record and recorded packets: one panel per direction, each with the
// sender's segments as bars from seq to seq+len (relative to its ISN)
// over time, the peer's ACK line and advertised-window line (ACK +
// window) as step lines, retransmissions, out-of-order segments, lost
// segments, window probes and keepalives marked, zero-window periods
// shaded, SYN/FIN/RST labelled, and the verdict with its evidence — the
// gaps of the timer-driven run and the silence after it — annotated.
func WriteSVG(w io.Writer, rec *record.Record, pkts []flightrec.PacketRecord, opts Options) error {
	if rec == nil {
		return errors.New("diagram: no connection record")
	}
	if opts.Width <= 0 {
		opts.Width = 960
	}
	if opts.PanelHeight <= 0 {
		opts.PanelHeight = 240
	}
	opts.Classifier = classifierConfig(opts)
	d := newDrawing(rec, pkts, opts)
	bw := bufio.NewWriter(w)
	d.write(bw)
	return bw.Flush()
}

// SVG returns the diagram as a string (see WriteSVG).
func SVG(rec *record.Record, pkts []flightrec.PacketRecord, opts Options) string {
	var b strings.Builder
	if err := WriteSVG(&b, rec, pkts, opts); err != nil {
		return ""
	}
	return b.String()
}

const (
	marginLeft   = 78
	marginRight  = 20
	headerHeight = 48
	panelGap     = 44
	legendHeight = 40
)

type drawing struct {
	rec    *record.Record
	pkts   []flightrec.PacketRecord
	opts   Options
	ev     Evidence
	base   [2]uint32 // each sender's relative-sequence origin
	t0, t1 int64     // the time axis
	plotW  float64
}

func newDrawing(rec *record.Record, pkts []flightrec.PacketRecord, opts Options) *drawing {
	d := &drawing{rec: rec, pkts: pkts, opts: opts}
	d.ev = FindEvidence(rec, pkts, opts.Classifier)
	d.plotW = float64(opts.Width - marginLeft - marginRight)
	for r := range 2 {
		d.base[r] = seqBase(pkts, reassembly.Role(r))
	}
	if len(pkts) > 0 {
		d.t0, d.t1 = pkts[0].Timestamp, pkts[len(pkts)-1].Timestamp
	} else {
		d.t0, d.t1 = rec.FirstSeen.UnixNano(), rec.LastSeen.UnixNano()
	}
	until := opts.Until
	if d.ev.Kind == "" || d.ev.RSTAfter {
		until = 0 // no silence to show: the axis ends with the packets
	}
	for _, t := range []int64{d.ev.NextDue, d.ev.GivenUp, until} {
		if t > d.t1 && t-d.t0 < int64(24*time.Hour) {
			d.t1 = t
		}
	}
	if d.t1 <= d.t0 {
		d.t1 = d.t0 + int64(time.Millisecond)
	}
	d.t1 += (d.t1 - d.t0) / 30 // room after the last mark
	return d
}

// seqBase is the origin of a sender's relative sequence numbers: its ISN
// from the flight recorder's snapshot, as Wireshark's relative numbers (a
// SYN is 0, the first data byte 1); without a snapshot, one before the
// first sequence number it sent.
func seqBase(pkts []flightrec.PacketRecord, r reassembly.Role) uint32 {
	for i := range pkts {
		s := pkts[i].Snap[r]
		if s.ISN != 0 || s.HighSeq != 0 {
			return s.ISN
		}
	}
	for i := range pkts {
		if pkts[i].From == r {
			return pkts[i].Seq - 1
		}
	}
	return 0
}

func (d *drawing) rel(r reassembly.Role, seq uint32) float64 {
	return float64(int32(seq - d.base[r]))
}

func (d *drawing) x(t int64) float64 {
	return marginLeft + float64(t-d.t0)/float64(d.t1-d.t0)*d.plotW
}

func (d *drawing) height() int {
	return headerHeight + 2*d.opts.PanelHeight + 2*panelGap + legendHeight
}

// panel is one direction's plot: r's segments, its peer's ACKs.
type panel struct {
	d          *drawing
	r          reassembly.Role
	top, h     float64
	ymin, ymax float64
	winAbove   bool // the peer's window reaches above the panel: its line is clipped
}

func (p *panel) y(v float64) float64 {
	v = min(max(v, p.ymin), p.ymax)
	return p.top + p.h - (v-p.ymin)/(p.ymax-p.ymin)*p.h
}

func (d *drawing) write(w *bufio.Writer) {
	rec := d.rec
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" class="dg" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`+"\n",
		d.opts.Width, d.height(), d.opts.Width, d.height())
	fmt.Fprintf(w, "<title>%s</title>\n", esc(fmt.Sprintf("time–sequence diagram of %v – %v, %s %s", rec.Client, rec.Server, rec.Reason, rec.ReasonText)))
	w.WriteString(style + "\n")
	fmt.Fprintf(w, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`+"\n", d.opts.Width, d.height())
	verdict := fmt.Sprintf("%s %s", rec.Reason, rec.ReasonText)
	if rec.Actor != "none" && rec.Actor != "" {
		verdict += " (" + rec.Actor + ")"
	}
	fmt.Fprintf(w, `<text class="verdict" x="%d" y="18" data-reason="%s">%s — %s → %s</text>`+"\n",
		marginLeft, esc(string(rec.Reason)), esc(verdict), esc(rec.Client.String()), esc(rec.Server.String()))
	if s := d.ev.Summary(); s != "" {
		fmt.Fprintf(w, `<text class="evidence" x="%d" y="36">evidence: %s</text>`+"\n", marginLeft, esc(s))
	} else if len(d.pkts) == 0 {
		fmt.Fprintf(w, `<text class="evidence" x="%d" y="36">no packets recorded (the connection was not traced)</text>`+"\n", marginLeft)
	}
	for i, r := range []reassembly.Role{reassembly.Client, reassembly.Server} {
		top := float64(headerHeight + i*(d.opts.PanelHeight+panelGap))
		p := d.newPanel(r, top)
		p.write(w)
	}
	d.legend(w)
	w.WriteString("</svg>\n")
}

func (d *drawing) newPanel(r reassembly.Role, top float64) *panel {
	p := &panel{d: d, r: r, top: top + 16, h: float64(d.opts.PanelHeight) - 16}
	lo, hi := math.Inf(1), math.Inf(-1)
	see := func(v float64) { lo, hi = min(lo, v), max(hi, v) }
	winHi := math.Inf(-1)
	for i := range d.pkts {
		pk := &d.pkts[i]
		if pk.From == r {
			y := d.rel(r, pk.Seq)
			see(y)
			see(y + float64(segLen(pk)))
		} else if pk.Flags.Has(capture.FlagACK) {
			a := d.rel(r, pk.Ack)
			see(a)
			winHi = max(winHi, a+float64(pk.WindowScaled()))
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	// The window line is drawn in full when it stays within a few times
	// the data's range; a window far above the data (the usual case for a
	// short connection) would flatten the data to a line, so it is
	// clipped to the panel's top instead.
	span := hi - lo
	if span < 10 {
		span = 10
		hi = lo + span
	}
	if winHi > hi && winHi-lo <= 4*span {
		hi = winHi
	}
	pad := (hi - lo) * 0.08
	p.ymin, p.ymax = lo-pad, hi+pad
	p.winAbove = winHi > p.ymax
	return p
}

// segLen is the sequence space a segment takes: its payload, and one for
// SYN or FIN.
func segLen(p *flightrec.PacketRecord) uint32 {
	n := p.PayloadLen
	if p.Flags.Any(capture.FlagSYN | capture.FlagFIN) {
		n++
	}
	return n
}

func (p *panel) write(w *bufio.Writer) {
	d := p.d
	r, peer := p.r, p.r.Other()
	fmt.Fprintf(w, `<g class="panel" data-sender="%s">`+"\n", r)
	fmt.Fprintf(w, `<text x="%d" y="%.1f">%s → %s: %s's sequence numbers (relative to its ISN), %s's ACK (green) and ACK + window (olive)</text>`+"\n",
		marginLeft, p.top-4, r, peer, r, peer)
	fmt.Fprintf(w, `<rect class="frame" x="%d" y="%.1f" width="%.1f" height="%.1f"/>`+"\n", marginLeft, p.top, d.plotW, p.h)
	p.axes(w)
	p.zeroWindows(w)
	if d.ev.Kind != "" && d.ev.Actor == r {
		p.evidence(w)
	}
	p.ackLines(w)
	for i := range d.pkts {
		if d.pkts[i].From == r {
			p.segment(w, i)
		}
	}
	w.WriteString("</g>\n")
}

// axes draws the time ticks (seconds from the first packet) and the
// relative sequence ticks.
func (p *panel) axes(w *bufio.Writer) {
	d := p.d
	span := float64(d.t1-d.t0) / 1e9
	step := niceStep(span / 8)
	for v := 0.0; v <= span+1e-12; v += step {
		x := d.x(d.t0 + int64(v*1e9))
		fmt.Fprintf(w, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, p.top, x, p.top+p.h)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, p.top+p.h+13, timeTick(v, step))
	}
	ystep := niceStep((p.ymax - p.ymin) / 5)
	for v := math.Ceil(p.ymin/ystep) * ystep; v <= p.ymax; v += ystep {
		y := p.y(v)
		fmt.Fprintf(w, `<line class="grid" x1="%d" y1="%.1f" x2="%.1f" y2="%.1f"/>`, marginLeft, y, marginLeft+d.plotW, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginLeft-4, y+4, trimFloat(v))
	}
}

// timeTick labels a time tick v (seconds) with as many decimals as the
// step needs: in milliseconds when the step is under a millisecond, in
// seconds otherwise.
func timeTick(v, step float64) string {
	if v == 0 {
		return "0"
	}
	unit := "s"
	if step < 1e-3 {
		v, step, unit = v*1e3, step*1e3, "ms"
	}
	dec := max(0, int(math.Ceil(-math.Log10(step)-1e-9)))
	return fmt.Sprintf("%.*f %s", dec, v, unit)
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= raw {
			return m * e
		}
	}
	return 10 * e
}

func trimFloat(v float64) string {
	if math.Abs(v) >= 1e6 {
		return fmt.Sprintf("%.3g", v)
	}
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

// zeroWindows shades the periods the peer advertised a zero window: from
// its segment with window 0 to its next segment with a window open (or the
// end of the axis).
func (p *panel) zeroWindows(w *bufio.Writer) {
	d := p.d
	peer := p.r.Other()
	var from int64
	open := true
	shade := func(to int64) {
		fmt.Fprintf(w, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s advertised a zero window for %s s</title></rect>`+"\n",
			ClassZeroWindow, d.x(from), p.top, max(d.x(to)-d.x(from), 1), p.h, peer, seconds(time.Duration(to-from)))
	}
	for i := range d.pkts {
		pk := &d.pkts[i]
		if pk.From != peer || pk.Flags.Has(capture.FlagRST) {
			continue
		}
		zero := pk.Window == 0 && !pk.Flags.Has(capture.FlagSYN)
		switch {
		case zero && open:
			from, open = pk.Timestamp, false
		case !zero && !open:
			shade(pk.Timestamp)
			open = true
		}
	}
	if !open {
		shade(d.t1)
	}
}

// ackLines draws the peer's ACK and ACK+window as step lines, extended to
// the end of the axis.
func (p *panel) ackLines(w *bufio.Writer) {
	d := p.d
	peer := p.r.Other()
	var ack, win strings.Builder
	var lastA, lastW float64
	n := 0
	for i := range d.pkts {
		pk := &d.pkts[i]
		if pk.From != peer || !pk.Flags.Has(capture.FlagACK) {
			continue
		}
		x := d.x(pk.Timestamp)
		a := p.y(d.rel(p.r, pk.Ack))
		wv := p.y(d.rel(p.r, pk.Ack) + float64(pk.WindowScaled()))
		if n > 0 {
			fmt.Fprintf(&ack, " %.1f,%.1f", x, lastA)
			fmt.Fprintf(&win, " %.1f,%.1f", x, lastW)
		}
		fmt.Fprintf(&ack, " %.1f,%.1f", x, a)
		fmt.Fprintf(&win, " %.1f,%.1f", x, wv)
		lastA, lastW = a, wv
		n++
	}
	if n == 0 {
		return
	}
	end := d.x(d.t1)
	fmt.Fprintf(&ack, " %.1f,%.1f", end, lastA)
	fmt.Fprintf(&win, " %.1f,%.1f", end, lastW)
	fmt.Fprintf(w, `<polyline class="win" points="%s"/>`+"\n", strings.TrimSpace(win.String()))
	fmt.Fprintf(w, `<polyline class="ack" points="%s"/>`+"\n", strings.TrimSpace(ack.String()))
	// Duplicate ACKs, as tcptrace marks them on the ACK line: the
	// receiver saw a segment beyond a hole.
	for i := range d.pkts {
		pk := &d.pkts[i]
		if pk.From == peer && pk.Analysis&reassembly.DupAck != 0 {
			fmt.Fprintf(w, `<text class="mark dupack" data-packet="%d" x="%.1f" y="%.1f" text-anchor="middle">D</text>`,
				d.opts.Dropped+uint64(i)+1, d.x(pk.Timestamp), p.y(d.rel(p.r, pk.Ack))+12)
		}
	}
	if p.winAbove {
		fmt.Fprintf(w, `<text class="winabove" x="%.1f" y="%.1f" text-anchor="end" fill="#880">window line clipped at the top</text>`+"\n", end, p.top-4)
	}
}

// segment draws one segment of the panel's sender: a vertical bar from seq
// to seq+len (a short tick when it takes no sequence space), classed and
// labelled by what it is.
func (p *panel) segment(w *bufio.Writer, i int) {
	d := p.d
	pk := &d.pkts[i]
	x := d.x(pk.Timestamp)
	y0 := p.y(d.rel(p.r, pk.Seq))
	y1 := p.y(d.rel(p.r, pk.Seq) + float64(segLen(pk)))
	if y0-y1 < 3 {
		y0, y1 = (y0+y1)/2+1.5, (y0+y1)/2-1.5
	}
	class, label, labelClass := ClassSegment, "", ""
	a := pk.Analysis
	switch {
	case pk.Flags.Has(capture.FlagRST):
		class, label = ClassRST, "RST"
	case IsRetransmission(pk):
		class, label, labelClass = ClassRetrans, "R", "r"
	case a&reassembly.OutOfOrder != 0:
		class, label, labelClass = ClassOutOfOrder, "O", "o"
	case a&reassembly.PersistProbe != 0:
		class, label, labelClass = ClassProbe, "P", "p"
	case a&reassembly.KeepaliveProbe != 0:
		class, label, labelClass = ClassKeepalive, "K", "k"
	case pk.Flags.Has(capture.FlagSYN):
		class, label = ClassSYN, "SYN"
		if pk.Flags.Has(capture.FlagACK) {
			label = "SYN-ACK"
		}
	case pk.Flags.Has(capture.FlagFIN):
		class, label = ClassFIN, "FIN"
	case a&reassembly.LostSegment != 0:
		class, label, labelClass = ClassLost, "L", "l"
	}
	if class != ClassSYN && pk.Flags.Has(capture.FlagSYN) && label != "" {
		label += " SYN"
	}
	if class != ClassFIN && class != ClassRST && pk.Flags.Has(capture.FlagFIN) {
		label += " FIN"
	}
	idx := d.opts.Dropped + uint64(i) + 1
	if i == d.ev.Decisive {
		fmt.Fprintf(w, `<circle class="decisive" cx="%.1f" cy="%.1f" r="9"><title>the verdict rests on this segment</title></circle>`, x, (y0+y1)/2)
	}
	fmt.Fprintf(w, `<line class="%s" data-packet="%d" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"><title>%s</title></line>`,
		class, idx, x, y0, x, y1, esc(d.describe(pk, idx)))
	if label != "" {
		fmt.Fprintf(w, `<text class="mark %s" x="%.1f" y="%.1f">%s</text>`, labelClass, x+3, y1-3, esc(label))
	}
	w.WriteByte('\n')
}

// describe is a segment's tooltip: its number, time, flags, relative
// sequence range, length, window and analysis.
func (d *drawing) describe(pk *flightrec.PacketRecord, idx uint64) string {
	s := fmt.Sprintf("#%d %s +%s s [%s] seq %s len %d ack %s win %d",
		idx, pk.From, seconds(time.Duration(pk.Timestamp-d.t0)), pk.Flags,
		trimFloat(d.rel(pk.From, pk.Seq)), pk.PayloadLen, trimFloat(d.rel(pk.From.Other(), pk.Ack)), pk.WindowScaled())
	if n := pk.Analysis.Names(); len(n) > 0 {
		s += " " + strings.Join(n, ",")
	}
	return s
}

// evidence draws the verdict's run in its sender's panel: a bracket per
// gap between successive segments of the run, labelled with the gap, and
// after the last one the silence: shaded to when the sender counted as
// given up, with a dashed line where its next segment was due.
func (p *panel) evidence(w *bufio.Writer) {
	d := p.d
	ev := &d.ev
	// The gaps are bracketed in the half of the panel away from the run's
	// segments and their labels: along the bottom (above a SYN's label)
	// when the segments sit high, as retransmitted data does, along the
	// top when they sit low, as SYNs do.
	y := p.top + p.h - 36
	if p.runLow() {
		y = p.top + 34
	}
	w.WriteString(`<g class="evidence-marks">` + "\n")
	for i := 1; i < len(ev.Times); i++ {
		x0, x1 := d.x(ev.Times[i-1]), d.x(ev.Times[i])
		// Narrow gaps (the first of a backoff) alternate their labels'
		// height so the labels do not overlap.
		ly := y - 4
		if i%2 == 0 && x1-x0 < 60 {
			ly -= 13
		}
		fmt.Fprintf(w, `<path class="gap" d="M%.1f,%.1f v6 H%.1f v-6"/>`, x0, y, x1)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s s</text>`+"\n", (x0+x1)/2, ly, seconds(time.Duration(ev.Times[i]-ev.Times[i-1])))
	}
	if len(ev.Times) == 0 || ev.RSTAfter {
		w.WriteString("</g>\n")
		return
	}
	last := ev.Times[len(ev.Times)-1]
	end := d.t1
	if ev.GivenUp > last {
		end = min(ev.GivenUp, d.t1)
	}
	if d.opts.Until > end {
		end = min(d.opts.Until, d.t1)
	}
	fmt.Fprintf(w, `<rect class="silence" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>silence after the last %s</title></rect>`,
		d.x(last), p.top, max(d.x(end)-d.x(last), 1), p.h, esc(ev.Kind))
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f">silence</text>`+"\n", d.x(last)+4, p.top+p.h/2)
	if ev.NextDue > last {
		x := d.x(ev.NextDue)
		fmt.Fprintf(w, `<line class="due" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, p.top, x, p.top+p.h)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">next %s due</text>`+"\n", x-3, p.top+30, esc(ev.Kind))
	}
	if ev.GivenUp > last {
		x := d.x(ev.GivenUp)
		fmt.Fprintf(w, `<line class="due" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, p.top, x, p.top+p.h)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">given up</text>`+"\n", x-3, p.top+44)
	}
	w.WriteString("</g>\n")
}

// runLow reports whether the evidence run's segments sit in the lower
// half of the panel.
func (p *panel) runLow() bool {
	d := p.d
	var sum float64
	n := 0
	for i := range d.pkts {
		pk := &d.pkts[i]
		if pk.From == p.r && slices.Contains(d.ev.Times, pk.Timestamp) {
			sum += p.y(d.rel(p.r, pk.Seq))
			n++
		}
	}
	return n > 0 && sum/float64(n) > p.top+p.h/2
}

func (d *drawing) legend(w *bufio.Writer) {
	y := float64(d.height() - legendHeight + 18)
	x := float64(marginLeft)
	items := []struct{ class, text string }{
		{ClassSegment, "data"}, {ClassRetrans, "R retransmission"}, {ClassOutOfOrder, "O out of order"},
		{ClassLost, "L lost before"}, {ClassProbe, "P window probe"}, {ClassKeepalive, "K keepalive"},
		{ClassRST, "RST"}, {"ack", "ACK (D dup)"}, {"win", "ACK + window"},
	}
	for _, it := range items {
		fmt.Fprintf(w, `<line class="%s legend" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, it.class, x, y-10, x+12, y-10+10)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s</text>`, x+16, y, esc(it.text))
		x += 22 + 5.6*float64(len(it.text))
	}
	fmt.Fprintf(w, `<rect class="zerowin legend" x="%.1f" y="%.1f" width="12" height="12"/><text x="%.1f" y="%.1f">zero window</text>`, x, y-10, x+16, y)
	w.WriteString("\n")
}

// esc escapes text for SVG and HTML (both element text and attribute
// values).
func esc(s string) string { return html.EscapeString(s) }
