package snmp

import (
	"net/netip"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// MaxOpenRows bounds the rows of tcpConnectionTable and tcpConnTable (the
// open connections read for one request).
const MaxOpenRows = 10000

// TCP-MIB (RFC 4022) for a passive tap. The tap is no TCP endpoint: it
// serves the TCP view of the tapped link as if the local side of every
// connection were one stack. The local side is the endpoint inside
// trace.local_nets when exactly one endpoint is, else the client (the host
// that sent the first SYN); without trace.local_nets every connection is
// its client's. The README's "TCP-MIB on a passive tap" says the same for
// users. The objects mean:
//
//   - tcpRtoAlgorithm other(1), tcpRtoMin and tcpRtoMax 0, tcpMaxConn -1:
//     host timers and limits cannot be observed on the wire.
//   - tcpActiveOpens (CLOSED to SYN-SENT): connections opened by a SYN
//     from their local side, counted when the SYN is seen.
//   - tcpPassiveOpens (LISTEN to SYN-RCVD): connections whose local side
//     answered the remote side's SYN with a SYN-ACK, counted when the
//     SYN-ACK is seen (once, retransmissions aside; also when the SYN
//     itself was not captured). A SYN refused or never answered by the
//     local side is no passive open, as on a host. Connections joined
//     mid-stream are neither.
//   - tcpAttemptFails: connections counted as an active or passive open
//     whose handshake never completed (close reasons RF refused and ST
//     SYN timeout), counted when they end.
//   - tcpEstabResets: connections aborted after the handshake, by a RST
//     (AA, SR, RR) or by a retransmission, persist or keepalive timer (RT,
//     PT, KT), counted when they end.
//   - tcpCurrEstab: open connections whose local side is ESTABLISHED or
//     CLOSE_WAIT.
//   - tcpInSegs / tcpHCInSegs: segments the remote side sent; tcpOutSegs /
//     tcpHCOutSegs: segments the local side sent, less its retransmissions;
//     tcpRetransSegs: the local side's retransmissions; tcpOutRsts: RSTs
//     the local side sent. They count each segment when a worker applies
//     it to its connection table (reassembly.TableStats.Segments), open
//     connections included, and a scrape or get sees what the workers last
//     published. tcpInErrs 0: checksums are not verified and
//     malformed frames are counted per interface in tcptapCaptureTable.
//   - tcpConnectionTable and tcpConnTable (IPv4 only): the open
//     connections, local address first; tcpConnectionProcess 0 (no
//     process is known). tcpConnectionState and tcpConnState are the
//     local side's state; they are read-write as the MIB says, but a set
//     of deleteTCB(12) answers notWritable: a passive tap cannot reset a
//     connection (other values are wrongValue).
//   - tcpListenerTable: local-side endpoints seen answering a SYN with a
//     SYN-ACK, the listening sockets a tap can infer: a specific address
//     (a wildcard listener shows once per address it answered on), at most
//     daemon.MaxListeners, the least recently seen dropped first; never
//     removed otherwise. tcpListenerProcess 0.
//
// Counter32 objects wrap at 2^32 as the SMI says; the Counter64 ones
// (tcpHCInSegs, tcpHCOutSegs) do not in practice.
func tcpMIB(b Backend) []Provider {
	sum := func(f func(w *metrics.Worker) uint64) func(r *Request) uint64 {
		return func(r *Request) uint64 {
			var n uint64
			s := snapshot(b, r)
			for i := range s.Workers {
				n += f(&s.Workers[i])
			}
			return n
		}
	}
	conns := func(f func(c *metrics.Counters) uint64) func(r *Request) uint64 {
		return sum(func(w *metrics.Worker) uint64 { return f(&w.Conns) })
	}
	// side sums a live segment count of one side over the workers.
	side := func(d reassembly.Side, f func(c *reassembly.SegmentCounts) uint64) func(r *Request) uint64 {
		return sum(func(w *metrics.Worker) uint64 { c := w.Table.Segments.Side(d); return f(&c) })
	}
	inSegs := side(reassembly.Remote, func(c *reassembly.SegmentCounts) uint64 { return c.Segments })
	retrans := side(reassembly.Local, func(c *reassembly.SegmentCounts) uint64 { return c.Retransmissions })
	// Retransmissions are segments too, so the difference never goes
	// negative and only grows.
	outSegs := side(reassembly.Local, func(c *reassembly.SegmentCounts) uint64 { return c.Segments - min(c.Retransmissions, c.Segments) })

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

	open := func(r *Request) []record.Record {
		if v, ok := r.memo["open"]; ok {
			return v.([]record.Record)
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
		c32(5, sum(func(w *metrics.Worker) uint64 { return w.Opens.Active })),
		c32(6, sum(func(w *metrics.Worker) uint64 { return w.Opens.Passive })),
		c32(7, conns(func(c *metrics.Counters) uint64 { return c.AttemptFails })),
		c32(8, conns(func(c *metrics.Counters) uint64 { return c.EstabResets })),
		scalar(9, currEstab),
		c32(10, inSegs),
		c32(11, outSegs),
		c32(12, retrans),
		tcpConnTable(open).Provider(),
		constant(14, Counter32(0)),
		c32(15, side(reassembly.Local, func(c *reassembly.SegmentCounts) uint64 { return c.RSTs })),
		c64(17, inSegs),
		c64(18, outSegs),
		tcpConnectionTable(open).Provider(),
		tcpListenerTable(b).Provider(),
	}
}

// tcpStates are tcpConnState's values by tcptap's state names.
var tcpStates = map[string]int{
	"CLOSED": 1, "LISTEN": 2, "SYN_SENT": 3, "SYN_RECEIVED": 4, "ESTABLISHED": 5, "FIN_WAIT_1": 6,
	"FIN_WAIT_2": 7, "CLOSE_WAIT": 8, "LAST_ACK": 9, "CLOSING": 10, "TIME_WAIT": 11,
}

const deleteTCB = 12

// ends returns the record's local and remote endpoints.
func ends(rec *record.Record) (local, remote netip.AddrPort) {
	if rec.Local == "server" {
		return rec.Server, rec.Client
	}
	return rec.Client, rec.Server
}

func stateValue(rec *record.Record) Value {
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
func tcpConnectionTable(open func(*Request) []record.Record) *Table {
	return &Table{
		Entry: tcp.Append(19, 1),
		Columns: []Column{
			{ID: 7, Get: func(row Row) Value { return stateValue(row.Data.(*record.Record)) }, Set: setState},
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

// tcpListenerTable is tcp.20: the listeners inferred from SYN-ACKs,
// indexed by address type, length-prefixed address and port.
func tcpListenerTable(b Backend) *Table {
	return &Table{
		Entry:   tcp.Append(20, 1),
		Columns: []Column{{ID: 4, Get: func(Row) Value { return Gauge32(0) }}},
		Rows: func(*Request) []Row {
			ls := b.Listeners()
			rows := make([]Row, 0, len(ls))
			for _, l := range ls {
				if l.Addr().Zone() == "" {
					rows = append(rows, Row{Index: inetIndex(nil, l)})
				}
			}
			return rows
		},
	}
}

// tcpConnTable is tcp.13, the deprecated IPv4-only table.
func tcpConnTable(open func(*Request) []record.Record) *Table {
	part := func(rec *record.Record, remote bool) netip.AddrPort {
		l, r := ends(rec)
		if remote {
			return r
		}
		return l
	}
	return &Table{
		Entry: tcp.Append(13, 1),
		Columns: []Column{
			{ID: 1, Get: func(row Row) Value { return stateValue(row.Data.(*record.Record)) }, Set: setState},
			{ID: 2, Get: func(row Row) Value { return IPAddress(part(row.Data.(*record.Record), false).Addr()) }},
			{ID: 3, Get: func(row Row) Value { return Integer(int(part(row.Data.(*record.Record), false).Port())) }},
			{ID: 4, Get: func(row Row) Value { return IPAddress(part(row.Data.(*record.Record), true).Addr()) }},
			{ID: 5, Get: func(row Row) Value { return Integer(int(part(row.Data.(*record.Record), true).Port())) }},
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
