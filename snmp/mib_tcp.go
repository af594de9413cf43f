package snmp

import (
	"net/netip"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/metrics"
)

// MaxOpenRows bounds the rows of tcpConnectionTable and tcpConnTable (the
// open connections read for one request).
const MaxOpenRows = 10000

// TCP-MIB (RFC 4022) for a passive tap. The tap is no TCP endpoint: it
// serves the TCP view of the whole tapped link, as if every host on it were
// one stack. The scalars mean:
//
//   - tcpRtoAlgorithm other(1), tcpRtoMin and tcpRtoMax 0, tcpMaxConn −1:
//     host timers and limits cannot be observed on the wire.
//   - tcpActiveOpens: connections tcptap started tracking (each was opened
//     by its client, the side that sent the first SYN); tcpPassiveOpens 0:
//     each connection is counted once, as its client's active open (the
//     counters are not yet split by the trace.local_nets side).
//   - tcpAttemptFails: ended connections whose handshake never completed
//     (reasons RF refused and ST SYN timeout).
//   - tcpEstabResets: ended connections aborted by a RST after the
//     handshake (reasons SR, RR and AA).
//   - tcpCurrEstab: open connections whose local side is ESTABLISHED or
//     CLOSE_WAIT.
//   - tcpInSegs / tcpHCInSegs: segments sent by servers, tcpOutSegs /
//     tcpHCOutSegs: segments sent by clients, of ended connections;
//     tcpRetransSegs: retransmissions seen in either direction; tcpOutRsts:
//     RSTs sent by clients; tcpInErrs 0 (malformed frames are counted in
//     tcptap_decode_* metrics, not here).
//   - tcpConnectionTable and tcpConnTable: the open connections, local
//     address first (the trace.local_nets side, else the client);
//     tcpConnectionProcess 0 (no process is known).
//   - tcpConnectionState and tcpConnState are read-write as the MIB says,
//     but a set of deleteTCB(12) answers notWritable: a passive tap cannot
//     reset a connection (other values are wrongValue).
//   - tcpListenerTable is not served (listeners are not observable).
func tcpMIB(b Backend) []Provider {
	snap := func(r *Request) *metrics.Snapshot {
		if v, ok := r.memo["snapshot"]; ok {
			return v.(*metrics.Snapshot)
		}
		s := b.MetricsSnapshot()
		r.memo["snapshot"] = s
		return s
	}
	sum := func(f func(w *metrics.Worker) uint64) func(r *Request) uint64 {
		return func(r *Request) uint64 {
			var n uint64
			s := snap(r)
			for i := range s.Workers {
				n += f(&s.Workers[i])
			}
			return n
		}
	}
	closed := func(codes ...classifier.Code) func(r *Request) uint64 {
		return sum(func(w *metrics.Worker) uint64 {
			var n uint64
			for _, c := range codes {
				if i := metrics.ReasonIndex(c); i >= 0 {
					n += w.Conns.Closed[i]
				}
			}
			return n
		})
	}
	both := func(f func(w *metrics.Worker) *[2]uint64) func(r *Request) uint64 {
		return sum(func(w *metrics.Worker) uint64 { p := f(w); return p[0] + p[1] })
	}
	dir := func(d int, f func(w *metrics.Worker) *[2]uint64) func(r *Request) uint64 {
		return sum(func(w *metrics.Worker) uint64 { return f(w)[d] })
	}
	segs := func(w *metrics.Worker) *[2]uint64 { return &w.Conns.Segments }
	opened := sum(func(w *metrics.Worker) uint64 { return w.Table.Opened })
	inSegs := dir(metrics.ServerToClient, segs)
	outSegs := dir(metrics.ClientToServer, segs)

	scalar := func(id uint32, get func(r *Request) Value) Provider {
		return (&Scalar{OID: tcp.Append(id), Get: get}).Provider()
	}
	c32 := func(id uint32, f func(r *Request) uint64) Provider {
		return scalar(id, func(r *Request) Value { return Counter32(f(r)) })
	}
	c64 := func(id uint32, f func(r *Request) uint64) Provider {
		return scalar(id, func(r *Request) Value { return Counter64(f(r)) })
	}
	constant := func(id uint32, v Value) Provider { return scalar(id, func(*Request) Value { return v }) }

	open := func(r *Request) []exporter.Record {
		if v, ok := r.memo["open"]; ok {
			return v.([]exporter.Record)
		}
		recs, _ := b.OpenConnections(r.Ctx, MaxOpenRows) // what the workers answered in time
		r.memo["open"] = recs
		return recs
	}
	currEstab := func(r *Request) Value {
		n := 0
		for i := range open(r) {
			if s := open(r)[i].State; s == "ESTABLISHED" || s == "CLOSE_WAIT" {
				n++
			}
		}
		return Gauge32(uint64(n))
	}

	return []Provider{
		constant(1, Integer(1)),
		constant(2, Integer(0)),
		constant(3, Integer(0)),
		constant(4, Integer(-1)),
		c32(5, opened),
		constant(6, Counter32(0)),
		c32(7, closed(classifier.Refused, classifier.SYNTimeout)),
		c32(8, closed(classifier.SentReset, classifier.ReceivedReset, classifier.AppAbnormalClose)),
		scalar(9, currEstab),
		c32(10, inSegs),
		c32(11, outSegs),
		c32(12, both(func(w *metrics.Worker) *[2]uint64 { return &w.Conns.Retransmissions })),
		tcpConnTable(open).Provider(),
		constant(14, Counter32(0)),
		c32(15, dir(metrics.ClientToServer, func(w *metrics.Worker) *[2]uint64 { return &w.Conns.Resets })),
		c64(17, inSegs),
		c64(18, outSegs),
		tcpConnectionTable(open).Provider(),
	}
}

// tcpStates are tcpConnState's values by tcptap's state names.
var tcpStates = map[string]int{
	"CLOSED": 1, "LISTEN": 2, "SYN_SENT": 3, "SYN_RECEIVED": 4, "ESTABLISHED": 5, "FIN_WAIT_1": 6,
	"FIN_WAIT_2": 7, "CLOSE_WAIT": 8, "LAST_ACK": 9, "CLOSING": 10, "TIME_WAIT": 11,
}

const deleteTCB = 12

// ends returns the record's local and remote endpoints.
func ends(rec *exporter.Record) (local, remote netip.AddrPort) {
	if rec.Local == "server" {
		return rec.Server, rec.Client
	}
	return rec.Client, rec.Server
}

func stateValue(rec *exporter.Record) Value {
	if s, ok := tcpStates[rec.State]; ok {
		return Integer(s)
	}
	return Integer(1) // UNKNOWN: nothing seen that fits; closed
}

// setState answers a set of tcpConnectionState / tcpConnState.
func setState(_ *Request, _ Row, v Value) (Commit, gosnmp.SNMPError) {
	n, ok := v.V.(int)
	if v.Type != gosnmp.Integer || !ok {
		return Commit{}, gosnmp.WrongType
	}
	if n != deleteTCB {
		return Commit{}, gosnmp.WrongValue
	}
	// A passive tap cannot reset a connection.
	return Commit{}, gosnmp.NotWritable
}

// inetIndex appends an InetAddressType and a length-prefixed InetAddress
// (RFC 4001) and a port to an index.
func inetIndex(o OID, ap netip.AddrPort) OID {
	a := ap.Addr().Unmap()
	if a.Is4() {
		o = append(o, 1, 4)
	} else {
		o = append(o, 2, 16)
	}
	for _, b := range a.AsSlice() {
		o = append(o, uint32(b))
	}
	return append(o, uint32(ap.Port()))
}

// tcpConnectionTable is tcp.19 (IPv4 and IPv6).
func tcpConnectionTable(open func(*Request) []exporter.Record) *Table {
	return &Table{
		Entry: tcp.Append(19, 1),
		Columns: []Column{
			{ID: 7, Get: func(row Row) Value { return stateValue(row.Data.(*exporter.Record)) }, Set: setState},
			{ID: 8, Get: func(Row) Value { return Gauge32(0) }},
		},
		Rows: func(r *Request) []Row {
			recs := open(r)
			rows := make([]Row, 0, len(recs))
			for i := range recs {
				l, rm := ends(&recs[i])
				if l.Addr().Zone() != "" || rm.Addr().Zone() != "" {
					continue
				}
				rows = append(rows, Row{Index: inetIndex(inetIndex(nil, l), rm), Data: &recs[i]})
			}
			return rows
		},
	}
}

// tcpConnTable is tcp.13, the deprecated IPv4-only table.
func tcpConnTable(open func(*Request) []exporter.Record) *Table {
	part := func(rec *exporter.Record, remote bool) netip.AddrPort {
		l, r := ends(rec)
		if remote {
			return r
		}
		return l
	}
	return &Table{
		Entry: tcp.Append(13, 1),
		Columns: []Column{
			{ID: 1, Get: func(row Row) Value { return stateValue(row.Data.(*exporter.Record)) }, Set: setState},
			{ID: 2, Get: func(row Row) Value { return IPAddress(part(row.Data.(*exporter.Record), false).Addr()) }},
			{ID: 3, Get: func(row Row) Value { return Integer(int(part(row.Data.(*exporter.Record), false).Port())) }},
			{ID: 4, Get: func(row Row) Value { return IPAddress(part(row.Data.(*exporter.Record), true).Addr()) }},
			{ID: 5, Get: func(row Row) Value { return Integer(int(part(row.Data.(*exporter.Record), true).Port())) }},
		},
		Rows: func(r *Request) []Row {
			recs := open(r)
			var rows []Row
			for i := range recs {
				l, rm := ends(&recs[i])
				la, ra := l.Addr().Unmap(), rm.Addr().Unmap()
				if !la.Is4() || !ra.Is4() {
					continue
				}
				idx := OID{}
				for _, a := range []netip.AddrPort{netip.AddrPortFrom(la, l.Port()), netip.AddrPortFrom(ra, rm.Port())} {
					b := a.Addr().As4()
					idx = append(idx, uint32(b[0]), uint32(b[1]), uint32(b[2]), uint32(b[3]), uint32(a.Port()))
				}
				rows = append(rows, Row{Index: idx, Data: &recs[i]})
			}
			return rows
		},
	}
}
