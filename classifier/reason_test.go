package classifier

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/tcptap/tcptap/reassembly"
)

// TestReasonTable: codes are unique, their indexes are 1..NumCodes (stable
// and dense, so per-reason arrays have a slot for each), and the rule table
// tries the codes in the reason table's order.
func TestReasonTable(t *testing.T) {
	seen, idx := map[Code]bool{}, map[int]bool{}
	for _, r := range Reasons {
		if seen[r.Code] || r.Index < 1 || r.Index > NumCodes || idx[r.Index] || r.Name == "" || r.Help == "" {
			t.Errorf("bad row %+v", r)
		}
		seen[r.Code], idx[r.Index] = true, true
		if r.Code.Index() != r.Index || r.Code.Text() != r.Name || !r.Code.Valid() || r.Code.Abnormal() != r.Abnormal {
			t.Errorf("%s: accessors disagree with the row", r.Code)
		}
	}
	for i, rl := range rules {
		if Codes[i] != rl.code {
			t.Errorf("rule %d is %s, the reason table's row %d is %s", i, rl.code, i, Codes[i])
		}
	}
	if Code("XX").Valid() || Code("XX").Index() != 0 || Code("XX").Text() != "" {
		t.Error("an unknown code looks known")
	}
}

// TestReasonTableInDocs: the README's and docs/reasons.md's tables list
// exactly the reason table's codes and names, in its order.
func TestReasonTableInDocs(t *testing.T) {
	row := regexp.MustCompile(`(?m)^\| ([A-Z]{2}) \| ([^|]+?) \|`)
	for _, doc := range []string{"../README.md", "../docs/reasons.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		var got []Reason
		for _, m := range row.FindAllStringSubmatch(string(b), -1) {
			if c := Code(m[1]); c.Valid() {
				got = append(got, Reason{Code: c, Name: m[2]})
			}
		}
		if len(got) != NumCodes {
			t.Errorf("%s: %d rows of reason codes, want %d", doc, len(got), NumCodes)
			continue
		}
		for i, r := range got {
			if r.Code != Reasons[i].Code || r.Name != Reasons[i].Name {
				t.Errorf("%s: row %d is %s %q, want %s %q", doc, i, r.Code, r.Name, Reasons[i].Code, Reasons[i].Name)
			}
		}
	}
}

// conn builds a hand-made connection for the rule tests: established
// unless said otherwise, judged at 60 s.
func conn(set func(c *reassembly.Conn)) *reassembly.Conn {
	c := &reassembly.Conn{Established: true, EvalTime: int64(60 * time.Second)}
	c.Ends[reassembly.Client].SYNs = 1
	c.Ends[reassembly.Server].SYNACKs = 1
	set(c)
	return c
}

func run(count int, first, lastGap time.Duration) reassembly.Run {
	return reassembly.Run{Count: uint32(count), First: int64(first), Last: int64(first + lastGap*2),
		MinGap: int64(lastGap / 2), MaxGap: int64(lastGap), LastGap: int64(lastGap)}
}

// TestRules: each rule on small hand-built connections, beside the
// real-traffic tests of every rule (scenarios_test.go).
func TestRules(t *testing.T) {
	const (
		cl = reassembly.Client
		sv = reassembly.Server
	)
	reset := func(c *reassembly.Conn, by reassembly.Role, at time.Duration) {
		c.AnyRST, c.FirstRST = true, by
		c.Ends[by].RSTSent, c.Ends[by].RSTTime = true, int64(at)
	}
	for _, tc := range []struct {
		name  string
		set   func(c *reassembly.Conn)
		want  Code
		actor reassembly.Role
	}{
		{"refused", func(c *reassembly.Conn) {
			c.Established = false
			reset(c, sv, time.Second)
			c.RSTInHandshake = true
		}, Refused, sv},
		{"SYNs retried, then silence", func(c *reassembly.Conn) {
			c.Established = false
			c.Ends[sv].SYNACKs = 0
			c.Ends[cl].SYNs = 4
			c.Ends[cl].SYNRun = run(4, 0, 2*time.Second)
			c.Ends[cl].LastNonRST = int64(4 * time.Second)
		}, SYNTimeout, cl},
		{"a lone SYN unanswered for 3 s", func(c *reassembly.Conn) {
			c.Established = false
			c.Ends[sv].SYNACKs = 0
			c.Ends[cl].SYNRun = reassembly.Run{Count: 1, First: int64(55 * time.Second), Last: int64(55 * time.Second)}
			c.Ends[cl].LastNonRST = int64(55 * time.Second)
		}, SYNTimeout, cl},
		{"retransmissions backing off, then silence", func(c *reassembly.Conn) {
			c.Ends[cl].Retransmits = run(5, time.Second, 3*time.Second)
			c.Ends[cl].LastNonRST = int64(7 * time.Second)
		}, RetransmitTimeout, cl},
		{"retransmissions then the retransmitter's RST (BSD)", func(c *reassembly.Conn) {
			c.Ends[sv].Retransmits = run(3, time.Second, time.Second)
			c.Ends[sv].LastNonRST = int64(3 * time.Second)
			reset(c, sv, 4*time.Second)
		}, RetransmitTimeout, sv},
		{"window probes against a zero window, then silence", func(c *reassembly.Conn) {
			c.Ends[sv].WindowZero = true
			c.Ends[cl].Persist = run(3, time.Second, 2*time.Second)
			c.Ends[cl].LastNonRST = int64(5 * time.Second)
		}, PersistTimeout, cl},
		{"keepalives, then the prober's RST", func(c *reassembly.Conn) {
			c.Ends[cl].Keepalive = run(2, time.Second, time.Second)
			reset(c, cl, 4*time.Second)
		}, KeepaliveTimeout, cl},
		{"the local side's FIN, then its RST", func(c *reassembly.Conn) {
			c.AnyFIN, c.FirstFIN = true, cl
			c.Ends[cl].FINSent = true
			reset(c, cl, time.Second)
			c.Ends[cl].RSTAfterFIN = true
		}, AppAbnormalClose, cl},
		{"the local side's RST", func(c *reassembly.Conn) { reset(c, cl, time.Second) }, SentReset, cl},
		{"the remote side's RST", func(c *reassembly.Conn) { reset(c, sv, time.Second) }, ReceivedReset, sv},
		{"the remote side's RST after its FIN", func(c *reassembly.Conn) {
			c.AnyFIN, c.FirstFIN = true, sv
			reset(c, sv, time.Second)
			c.Ends[sv].RSTAfterFIN = true
		}, ReceivedReset, sv},
		{"both FINs, the local first", func(c *reassembly.Conn) {
			c.AnyFIN, c.FirstFIN, c.CloseDone = true, cl, true
		}, AppNormalClose, cl},
		{"both FINs, the remote first", func(c *reassembly.Conn) {
			c.AnyFIN, c.FirstFIN, c.CloseDone = true, sv, true
		}, PeerNormalClose, sv},
		{"idle", func(c *reassembly.Conn) { c.End = reassembly.EndIdle }, IdleTimeout, 0},
		{"open", func(c *reassembly.Conn) {}, StillOpen, 0},
		{"retransmissions, answered too soon to judge", func(c *reassembly.Conn) {
			c.Ends[cl].Retransmits = run(5, 50*time.Second, 3*time.Second)
			c.Ends[cl].LastNonRST = int64(56 * time.Second)
		}, StillOpen, 0},
		{"keepalives without a RST, too few to judge", func(c *reassembly.Conn) {
			c.Ends[cl].Keepalive = run(2, time.Second, time.Second)
			c.Ends[cl].LastNonRST = int64(3 * time.Second)
		}, StillOpen, 0},
	} {
		res := New(Config{}).Classify(conn(tc.set))
		if res.Reason != tc.want || (res.HasActor && res.Actor != tc.actor) {
			t.Errorf("%s: %s (actor %v), want %s (actor %v)", tc.name, res.Reason, res.Actor, tc.want, tc.actor)
		}
	}
}
