package metrics

import (
	"math"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/record"
)

// NumReasons is the number of reason codes: per-reason arrays are indexed
// by a code's stable index less one (classifier.Reason.Index).
const NumReasons = classifier.NumCodes

// MaxServices bounds exporter.port_labels: each listed server port gets its
// own series per reason, so cardinality stays bounded.
const MaxServices = 32

// directionNames are the direction label's values by the sender's role
// (reassembly.Client: client to server).
var directionNames = [2]string{"client_to_server", "server_to_client"}

// ReasonIndex returns code's slot in per-reason arrays, or -1 for an
// unknown code.
func ReasonIndex(code classifier.Code) int { return code.Index() - 1 }

// Counters are one worker's plain counters of ended connections. The
// worker owns them and adds each connection once, when it ends (the record
// is built then anyway), so nothing is added on the per-packet path. What
// counts segments as they are seen (by direction, and by side for TCP-MIB)
// is the connection table's reassembly.TableStats.Segments instead. Fixed
// arrays only: Add does not allocate, and a copy is a snapshot.
type Counters struct {
	Closed   [NumReasons]uint64
	Services [MaxServices][NumReasons]uint64 // by exporter.port_labels slot

	// AttemptFails: connections whose handshake never completed (RF, ST)
	// after the local side opened them: it sent the SYN, or it answered
	// one with a SYN-ACK (TCP-MIB's tcpAttemptFails).
	AttemptFails uint64
	// EstabResets: connections aborted after the handshake, by a RST (AA,
	// SR, RR) or by a retransmission, persist or keepalive timer (RT, PT,
	// KT) (TCP-MIB's tcpEstabResets).
	EstabResets uint64

	HandshakeRTT Histogram
	DataRTT      Histogram
}

// Add counts one ended connection. ports are the server ports of
// exporter.port_labels (at most MaxServices are used).
func (c *Counters) Add(r *record.Record, ports []uint16) {
	i := ReasonIndex(r.Reason)
	if i < 0 {
		return
	}
	c.Closed[i]++
	sp := r.Server.Port()
	for s, p := range ports {
		if s >= MaxServices {
			break
		}
		if p == sp {
			c.Services[s][i]++
			break
		}
	}
	c.addOutcome(r)
	if r.RTTms.Handshake > 0 {
		c.HandshakeRTT.Observe(r.RTTms.Handshake / 1e3)
	}
	if r.RTTms.Data.Client > 0 {
		c.DataRTT.Observe(r.RTTms.Data.Client / 1e3)
	}
	if r.RTTms.Data.Server > 0 {
		c.DataRTT.Observe(r.RTTms.Data.Server / 1e3)
	}
}

// addOutcome counts r as a failed attempt or an aborted connection.
func (c *Counters) addOutcome(r *record.Record) {
	localIsServer := r.Local == "server"
	switch r.Reason {
	case classifier.Refused, classifier.SYNTimeout:
		// SYNs counts a client's SYNs and a server's SYN-ACKs: the local
		// side opened actively (its SYN) or passively (its SYN-ACK).
		opened := r.SYNs.Client > 0
		if localIsServer {
			opened = r.SYNs.Server > 0
		}
		if opened && !r.Midstream {
			c.AttemptFails++
		}
	case classifier.AppAbnormalClose, classifier.SentReset, classifier.ReceivedReset,
		classifier.RetransmitTimeout, classifier.PersistTimeout, classifier.KeepaliveTimeout:
		c.EstabResets++
	}
}

// Opens are a worker's live handshake counters, counted when the segment
// is seen rather than when the connection ends: TCP-MIB's tcpActiveOpens
// (CLOSED to SYN-SENT of a local-side host) and tcpPassiveOpens (LISTEN to
// SYN-RCVD of a local-side host).
type Opens struct {
	// Active: connections opened by a SYN from their local side.
	Active uint64
	// Passive: connections whose local side answered the remote side's SYN
	// with a SYN-ACK (also when that SYN itself was not captured).
	Passive uint64
}

// Merge adds o's counts to c.
func (c *Counters) Merge(o *Counters) {
	for i := range c.Closed {
		c.Closed[i] += o.Closed[i]
	}
	for s := range c.Services {
		for i := range c.Services[s] {
			c.Services[s][i] += o.Services[s][i]
		}
	}
	c.AttemptFails += o.AttemptFails
	c.EstabResets += o.EstabResets
	c.HandshakeRTT.Merge(&o.HandshakeRTT)
	c.DataRTT.Merge(&o.DataRTT)
}

// Histogram geometry: a Prometheus native histogram of schema 2 (4 buckets
// per power of two, growth factor 2^(1/4) ≈ 1.19), bucket indexes
// histMinIndex..histMaxIndex, i.e. from 2^-20 s (about 1 µs; smaller values
// go to the zero bucket) to 2^10 s (1024 s; larger values are clamped into
// the last bucket). The classic fallback buckets are the powers of two
// 2^-20 ... 2^10 s, every fourth native boundary, so both views come from
// the same counts.
const (
	histSchema   = 2
	histMinIndex = -79 // (2^(-80/4), 2^(-79/4)]
	histMaxIndex = 40  // (2^(39/4), 2^10]
	histBuckets  = histMaxIndex - histMinIndex + 1
)

// histZeroThreshold is the upper bound of the zero bucket: 2^-20 s.
var histZeroThreshold = math.Ldexp(1, -20)

// Histogram is a plain (not concurrency-safe) histogram owned by a worker.
type Histogram struct {
	Count   uint64
	Sum     float64
	Zero    uint64 // observations <= histZeroThreshold
	Buckets [histBuckets]uint64
}

// bucketIndex returns the native bucket index of v > 0 for schema 2: the
// smallest i with v <= 2^(i/4).
func bucketIndex(v float64) int {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		return (exp - 1) * 4 // exact power of two: on a boundary
	}
	// v in (2^(exp-1), 2^exp): sub-bucket by frac against 2^(-k/4).
	for k := 3; k >= 1; k-- {
		if frac <= subBounds[k] {
			return exp*4 - k
		}
	}
	return exp * 4
}

// subBounds[k] = 2^(-k/4), the boundaries inside an octave.
var subBounds = [4]float64{1, math.Pow(2, -0.25), math.Pow(2, -0.5), math.Pow(2, -0.75)}

// Observe adds one value in seconds.
func (h *Histogram) Observe(v float64) {
	h.Count++
	h.Sum += v
	if v <= histZeroThreshold {
		h.Zero++
		return
	}
	i := bucketIndex(v)
	if i > histMaxIndex {
		i = histMaxIndex
	}
	h.Buckets[i-histMinIndex]++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	h.Count += o.Count
	h.Sum += o.Sum
	h.Zero += o.Zero
	for i := range h.Buckets {
		h.Buckets[i] += o.Buckets[i]
	}
}
