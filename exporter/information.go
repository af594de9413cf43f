package exporter

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
)

// TraceInformation is what "display tcp trace information" shows: the trace
// configuration and its statistics.
type TraceInformation struct {
	Enabled           bool
	MaxPacketNumber   int
	MemoryQuota       int64 // bytes
	MemoryUsed        int64
	MemoryPeak        int64
	CacheMode         string
	Filter            []string // ACL rules, in order
	OnlyNewConnection bool

	ConnectionsTracked uint64 // connections seen (opened)
	ConnectionsActive  uint64 // still in the connection tables
	Traced             uint64 // connections given a flight recorder
	NotTracedQuota     uint64
	NotTracedFilter    uint64
	NotTracedOld       uint64 // only-new-connection: handshake not seen after enabling
	RecordsWritten     uint64
	RecordsOverwritten uint64
	Cached             uint64
	CachedByReason     map[classifier.Code]uint64
	RecordsCached      uint64
	NotCachedQuota     uint64
	Skipped            uint64 // finished connections the cache mode does not keep
}

// AddTable adds one connection table's statistics, and the connections it
// holds: the information of a run sums its workers' tables. The one place
// both tcptap read and tcptap run turn table statistics into it.
func (in *TraceInformation) AddTable(t *reassembly.TableStats, active int) {
	in.ConnectionsTracked += t.Opened
	in.ConnectionsActive += uint64(active)
	in.Traced += t.Trace.Traced
	in.NotTracedQuota += t.Trace.NotTracedQuota
	in.NotTracedFilter += t.Trace.NotTracedACL
	in.NotTracedOld += t.Trace.NotTracedOld
	in.RecordsWritten += t.Trace.Records
	in.RecordsOverwritten += t.Trace.Overwritten
}

// SetMemory takes the trace memory's quota, use and peak from q.
func (in *TraceInformation) SetMemory(q *flightrec.Quota) {
	in.MemoryQuota, in.MemoryUsed, in.MemoryPeak = q.Limit(), q.Used(), q.Peak()
}

// SetCache takes the cache's statistics.
func (in *TraceInformation) SetCache(cs cache.Stats) {
	in.Cached, in.CachedByReason, in.RecordsCached = cs.Cached, cs.ByReason, cs.RecordsCached
	in.NotCachedQuota, in.Skipped = cs.NotCachedQuota, cs.Skipped
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// FormatBytes prints a byte count in binary units, e.g. "100.0 MiB".
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WriteInformation prints the trace configuration and statistics.
func WriteInformation(w io.Writer, in *TraceInformation) error {
	bw := bufio.NewWriter(w)
	filter := "none (all connections)"
	if len(in.Filter) > 0 {
		filter = strings.Join(in.Filter, "; ")
	}
	pct := 0.0
	if in.MemoryQuota > 0 {
		pct = float64(in.MemoryUsed) * 100 / float64(in.MemoryQuota)
	}
	fmt.Fprintf(bw, "TCP trace information\n")
	fmt.Fprintf(bw, "  Trace                  : %s\n", onOff(in.Enabled))
	fmt.Fprintf(bw, "  Filter                 : %s\n", filter)
	fmt.Fprintf(bw, "  Only new connections   : %s\n", onOff(in.OnlyNewConnection))
	fmt.Fprintf(bw, "  Max packet number      : %d\n", in.MaxPacketNumber)
	fmt.Fprintf(bw, "  Cache mode             : %s\n", in.CacheMode)
	fmt.Fprintf(bw, "  Memory quota           : %s (%d bytes)\n", FormatBytes(in.MemoryQuota), in.MemoryQuota)
	fmt.Fprintf(bw, "  Memory used            : %s (%d bytes, %.1f%%), peak %s\n", FormatBytes(in.MemoryUsed), in.MemoryUsed, pct, FormatBytes(in.MemoryPeak))
	fmt.Fprintf(bw, "Connections\n")
	fmt.Fprintf(bw, "  Tracked                : %d (%d still open)\n", in.ConnectionsTracked, in.ConnectionsActive)
	fmt.Fprintf(bw, "  Traced                 : %d\n", in.Traced)
	fmt.Fprintf(bw, "  Not traced, quota      : %d\n", in.NotTracedQuota)
	fmt.Fprintf(bw, "  Not traced, filter     : %d\n", in.NotTracedFilter)
	fmt.Fprintf(bw, "  Not traced, not new    : %d\n", in.NotTracedOld)
	fmt.Fprintf(bw, "  Cached                 : %d\n", in.Cached)
	for _, c := range classifier.Codes {
		if n := in.CachedByReason[c]; n > 0 {
			fmt.Fprintf(bw, "    %-2s %-26s: %d\n", c, c.Text(), n)
		}
	}
	fmt.Fprintf(bw, "  Not cached, quota      : %d\n", in.NotCachedQuota)
	fmt.Fprintf(bw, "  Not cached, cache mode : %d\n", in.Skipped)
	fmt.Fprintf(bw, "Packet records\n")
	fmt.Fprintf(bw, "  Written                : %d\n", in.RecordsWritten)
	fmt.Fprintf(bw, "  Overwritten            : %d\n", in.RecordsOverwritten)
	fmt.Fprintf(bw, "  Held in the cache      : %d\n", in.RecordsCached)
	return bw.Flush()
}
