package classifier

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/reassembly"
)

// Config holds the local networks and the thresholds of the timeout rules.
// The defaults are chosen from what the real Linux stack puts on the wire
// (docs/wire.md) so that a connection that lost packets but recovered is
// never called a timeout: every run is reset when the peer answers.
type Config struct {
	// LocalNets names the local side: the endpoint inside these prefixes
	// when exactly one endpoint is; otherwise the client.
	LocalNets []netip.Prefix

	// RTMinRetransmissions is how many retransmissions of the same
	// unacknowledged data, with backing-off gaps, make a retransmission
	// timeout once the sender falls silent or resets.
	RTMinRetransmissions uint32
	// PTMinProbes is how many window probes against a zero window make a
	// persist timeout once the prober falls silent or resets.
	PTMinProbes uint32
	// KTMinProbes is how many evenly spaced unanswered keepalive probes make
	// a keepalive timeout when the prober falls silent instead of resetting
	// (BSD, Windows). One unanswered probe followed by the prober's RST is
	// Linux's keepalive timeout.
	KTMinProbes uint32
	// SilenceFactor and MinSilence say when a sender has visibly given up
	// (see Config.Silence): its next retransmission or probe was due
	// SilenceFactor times the last gap after the last one (Linux doubles
	// its RTO, and its persist timer, each time, up to MaxBackoff), and it
	// stayed silent past that by a margin of a quarter of it, and at least
	// MinSilence.
	SilenceFactor float64
	MinSilence    time.Duration
	// SYNSilence is how long a single unanswered SYN must stay unanswered
	// (with no retry) to be a SYN timeout rather than a connection still
	// being attempted when the capture ended.
	SYNSilence time.Duration
}

// DefaultConfig returns the documented default thresholds.
func DefaultConfig() Config {
	return Config{
		RTMinRetransmissions: 3,
		PTMinProbes:          2,
		KTMinProbes:          3,
		SilenceFactor:        2,
		MinSilence:           time.Second,
		SYNSilence:           3 * time.Second,
	}
}

// MaxBackoff is the longest a backing-off sender waits between two
// retransmissions or probes: Linux's TCP_RTO_MAX (120 s), which also caps
// its persist timer. Windows and the BSDs cap lower (60 s and 64 s).
const MaxBackoff = 120 * time.Second

// Silence returns how long a sender whose last retransmission or probe came
// lastGap after the one before must stay silent to have given up: until its
// next one was due (SilenceFactor × lastGap, capped at MaxBackoff but never
// under lastGap), plus a margin of a quarter of that and at least
// MinSilence. Before then the sender may still be retrying, and a path that
// heals lets the connection go on: no verdict is given, live or offline, on
// a fraction of the gap. The same threshold serves `tcptap read` at the end
// of a capture and `tcptap run` on a silent connection, so both give the
// same reason for the same traffic.
func (c *Config) Silence(lastGap time.Duration) time.Duration {
	due := time.Duration(float64(lastGap) * c.SilenceFactor)
	if due > MaxBackoff {
		due = max(MaxBackoff, lastGap)
	}
	margin := max(due/4, c.MinSilence)
	return due + margin
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.RTMinRetransmissions < 1:
		return fmt.Errorf("rt_min_retransmissions must be at least 1")
	case c.PTMinProbes < 1:
		return fmt.Errorf("pt_min_probes must be at least 1")
	case c.KTMinProbes < 1:
		return fmt.Errorf("kt_min_probes must be at least 1")
	case c.SilenceFactor < 1:
		return fmt.Errorf("silence_factor must be at least 1 (got %g)", c.SilenceFactor)
	case c.MinSilence < 0 || c.SYNSilence < 0:
		return fmt.Errorf("silence durations must not be negative")
	}
	return nil
}

// Result is the classification of one finished connection.
type Result struct {
	Reason    Code
	Actor     reassembly.Role // meaningful when HasActor
	HasActor  bool
	Local     reassembly.Role
	ConnState string // Zeek's conn_state
	History   string // Zeek's history
}

// Classifier applies the rule table with one configuration.
type Classifier struct {
	cfg Config
}

// New returns a classifier; cfg zero fields take their defaults.
func New(cfg Config) *Classifier {
	d := DefaultConfig()
	if cfg.RTMinRetransmissions == 0 {
		cfg.RTMinRetransmissions = d.RTMinRetransmissions
	}
	if cfg.PTMinProbes == 0 {
		cfg.PTMinProbes = d.PTMinProbes
	}
	if cfg.KTMinProbes == 0 {
		cfg.KTMinProbes = d.KTMinProbes
	}
	if cfg.SilenceFactor == 0 {
		cfg.SilenceFactor = d.SilenceFactor
	}
	if cfg.MinSilence == 0 {
		cfg.MinSilence = d.MinSilence
	}
	if cfg.SYNSilence == 0 {
		cfg.SYNSilence = d.SYNSilence
	}
	return &Classifier{cfg: cfg}
}

// Config returns the effective configuration.
func (k *Classifier) Config() Config { return k.cfg }

// Classify decides c's reason code.
func (k *Classifier) Classify(c *reassembly.Conn) Result {
	local := k.LocalRole(c)
	res := Result{Local: local, ConnState: c.Zeek.ConnState(), History: c.Zeek.History()}
	in := input{c: c, cfg: &k.cfg, local: local}
	for i := range rules {
		if actor, hasActor, ok := rules[i].match(&in); ok {
			res.Reason, res.Actor, res.HasActor = rules[i].code, actor, hasActor
			return res
		}
	}
	res.Reason = StillOpen
	return res
}

// LocalRole returns the role of c's local side (reassembly.LocalRoleOf:
// the table names the same side for its live counts by side).
func (k *Classifier) LocalRole(c *reassembly.Conn) reassembly.Role {
	return reassembly.LocalRoleOf(k.cfg.LocalNets,
		capture.AddrOf(c.Ends[reassembly.Client].Addr, c.Family), capture.AddrOf(c.Ends[reassembly.Server].Addr, c.Family))
}
