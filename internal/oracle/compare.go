package oracle

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/tcptap/tcptap/record"
)

// Field is one per-direction count both tshark and tcptap report.
type Field struct {
	// Name is tshark's name for the count ("syn+syn_ack" for the sum the
	// record's SYNs pair holds).
	Name string
	// Exact fields must be equal; the others are Wireshark's analysis
	// heuristics, compared with a table of known disagreements.
	Exact  bool
	Tshark func(c *Counts) uint64
	// Tcptap returns the record's value for the endpoint in role client
	// (true) or server (false).
	Tcptap func(r *record.Record, client bool) uint64
}

func side[T uint32 | uint64](p record.Pair[T], client bool) uint64 {
	if client {
		return uint64(p.Client)
	}
	return uint64(p.Server)
}

// Fields lists the compared counts: first the exact ones, then tcptap's
// Wireshark-compatible analysis counts against tshark's tcp.analysis.*.
// tshark's zero_window_probe_ack, keep_alive_ack and reused_ports have no
// per-direction counterpart in the record and are not compared.
var Fields = []Field{
	{"packets", true, func(c *Counts) uint64 { return c.Packets },
		func(r *record.Record, cl bool) uint64 { return side(r.Packets, cl) }},
	{"payload_bytes", true, func(c *Counts) uint64 { return c.PayloadBytes },
		func(r *record.Record, cl bool) uint64 { return side(r.Bytes, cl) }},
	{"syn+syn_ack", true, func(c *Counts) uint64 { return uint64(c.SYN) + uint64(c.SYNACK) },
		func(r *record.Record, cl bool) uint64 { return side(r.SYNs, cl) }},
	{"fin", true, func(c *Counts) uint64 { return uint64(c.FIN) },
		func(r *record.Record, cl bool) uint64 { return side(r.FINs, cl) }},
	{"rst", true, func(c *Counts) uint64 { return uint64(c.RST) },
		func(r *record.Record, cl bool) uint64 { return side(r.Resets, cl) }},
	{"retransmission", false, func(c *Counts) uint64 { return uint64(c.Retransmission) },
		func(r *record.Record, cl bool) uint64 { return side(r.Retransmissions, cl) }},
	{"fast_retransmission", false, func(c *Counts) uint64 { return uint64(c.FastRetransmission) },
		func(r *record.Record, cl bool) uint64 { return side(r.FastRetransmissions, cl) }},
	{"spurious_retransmission", false, func(c *Counts) uint64 { return uint64(c.SpuriousRetransmission) },
		func(r *record.Record, cl bool) uint64 { return side(r.SpuriousRetransmissions, cl) }},
	{"out_of_order", false, func(c *Counts) uint64 { return uint64(c.OutOfOrder) },
		func(r *record.Record, cl bool) uint64 { return side(r.OutOfOrder, cl) }},
	{"duplicate_ack", false, func(c *Counts) uint64 { return uint64(c.DuplicateAck) },
		func(r *record.Record, cl bool) uint64 { return side(r.DupAcks, cl) }},
	{"zero_window", false, func(c *Counts) uint64 { return uint64(c.ZeroWindow) },
		func(r *record.Record, cl bool) uint64 { return side(r.ZeroWindows, cl) }},
	{"keep_alive", false, func(c *Counts) uint64 { return uint64(c.KeepAlive) },
		func(r *record.Record, cl bool) uint64 { return side(r.WiresharkKeepAlives, cl) }},
	{"zero_window_probe", false, func(c *Counts) uint64 { return uint64(c.ZeroWindowProbe) },
		func(r *record.Record, cl bool) uint64 { return side(r.WiresharkZeroWinProbes, cl) }},
	{"window_full", false, func(c *Counts) uint64 { return uint64(c.WindowFull) },
		func(r *record.Record, cl bool) uint64 { return side(r.WindowFull, cl) }},
	{"previous_segment_not_captured", false, func(c *Counts) uint64 { return uint64(c.PreviousSegmentNotCaptured) },
		func(r *record.Record, cl bool) uint64 { return side(r.LostSegments, cl) }},
	{"ack_of_unseen_segment", false, func(c *Counts) uint64 { return uint64(c.AckOfUnseenSegment) },
		func(r *record.Record, cl bool) uint64 { return side(r.AckedUnseen, cl) }},
}

// FieldByName returns the Field called name.
func FieldByName(name string) (Field, bool) {
	for _, f := range Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Tuple is an unordered 4-tuple: A is the lower endpoint.
type Tuple struct{ A, B netip.AddrPort }

// TupleOf returns the unordered 4-tuple of two endpoints.
func TupleOf(x, y netip.AddrPort) Tuple {
	x = netip.AddrPortFrom(x.Addr().Unmap(), x.Port())
	y = netip.AddrPortFrom(y.Addr().Unmap(), y.Port())
	if y.Compare(x) < 0 {
		x, y = y, x
	}
	return Tuple{x, y}
}

func (t Tuple) String() string { return t.A.String() + "<->" + t.B.String() }

// Group is everything both tools saw on one 4-tuple: tshark's streams and
// tcptap's records, each in time order. When both have the same number, the
// i-th stream is paired with the i-th record; otherwise the tools split the
// 4-tuple into connections differently (port reuse, VLANs, timeouts) and
// only the group's per-endpoint sums are comparable.
type Group struct {
	Tuple   Tuple
	Streams []*Stream
	Records []*record.Record
}

// Paired reports whether the group's streams and records pair one to one.
func (g *Group) Paired() bool { return len(g.Streams) == len(g.Records) }

// Match groups tshark's streams and tcptap's records by unordered 4-tuple,
// in time order within a group (streams by first frame, records by first
// segment). Groups are returned sorted by their first stream's tcp.stream
// (groups without a stream last, by tuple).
func Match(streams []Stream, recs []record.Record) []*Group {
	groups := map[Tuple]*Group{}
	get := func(t Tuple) *Group {
		g := groups[t]
		if g == nil {
			g = &Group{Tuple: t}
			groups[t] = g
		}
		return g
	}
	for i := range streams {
		s := &streams[i]
		g := get(TupleOf(s.Client.AddrPort(), s.Server.AddrPort()))
		g.Streams = append(g.Streams, s)
	}
	for i := range recs {
		r := &recs[i]
		g := get(TupleOf(r.Client, r.Server))
		g.Records = append(g.Records, r)
	}
	out := make([]*Group, 0, len(groups))
	for _, g := range groups {
		sort.SliceStable(g.Streams, func(i, j int) bool { return g.Streams[i].FirstFrame < g.Streams[j].FirstFrame })
		sort.SliceStable(g.Records, func(i, j int) bool {
			a, b := g.Records[i], g.Records[j]
			if !a.FirstSeen.Equal(b.FirstSeen) {
				return a.FirstSeen.Before(b.FirstSeen)
			}
			return a.ID < b.ID
		})
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case len(a.Streams) > 0 && len(b.Streams) > 0:
			return a.Streams[0].TCPStream < b.Streams[0].TCPStream
		case len(a.Streams) > 0 || len(b.Streams) > 0:
			return len(a.Streams) > 0
		}
		return a.Tuple.A.Compare(b.Tuple.A) < 0 || (a.Tuple.A == b.Tuple.A && a.Tuple.B.Compare(b.Tuple.B) < 0)
	})
	return out
}

// Diff is one per-direction count on which tshark and tcptap disagree.
type Diff struct {
	// Stream is tshark's tcp.stream of a paired comparison, or "*" when
	// the group's sums were compared (the tools split it differently).
	Stream string
	Tuple  Tuple
	// Sender is the endpoint whose segments are counted; Role is its role
	// in tcptap's record ("client" or "server") and Dir tshark's direction
	// ("c2s" or "s2c"); in a group comparison either may be "?" when the
	// records or streams disagree on the role.
	Sender netip.AddrPort
	Role   string
	Dir    string
	Field  string
	Exact  bool
	Tshark uint64
	Tcptap uint64
}

func (d Diff) String() string {
	kind := "tolerant"
	if d.Exact {
		kind = "EXACT"
	}
	return fmt.Sprintf("stream %s %s, sent by %s (tcptap %s, tshark %s): %s %s tshark=%d tcptap=%d",
		d.Stream, d.Tuple, d.Sender, d.Role, d.Dir, kind, d.Field, d.Tshark, d.Tcptap)
}

// Tally counts, per field, the directions compared and those that agree.
type Tally struct {
	Agree map[string]int
	Total map[string]int
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{Agree: map[string]int{}, Total: map[string]int{}} }

// Add merges o into t.
func (t *Tally) Add(o *Tally) {
	for k, v := range o.Agree {
		t.Agree[k] += v
	}
	for k, v := range o.Total {
		t.Total[k] += v
	}
}

// Summary renders the tally as "packets 100% (N/N directions), ...".
func (t *Tally) Summary() string {
	var parts []string
	for _, f := range Fields {
		n := t.Total[f.Name]
		if n == 0 {
			continue
		}
		a := t.Agree[f.Name]
		pct := strconv.FormatFloat(100*float64(a)/float64(n), 'f', 1, 64)
		pct = strings.TrimSuffix(pct, ".0")
		parts = append(parts, fmt.Sprintf("%s %s%% (%d/%d directions)", f.Name, pct, a, n))
	}
	return strings.Join(parts, ", ")
}

// sent is one endpoint's counts on both sides of a comparison.
type sent struct {
	ep     netip.AddrPort
	role   string // tcptap's role, "?" if mixed
	dir    string // tshark's direction, "?" if mixed
	tshark []uint64
	tcptap []uint64
}

// Compare compares every group and returns the differences and the tally.
// A group whose streams and records pair one to one is compared pair by
// pair; any other group by its per-endpoint sums. A stream without any
// tcptap record (or a record without a stream) counts as all zeros on the
// other side.
func Compare(groups []*Group) ([]Diff, *Tally) {
	var diffs []Diff
	tally := NewTally()
	for _, g := range groups {
		if g.Paired() {
			for i := range g.Streams {
				s, r := g.Streams[i], g.Records[i]
				label := strconv.Itoa(s.TCPStream)
				diffs = append(diffs, compareSent(label, g.Tuple, collect([]*Stream{s}, []*record.Record{r}, g.Tuple), tally)...)
			}
			continue
		}
		diffs = append(diffs, compareSent("*", g.Tuple, collect(g.Streams, g.Records, g.Tuple), tally)...)
	}
	return diffs, tally
}

// SplitDiffs returns a "split" difference for every group whose streams
// and records do not pair one to one: the 4-tuples tshark and tcptap
// divide into different numbers of connections.
func SplitDiffs(groups []*Group) []Diff {
	var diffs []Diff
	for _, g := range groups {
		if !g.Paired() {
			diffs = append(diffs, Diff{Stream: "*", Tuple: g.Tuple, Field: "split",
				Tshark: uint64(len(g.Streams)), Tcptap: uint64(len(g.Records))})
		}
	}
	return diffs
}

func collect(streams []*Stream, recs []*record.Record, t Tuple) []*sent {
	ends := []*sent{
		{ep: t.A, tshark: make([]uint64, len(Fields)), tcptap: make([]uint64, len(Fields))},
		{ep: t.B, tshark: make([]uint64, len(Fields)), tcptap: make([]uint64, len(Fields))},
	}
	if t.A == t.B {
		ends = ends[:1] // a self-connection: both directions are one sender
	}
	find := func(ep netip.AddrPort) *sent {
		ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
		for _, e := range ends {
			if e.ep == ep {
				return e
			}
		}
		return nil
	}
	label := func(cur *string, v string) {
		if *cur == "" {
			*cur = v
		} else if *cur != v {
			*cur = "?"
		}
	}
	for _, s := range streams {
		for _, d := range []struct {
			ep  netip.AddrPort
			dir string
			c   *Counts
		}{{s.Client.AddrPort(), "c2s", &s.C2S}, {s.Server.AddrPort(), "s2c", &s.S2C}} {
			e := find(d.ep)
			label(&e.dir, d.dir)
			for i, f := range Fields {
				e.tshark[i] += f.Tshark(d.c)
			}
		}
	}
	for _, r := range recs {
		for _, d := range []struct {
			ep     netip.AddrPort
			role   string
			client bool
		}{{r.Client, "client", true}, {r.Server, "server", false}} {
			e := find(d.ep)
			label(&e.role, d.role)
			for i, f := range Fields {
				e.tcptap[i] += f.Tcptap(r, d.client)
			}
		}
	}
	for _, e := range ends {
		if e.role == "" {
			e.role = "-"
		}
		if e.dir == "" {
			e.dir = "-"
		}
	}
	return ends
}

func compareSent(stream string, t Tuple, ends []*sent, tally *Tally) []Diff {
	var diffs []Diff
	for _, e := range ends {
		for i, f := range Fields {
			tally.Total[f.Name]++
			if e.tshark[i] == e.tcptap[i] {
				tally.Agree[f.Name]++
				continue
			}
			diffs = append(diffs, Diff{
				Stream: stream, Tuple: t, Sender: e.ep, Role: e.role, Dir: e.dir,
				Field: f.Name, Exact: f.Exact, Tshark: e.tshark[i], Tcptap: e.tcptap[i],
			})
		}
	}
	return diffs
}
