package pipeline

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/reassembly"
)

// tableOf returns a worker whose table holds n open connections
// (handshakes only).
func tableOf(tb testing.TB, n int) *Worker {
	tb.Helper()
	w := New(Config{Index: 0, Total: 1, Table: reassembly.DefaultConfig(), Classifier: classifier.New(classifier.Config{}),
		Interface: func(*reassembly.Conn) string { return "test0" }})
	now := time.Now().UnixNano()
	sa, fam := capture.AddrFrom(netip.MustParseAddr("10.1.0.1"))
	for i := 0; i < n; i++ {
		da, _ := capture.AddrFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 16), byte(i >> 8)}))
		p := capture.Packet{Timestamp: now, Src: sa, Dst: da, SrcPort: uint16(1024 + i%60000), DstPort: uint16(80 + i%251),
			Family: fam, Seq: uint32(i), Flags: capture.FlagSYN, Window: 1000, Options: capture.TCPOptions{WScale: -1}}
		w.Segment(&p, nil)
	}
	if w.table.Len() != n {
		tb.Fatalf("%d connections in the table, want %d", w.table.Len(), n)
	}
	return w
}

// TestOpenPageHold lists a table of 100,000 open connections a page at a
// time, as the HTTP API and the SNMP agent do, and reports how long each
// page holds the worker (the target is at most 10 ms). Every connection is
// listed once, in increasing ID order.
func TestOpenPageHold(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	const n = 100_000
	w := tableOf(t, n)
	var worst, total time.Duration
	var holds []time.Duration
	seen, pages := 0, 0
	q := OpenQuery{Limit: MaxOpenPage}
	last := int64(-1)
	for {
		start := time.Now()
		pg := w.OpenPage(q, time.Now().UnixNano())
		d := time.Since(start)
		worst, total, pages = max(worst, d), total+d, pages+1
		holds = append(holds, d)
		for _, r := range pg.Records {
			if int64(r.ID) <= last {
				t.Fatalf("ID %d after %d", r.ID, last)
			}
			last = int64(r.ID)
		}
		seen += len(pg.Records)
		if !pg.More {
			break
		}
		q.From = pg.Records[len(pg.Records)-1].ID + 1
	}
	if seen != n {
		t.Errorf("%d connections listed, want %d", seen, n)
	}
	slices.Sort(holds)
	t.Logf("%d open connections in %d pages of %d: the worker held %v per page on average, p99 %v, %v at most (target 10ms)",
		n, pages, MaxOpenPage, (total / time.Duration(pages)).Round(time.Microsecond),
		holds[len(holds)*99/100].Round(time.Microsecond), worst.Round(time.Microsecond))
}

// BenchmarkOpenPage is one page of 1,000 open connections out of 100,000:
// the longest a listing holds a worker at a time.
func BenchmarkOpenPage(b *testing.B) {
	w := tableOf(b, 100_000)
	now := time.Now().UnixNano()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.OpenPage(OpenQuery{From: uint64(i%50) * 1000, Limit: MaxOpenPage}, now)
	}
}
