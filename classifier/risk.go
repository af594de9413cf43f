package classifier

import (
	"time"

	"github.com/tcptap/tcptap/reassembly"
)

// Risk names the pattern an open connection is in that ends in a timer's
// verdict (RT, PT, KT or ST) if it goes on: the live sensor's early
// warning. It clears as soon as the peer answers, since the table resets
// a run when the peer acknowledges the data, reopens its window, answers
// a keepalive or completes the handshake.
type Risk uint8

// Risks, in the order the at-risk gauge and TCPTAP-MIB list them.
const (
	NoRisk Risk = iota
	// RiskRetransmitting: the oldest unacknowledged data was retransmitted
	// and no ACK has covered it yet (the road to RT).
	RiskRetransmitting
	// RiskZeroWindow: the peer advertises a zero window and the sender
	// probes it (the road to PT).
	RiskZeroWindow
	// RiskKeepaliveUnanswered: keepalive probes went out and the peer has
	// sent nothing since (the road to KT).
	RiskKeepaliveUnanswered
	// RiskSYNUnanswered: the SYN (or the SYN-ACK) was retransmitted and the
	// handshake has not completed (the road to ST).
	RiskSYNUnanswered
	numRisks
)

// Risks lists every risk but NoRisk: the causes of the at-risk gauge.
var Risks = []Risk{RiskRetransmitting, RiskZeroWindow, RiskKeepaliveUnanswered, RiskSYNUnanswered}

// NumRisks is the size of an array indexed by Risk.
const NumRisks = int(numRisks)

var riskNames = [numRisks]string{"", "retransmitting", "zero_window", "keepalive_unanswered", "syn_unanswered"}

// String returns the risk's name as records, metrics and the API show it
// ("" for NoRisk).
func (r Risk) String() string {
	if int(r) < len(riskNames) {
		return riskNames[r]
	}
	return ""
}

// ParseRisk returns the risk named s.
func ParseRisk(s string) (Risk, bool) {
	for i, n := range riskNames {
		if i > 0 && n == s {
			return Risk(i), true
		}
	}
	return NoRisk, false
}

// RiskHold is how long a retransmission, probe or SYN retry must have gone
// unanswered before the connection counts as at risk: Linux's minimum RTO.
// A fast retransmission or a keepalive that the peer answers within a
// round trip never shows as a risk.
const RiskHold = 200 * time.Millisecond

// RiskOf returns the pattern that open connection c is in, as of now, and
// when it began: the first unanswered retransmission, probe or keepalive
// of the current run, or the first SYN of a retried handshake. Of two
// patterns (one per direction, or a retransmission and a probe) the one
// that began first is named.
func RiskOf(c *reassembly.Conn, now int64) (Risk, int64) {
	if c.Ended || c.AnyRST || c.CloseDone {
		return NoRisk, 0
	}
	best, since := NoRisk, int64(0)
	consider := func(r Risk, run *reassembly.Run) {
		if run.Count == 0 || now-run.First < int64(RiskHold) {
			return
		}
		if best == NoRisk || run.First < since {
			best, since = r, run.First
		}
	}
	for r := reassembly.Client; r <= reassembly.Server; r++ {
		e, peer := &c.Ends[r], &c.Ends[r.Other()]
		consider(RiskRetransmitting, &e.Retransmits)
		if peer.WindowZero {
			consider(RiskZeroWindow, &e.Persist)
		}
		consider(RiskKeepaliveUnanswered, &e.Keepalive)
		if !c.Established && !c.Midstream && e.SYNRun.Count > 1 {
			consider(RiskSYNUnanswered, &e.SYNRun)
		}
	}
	return best, since
}
