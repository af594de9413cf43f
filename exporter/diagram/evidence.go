// Package diagram draws one connection's last packets as a time–sequence
// diagram (SVG), in the manner of tcptrace's time–sequence graph and
// Wireshark's tcptrace-style Stevens graph, with tcptap's verdict and the
// evidence its rule used drawn on it; and writes the self-contained HTML
// report of a run (report.go).
package diagram

import (
	"fmt"
	"strings"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// retransmitted are the analysis flags that make a segment a
// retransmission, as reassembly counts Endpoint.Retransmissions: one mark
// per such segment makes the diagram's marks match the record's count.
const retransmitted = reassembly.Retransmission | reassembly.FastRetransmission |
	reassembly.SpuriousRetransmission | reassembly.ProbeRetransmission

// IsRetransmission reports whether the diagram marks p as a retransmission.
func IsRetransmission(p *flightrec.PacketRecord) bool { return p.Analysis&retransmitted != 0 }

// Evidence is what the verdict's rule looked at, found again in the
// recorded packets: the run of timer-driven segments one side sent (RT:
// retransmissions; PT: window probes; KT: keepalives; ST: SYNs), their gaps
// and when the next was due had the sender not given up.
type Evidence struct {
	Kind  string          // "retransmission", "window probe", "keepalive", "SYN"; "" when the reason has no timer run
	Actor reassembly.Role // who sent the run
	Times []int64         // the run's segments, packet times (ns)
	// NextDue is when the sender's next segment of the run was due on the
	// backoff it showed (SilenceFactor times the last gap: Linux doubles
	// it), and GivenUp
	// when its silence past that made the rule judge it given up
	// (classifier.Config.Silence); both 0 when the run has fewer than two
	// segments.
	NextDue, GivenUp int64
	RSTAfter         bool // the actor sent a RST after the run (BSD, or Linux after keepalive_probes)

	// Decisive is the index in the packets of the segment a reset or
	// close verdict rests on (the first RST; the first FIN for AN and
	// PN), -1 when none was recorded; Note says it in words.
	Decisive int
	Note     string
}

// Gaps returns the run's gaps between successive segments.
func (e *Evidence) Gaps() []time.Duration {
	var g []time.Duration
	for i := 1; i < len(e.Times); i++ {
		g = append(g, time.Duration(e.Times[i]-e.Times[i-1]))
	}
	return g
}

// Summary says the evidence in one line, e.g. "client sent 6 retransmissions,
// gaps 0.2 0.4 0.8 1.6 3.2 s backing off, then silence (next due +6.4 s)".
func (e *Evidence) Summary() string {
	if e.Kind == "" || len(e.Times) == 0 {
		return e.Note
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sent %d %s", e.Actor, len(e.Times), plural(e.Kind, len(e.Times)))
	if g := e.Gaps(); len(g) > 0 {
		b.WriteString(", gaps")
		for _, d := range g {
			fmt.Fprintf(&b, " %s", seconds(d))
		}
		b.WriteString(" s")
	}
	switch {
	case e.RSTAfter:
		b.WriteString(", then a RST")
	case e.NextDue != 0:
		fmt.Fprintf(&b, ", then silence: the next was due %s s after the last", seconds(time.Duration(e.NextDue-e.Times[len(e.Times)-1])))
	default:
		b.WriteString(", then silence")
	}
	return b.String()
}

func plural(s string, n int) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// seconds prints a duration in seconds with as many decimals as it needs
// (up to milliseconds).
func seconds(d time.Duration) string {
	s := fmt.Sprintf("%.3f", d.Seconds())
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// after prints a delay: in seconds from a second up, as Go prints a
// duration (to the microsecond) below.
func after(d time.Duration) string {
	if d >= time.Second {
		return seconds(d) + " s"
	}
	return d.Round(time.Microsecond).String()
}

// FindEvidence finds the evidence of rec's verdict in its recorded packets.
func FindEvidence(rec *record.Record, pkts []flightrec.PacketRecord, cfg classifier.Config) Evidence {
	e := Evidence{Decisive: -1}
	var match func(p *flightrec.PacketRecord) bool
	switch rec.Reason {
	case classifier.Refused:
		e.decisive(pkts, capture.FlagRST, "RST")
		if e.Decisive >= 0 {
			e.Note = fmt.Sprintf("the %s answered the SYN with a RST", pkts[e.Decisive].From)
		}
		return e
	case classifier.AppAbnormalClose, classifier.SentReset, classifier.ReceivedReset:
		e.decisive(pkts, capture.FlagRST, "RST")
		return e
	case classifier.AppNormalClose, classifier.PeerNormalClose:
		e.decisive(pkts, capture.FlagFIN, "FIN")
		return e
	case classifier.RetransmitTimeout:
		e.Kind, match = "retransmission", IsRetransmission
	case classifier.PersistTimeout:
		e.Kind = "window probe"
		match = func(p *flightrec.PacketRecord) bool { return p.Analysis&reassembly.PersistProbe != 0 }
	case classifier.KeepaliveTimeout:
		e.Kind = "keepalive"
		match = func(p *flightrec.PacketRecord) bool { return p.Analysis&reassembly.KeepaliveProbe != 0 }
	case classifier.SYNTimeout:
		e.Kind = "SYN"
		match = func(p *flightrec.PacketRecord) bool { return p.Flags.Has(capture.FlagSYN) }
	default:
		return e
	}
	actor, known := roleOf(rec.Actor)
	if !known {
		// The side with the most segments of the kind.
		var n [2]int
		for i := range pkts {
			if match(&pkts[i]) {
				n[pkts[i].From]++
			}
		}
		if n[reassembly.Server] > n[reassembly.Client] {
			actor = reassembly.Server
		}
	}
	e.Actor = actor
	for i := range pkts {
		p := &pkts[i]
		if p.From != actor {
			continue
		}
		switch {
		case match(p):
			e.Times = append(e.Times, p.Timestamp)
			e.RSTAfter = false
		case p.Flags.Has(capture.FlagRST) && len(e.Times) > 0:
			e.RSTAfter = true
		}
	}
	if n := len(e.Times); n >= 2 {
		last := time.Duration(e.Times[n-1] - e.Times[n-2])
		due := time.Duration(float64(last) * cfg.SilenceFactor)
		if due > classifier.MaxBackoff {
			due = max(classifier.MaxBackoff, last)
		}
		e.NextDue = e.Times[n-1] + int64(due)
		e.GivenUp = e.Times[n-1] + int64(cfg.Silence(last))
	}
	return e
}

// roleOf maps a record's actor ("client", "server", "none") to a role.
func roleOf(s string) (reassembly.Role, bool) {
	switch s {
	case reassembly.Client.String():
		return reassembly.Client, true
	case reassembly.Server.String():
		return reassembly.Server, true
	}
	return reassembly.Client, false
}

// decisive finds the first segment with flag, the one a reset or close
// verdict rests on.
func (e *Evidence) decisive(pkts []flightrec.PacketRecord, flag capture.Flags, name string) {
	for i := range pkts {
		p := &pkts[i]
		if !p.Flags.Has(flag) {
			continue
		}
		e.Decisive = i
		e.Note = fmt.Sprintf("the %s sent the first %s, %s after the first recorded packet", p.From, name, after(time.Duration(p.Timestamp-pkts[0].Timestamp)))
		return
	}
}
