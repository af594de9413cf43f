package snmp

import (
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/record"
)

// TCPTAP-MIB, under [TCPTAPMIB] (enterprise arc 64399 is a placeholder
// until registered with IANA):
//
//	tcptapObjects                  TCPTAPMIB.1
//	  tcptapTrace                  .1   trace configuration (docs/trace.md)
//	    tcptapTraceEnable          .1.1 TruthValue, read-write
//	    tcptapTraceMaxPacketNumber .1.2 Integer32 (1..1048576), read-write
//	    tcptapTraceMemoryQuota     .1.3 Unsigned32 KiB, read-write
//	    tcptapTraceCacheMode       .1.4 abnormalClose(1) all(2), read-write
//	    tcptapTraceMemoryUsed      .1.5 Unsigned32 KiB
//	    tcptapTraceOnlyNewConn     .1.6 TruthValue
//	  tcptapStats                  .2   Counter64 / Gauge32 statistics
//	  tcptapClosedTable            .3   closed connections by reason
//	  tcptapCacheTable             .4   the trace cache
//	  tcptapNotifyObjects          .5   objects of notifications (notify.go)
//	  tcptapCaptureTable           .6   capture statistics per interface
//	  tcptapRiskTable              .7   open connections at risk, by cause
//
// Sets follow the control commands' rules: max-packet-number and
// memory-quota change only while tracing is disabled (inconsistentValue
// otherwise, unless the same PDU disables it). A PDU's commits run in the
// order disable, other settings, enable, so one PDU may disable, change and
// re-enable.
var (
	tcptapObjects = TCPTAPMIB.Append(1)
	tcptapTrace   = tcptapObjects.Append(1)
	tcptapStats   = tcptapObjects.Append(2)
)

// Commit orders of trace settings.
const (
	orderDisable = iota
	orderSetting
	orderEnable
)

func truth(b bool) Value {
	if b {
		return Integer(1)
	}
	return Integer(2)
}

func intValue(v Value) (int, gosnmp.SNMPError) {
	n, ok := v.V.(int)
	if v.Type != gosnmp.Integer || !ok {
		return 0, gosnmp.WrongType
	}
	return n, gosnmp.NoError
}

// pduDisables reports whether the request sets tcptapTraceEnable to
// false(2).
func pduDisables(r *Request) bool {
	inst := tcptapTrace.Append(1, 0)
	for _, b := range r.Sets {
		if b.OID.Compare(inst) == 0 {
			if n, st := intValue(b.Value); st == gosnmp.NoError && n == 2 {
				return true
			}
		}
	}
	return false
}

func tcptapMIB(b Backend) []Provider {
	trace := func(id uint32, get func(r *Request) Value, set func(r *Request, v Value) (Commit, gosnmp.SNMPError)) Provider {
		return (&Scalar{OID: tcptapTrace.Append(id), Get: get, Set: set}).Provider()
	}
	whileDisabled := func(r *Request) gosnmp.SNMPError {
		if b.Settings().Enabled && !pduDisables(r) {
			return gosnmp.InconsistentValue
		}
		return gosnmp.NoError
	}
	info := func(r *Request) *exporter.TraceInformation {
		if v, ok := r.memo["info"]; ok {
			return v.(*exporter.TraceInformation)
		}
		in := b.Information()
		r.memo["info"] = in
		return in
	}
	provs := []Provider{
		trace(1, func(*Request) Value { return truth(b.Settings().Enabled) },
			func(_ *Request, v Value) (Commit, gosnmp.SNMPError) {
				n, st := intValue(v)
				if st != gosnmp.NoError {
					return Commit{}, st
				}
				if n != 1 && n != 2 {
					return Commit{}, gosnmp.WrongValue
				}
				order := orderEnable
				if n == 2 {
					order = orderDisable
				}
				return Commit{Order: order, Apply: func() error { return b.SetEnabled(n == 1) }}, gosnmp.NoError
			}),
		trace(2, func(*Request) Value { return Integer(b.Settings().MaxPacketNumber) },
			func(r *Request, v Value) (Commit, gosnmp.SNMPError) {
				n, st := intValue(v)
				if st != gosnmp.NoError {
					return Commit{}, st
				}
				if flightrec.CheckMaxPacketNumber(n) != nil {
					return Commit{}, gosnmp.WrongValue
				}
				if st := whileDisabled(r); st != gosnmp.NoError {
					return Commit{}, st
				}
				return Commit{Order: orderSetting, Apply: func() error { return b.SetMaxPacketNumber(n) }}, gosnmp.NoError
			}),
		trace(3, func(*Request) Value { return Gauge32(uint64(b.Settings().MemoryQuota) / 1024) },
			func(r *Request, v Value) (Commit, gosnmp.SNMPError) {
				if v.Type != gosnmp.Gauge32 {
					return Commit{}, gosnmp.WrongType
				}
				n, ok := v.V.(uint)
				if !ok {
					return Commit{}, gosnmp.WrongType
				}
				if st := whileDisabled(r); st != gosnmp.NoError {
					return Commit{}, st
				}
				return Commit{Order: orderSetting, Apply: func() error { return b.SetMemoryQuota(int64(n) * 1024) }}, gosnmp.NoError
			}),
		trace(4, func(*Request) Value {
			if b.Settings().CacheMode == cache.All {
				return Integer(2)
			}
			return Integer(1)
		}, func(_ *Request, v Value) (Commit, gosnmp.SNMPError) {
			n, st := intValue(v)
			if st != gosnmp.NoError {
				return Commit{}, st
			}
			m := map[int]cache.Mode{1: cache.AbnormalClose, 2: cache.All}
			mode, ok := m[n]
			if !ok {
				return Commit{}, gosnmp.WrongValue
			}
			return Commit{Order: orderSetting, Apply: func() error { return b.SetCacheMode(mode) }}, gosnmp.NoError
		}),
		trace(5, func(r *Request) Value { return Gauge32(uint64(max(info(r).MemoryUsed, 0)) / 1024) }, nil),
		trace(6, func(*Request) Value { return truth(b.Settings().OnlyNewConnection) }, nil),
	}

	stat := func(id uint32, get func(in *exporter.TraceInformation) Value) Provider {
		return (&Scalar{OID: tcptapStats.Append(id), Get: func(r *Request) Value { return get(info(r)) }}).Provider()
	}
	c64 := func(id uint32, f func(in *exporter.TraceInformation) uint64) Provider {
		return stat(id, func(in *exporter.TraceInformation) Value { return Counter64(f(in)) })
	}
	provs = append(provs,
		c64(1, func(in *exporter.TraceInformation) uint64 { return in.ConnectionsTracked }),
		stat(2, func(in *exporter.TraceInformation) Value { return Gauge32(in.ConnectionsActive) }),
		c64(3, func(in *exporter.TraceInformation) uint64 { return in.Traced }),
		c64(4, func(in *exporter.TraceInformation) uint64 { return in.NotTracedQuota }),
		c64(5, func(in *exporter.TraceInformation) uint64 { return in.NotTracedFilter }),
		c64(6, func(in *exporter.TraceInformation) uint64 { return in.NotTracedOld }),
		c64(7, func(in *exporter.TraceInformation) uint64 { return in.RecordsWritten }),
		c64(8, func(in *exporter.TraceInformation) uint64 { return in.RecordsOverwritten }),
		c64(9, func(in *exporter.TraceInformation) uint64 { return in.Cached }),
		c64(10, func(in *exporter.TraceInformation) uint64 { return in.NotCachedQuota }),
		c64(11, func(in *exporter.TraceInformation) uint64 { return in.Skipped }),
		closedTable(b, info).Provider(),
		cacheTable(b).Provider(),
		captureTable(b).Provider(),
		riskTable(b).Provider(),
	)
	return provs
}

// closedTable is tcptapClosedTable: one row per reason code, indexed by
// the code's stable index (classifier.Reason.Index), which never changes.
func closedTable(b Backend, info func(*Request) *exporter.TraceInformation) *Table {
	type row struct {
		code   classifier.Code
		closed uint64
		cached uint64
	}
	return &Table{
		Entry: tcptapObjects.Append(3, 1),
		Columns: []Column{
			{ID: 2, Get: func(r Row) Value { return String(string(r.Data.(row).code)) }},
			{ID: 3, Get: func(r Row) Value { return String(r.Data.(row).code.Text()) }},
			{ID: 4, Get: func(r Row) Value { return Counter64(r.Data.(row).closed) }},
			{ID: 5, Get: func(r Row) Value { return Counter64(r.Data.(row).cached) }},
		},
		Rows: func(r *Request) []Row {
			s := snapshot(b, r)
			in := info(r)
			rows := make([]Row, 0, len(classifier.Codes))
			for _, c := range classifier.Codes {
				x := row{code: c, cached: in.CachedByReason[c]}
				for _, w := range s.Workers {
					x.closed += w.Conns.Closed[metrics.ReasonIndex(c)]
				}
				rows = append(rows, Row{Index: OID{uint32(c.Index())}, Data: x})
			}
			return rows
		},
	}
}

// riskTable is tcptapRiskTable: one row per at-risk cause, indexed by the
// cause's classifier.Risk value, which never changes.
func riskTable(b Backend) *Table {
	type row struct {
		risk classifier.Risk
		n    uint64
	}
	return &Table{
		Entry: tcptapObjects.Append(7, 1),
		Columns: []Column{
			{ID: 2, Get: func(r Row) Value { return String(r.Data.(row).risk.String()) }},
			{ID: 3, Get: func(r Row) Value { return Gauge32(r.Data.(row).n) }},
		},
		Rows: func(r *Request) []Row {
			s := snapshot(b, r)
			rows := make([]Row, 0, len(classifier.Risks))
			for _, rk := range classifier.Risks {
				x := row{risk: rk}
				for i := range s.Workers {
					x.n += s.Workers[i].AtRisk[rk]
				}
				rows = append(rows, Row{Index: OID{uint32(rk)}, Data: x})
			}
			return rows
		},
	}
}

// dateAndTime encodes t as SNMPv2-TC DateAndTime in UTC (11 octets).
func dateAndTime(t time.Time) Value {
	t = t.UTC()
	y := t.Year()
	return OctetString([]byte{byte(y >> 8), byte(y), byte(t.Month()), byte(t.Day()), byte(t.Hour()),
		byte(t.Minute()), byte(t.Second()), byte(t.Nanosecond() / 1e8), '+', 0, 0})
}

func inetType(rec *record.Record) int {
	if rec.Family == "ipv6" {
		return 2
	}
	return 1
}

func vlans(rec *record.Record) string {
	if len(rec.VLAN) == 0 {
		return "N/A"
	}
	s := make([]string, len(rec.VLAN))
	for i, v := range rec.VLAN {
		s[i] = strconv.Itoa(int(v))
	}
	return strings.Join(s, ",")
}

// cacheTable is tcptapCacheTable, indexed by tcptapCacheIndex = the
// connection's ID + 1, stable while the entry is cached.
func cacheTable(b Backend) *Table {
	rec := func(r Row) *record.Record { return &r.Data.(*cache.Entry).Record }
	local := func(r Row) Value { l, _ := ends(rec(r)); return OctetString(l.Addr().Unmap().AsSlice()) }
	remote := func(r Row) Value { _, rm := ends(rec(r)); return OctetString(rm.Addr().Unmap().AsSlice()) }
	return &Table{
		Entry: tcptapObjects.Append(4, 1),
		Columns: []Column{
			{ID: 2, Get: func(r Row) Value { return Integer(inetType(rec(r))) }},
			{ID: 3, Get: local},
			{ID: 4, Get: func(r Row) Value { l, _ := ends(rec(r)); return Gauge32(uint64(l.Port())) }},
			{ID: 5, Get: remote},
			{ID: 6, Get: func(r Row) Value { _, rm := ends(rec(r)); return Gauge32(uint64(rm.Port())) }},
			{ID: 7, Get: func(r Row) Value { return String(vlans(rec(r))) }},
			{ID: 8, Get: func(r Row) Value { return String(string(rec(r).Reason)) }},
			{ID: 9, Get: func(r Row) Value { return String(rec(r).Actor) }},
			{ID: 10, Get: func(r Row) Value { return dateAndTime(rec(r).LastSeen) }},
			{ID: 11, Get: func(r Row) Value { p := rec(r).Packets; return Counter64(p.Client + p.Server) }},
			{ID: 12, Get: func(r Row) Value {
				x := rec(r).Retransmissions
				return Gauge32(uint64(x.Client) + uint64(x.Server))
			}},
			{ID: 13, Get: func(r Row) Value { return String(rec(r).Interface) }},
		},
		Rows: func(*Request) []Row {
			es := b.CacheEntries()
			rows := make([]Row, 0, len(es))
			for _, e := range es {
				if e.Record.ID >= 1<<32-1 {
					continue
				}
				rows = append(rows, Row{Index: OID{uint32(e.Record.ID + 1)}, Data: e})
			}
			return rows
		},
	}
}
