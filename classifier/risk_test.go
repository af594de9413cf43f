package classifier

import (
	"testing"
	"time"

	"github.com/tcptap/tcptap/reassembly"
)

func TestSilence(t *testing.T) {
	cfg := DefaultConfig()
	for _, tc := range []struct {
		gap, want time.Duration
	}{
		// The next retransmission is due 2 x the gap after the last;
		// a quarter of that, at least 1 s, on top.
		{200 * time.Millisecond, 400*time.Millisecond + time.Second},
		{3200 * time.Millisecond, 6400*time.Millisecond + 1600*time.Millisecond},
		// Linux caps its RTO at 120 s: a gap of 100 s is followed by
		// one of 120 s, not 200 s.
		{100 * time.Second, 120*time.Second + 30*time.Second},
		// Once capped the gaps stay at 120 s.
		{120 * time.Second, 120*time.Second + 30*time.Second},
		// A gap beyond the cap (another stack) is never shortened.
		{200 * time.Second, 200*time.Second + 50*time.Second},
		{0, time.Second},
	} {
		if got := cfg.Silence(tc.gap); got != tc.want {
			t.Errorf("Silence(%v) = %v, want %v", tc.gap, got, tc.want)
		}
	}
}

// stalled is a connection whose client retransmitted the same data with
// gaps of 0.2, 0.4, 0.8, 1.6 and 3.2 s, the last at 6.2 s.
func stalled() *reassembly.Conn {
	c := &reassembly.Conn{Established: true}
	c.Ends[reassembly.Client].Retransmits = reassembly.Run{
		Count: 5, Unanswered: 5, First: int64(200 * time.Millisecond), Last: int64(6200 * time.Millisecond),
		MinGap: int64(400 * time.Millisecond), MaxGap: int64(3200 * time.Millisecond), LastGap: int64(3200 * time.Millisecond),
	}
	c.Ends[reassembly.Client].LastNonRST = int64(6200 * time.Millisecond)
	c.Ends[reassembly.Client].LastTime = int64(6200 * time.Millisecond)
	return c
}

// TestRetransmitTimeoutWaits: RT only once the next retransmission (6.4 s
// after the last) is overdue by the margin, never at 1.5 x the gap.
func TestRetransmitTimeoutWaits(t *testing.T) {
	k := New(Config{})
	for _, tc := range []struct {
		at   time.Duration
		want Code
	}{
		{6200*time.Millisecond + 4800*time.Millisecond, StillOpen}, // 1.5 x the gap: the old rule's verdict
		{6200*time.Millisecond + 6400*time.Millisecond, StillOpen}, // the next retransmission is due
		{6200*time.Millisecond + 7900*time.Millisecond, StillOpen},
		{6200*time.Millisecond + 8000*time.Millisecond, RetransmitTimeout},
	} {
		c := stalled()
		c.EvalTime = int64(tc.at)
		if got := k.Classify(c).Reason; got != tc.want {
			t.Errorf("at %v: %s, want %s", tc.at, got, tc.want)
		}
	}
	// A RST after the run is a given-up sender at once (BSD).
	c := stalled()
	c.AnyRST, c.FirstRST = true, reassembly.Client
	c.Ends[reassembly.Client].RSTSent = true
	c.Ends[reassembly.Client].RSTTime = int64(6300 * time.Millisecond)
	c.EvalTime = int64(6300 * time.Millisecond)
	if got := k.Classify(c).Reason; got != RetransmitTimeout {
		t.Errorf("RST after the run: %s, want RT", got)
	}
}

func TestRiskOf(t *testing.T) {
	ms := func(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }
	run := func(first int) reassembly.Run {
		return reassembly.Run{Count: 1, Unanswered: 1, First: ms(first), Last: ms(first)}
	}
	for _, tc := range []struct {
		name      string
		set       func(c *reassembly.Conn)
		now       int
		want      Risk
		wantSince int
	}{
		{"healthy", func(c *reassembly.Conn) {}, 5000, NoRisk, 0},
		{"retransmitting", func(c *reassembly.Conn) { c.Ends[reassembly.Client].Retransmits = run(1000) }, 1300, RiskRetransmitting, 1000},
		{"retransmission younger than the hold", func(c *reassembly.Conn) { c.Ends[reassembly.Client].Retransmits = run(1000) }, 1100, NoRisk, 0},
		{"zero window", func(c *reassembly.Conn) {
			c.Ends[reassembly.Server].WindowZero = true
			c.Ends[reassembly.Client].Persist = run(2000)
		}, 3000, RiskZeroWindow, 2000},
		{"probe-shaped run with the window open", func(c *reassembly.Conn) { c.Ends[reassembly.Client].Persist = run(2000) }, 3000, NoRisk, 0},
		{"keepalive", func(c *reassembly.Conn) { c.Ends[reassembly.Server].Keepalive = run(500) }, 3000, RiskKeepaliveUnanswered, 500},
		{"SYN retried", func(c *reassembly.Conn) {
			c.Established = false
			c.Ends[reassembly.Client].SYNRun = reassembly.Run{Count: 2, First: 0, Last: ms(1000)}
		}, 1500, RiskSYNUnanswered, 0},
		{"a single SYN", func(c *reassembly.Conn) {
			c.Established = false
			c.Ends[reassembly.Client].SYNRun = run(0)
		}, 1500, NoRisk, 0},
		{"the older of two patterns", func(c *reassembly.Conn) {
			c.Ends[reassembly.Client].Retransmits = run(3000)
			c.Ends[reassembly.Server].Keepalive = run(1000)
		}, 4000, RiskKeepaliveUnanswered, 1000},
		{"reset", func(c *reassembly.Conn) {
			c.Ends[reassembly.Client].Retransmits = run(1000)
			c.AnyRST = true
		}, 4000, NoRisk, 0},
	} {
		c := &reassembly.Conn{Established: true}
		tc.set(c)
		got, since := RiskOf(c, ms(tc.now))
		if got != tc.want || (got != NoRisk && since != ms(tc.wantSince)) {
			t.Errorf("%s: %v since %v, want %v since %v", tc.name, got, since, tc.want, ms(tc.wantSince))
		}
	}
}

func TestRiskNames(t *testing.T) {
	if len(Risks) != NumRisks-1 {
		t.Fatalf("Risks lists %d, want %d", len(Risks), NumRisks-1)
	}
	for _, r := range Risks {
		if p, ok := ParseRisk(r.String()); !ok || p != r {
			t.Errorf("ParseRisk(%q) = %v %v", r.String(), p, ok)
		}
	}
	if _, ok := ParseRisk(""); ok {
		t.Error(`ParseRisk("") succeeds`)
	}
}
