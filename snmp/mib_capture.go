package snmp

import (
	"net"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/exporter/metrics"
)

// captureRow is one capture interface: its workers' counters summed.
type captureRow struct {
	name      string
	ifIndex   int // the kernel's interface index; 0 when it has none
	workers   int
	frames    uint64
	decode    capture.DecodeStats
	kernel    capture.LiveStats
	hasKernel bool
	active    int
}

// malformed sums the decoder's error causes (the tcptap_decode_errors_total
// series).
func (c *captureRow) malformed() uint64 {
	d := &c.decode
	return d.UnsupportedLink + d.TruncatedLink + d.TruncatedIP + d.BadIPHeader + d.TruncatedTCP + d.BadTCPHeader + d.BadTCPOption
}

// captureRows sums the snapshot's workers by interface, in the order the
// interfaces were configured.
func captureRows(s *metrics.Snapshot) []*captureRow {
	var rows []*captureRow
	byName := map[string]*captureRow{}
	for i := range s.Workers {
		w := &s.Workers[i]
		c := byName[w.Interface]
		if c == nil {
			c = &captureRow{name: w.Interface}
			byName[w.Interface] = c
			rows = append(rows, c)
		}
		c.workers++
		c.frames += w.Frames
		c.active += w.Active
		c.decode.Add(&w.Decode)
		if w.HasKernel {
			c.hasKernel = true
			c.kernel.Add(&w.Kernel)
		}
	}
	return rows
}

// captureTable is tcptapCaptureTable, indexed by the interface's position
// in capture.interfaces, from 1: the same counters as the tcptap_capture_*
// and tcptap_decode_* metrics. The kernel's columns exist only for
// interfaces read through kernel sockets (not for capture-file replays).
func captureTable(b Backend) *Table {
	row := func(r Row) *captureRow { return r.Data.(*captureRow) }
	c64 := func(id uint32, f func(c *captureRow) uint64) Column {
		return Column{ID: id, Get: func(r Row) Value { return Counter64(f(row(r))) }}
	}
	kernel := func(id uint32, f func(k *capture.LiveStats) uint64) Column {
		return Column{ID: id, Get: func(r Row) Value {
			c := row(r)
			if !c.hasKernel {
				return Value{} // no instance
			}
			return Counter64(f(&c.kernel))
		}}
	}
	return &Table{
		Entry: tcptapObjects.Append(6, 1),
		Columns: []Column{
			{ID: 2, Get: func(r Row) Value { return String(row(r).name) }},
			{ID: 3, Get: func(r Row) Value { return Gauge32(uint64(row(r).ifIndex)) }},
			{ID: 4, Get: func(r Row) Value { return Gauge32(uint64(row(r).workers)) }},
			c64(5, func(c *captureRow) uint64 { return c.frames }),
			c64(6, func(c *captureRow) uint64 { return c.decode.TCP }),
			c64(7, func(c *captureRow) uint64 { return c.decode.NonIP + c.decode.NonTCP }),
			c64(8, (*captureRow).malformed),
			kernel(9, func(k *capture.LiveStats) uint64 { return k.Packets }),
			kernel(10, func(k *capture.LiveStats) uint64 { return k.Drops }),
			kernel(11, func(k *capture.LiveStats) uint64 { return k.QueueFreezes }),
			kernel(12, func(k *capture.LiveStats) uint64 { return k.LinkDowns }),
			{ID: 13, Get: func(r Row) Value { return Gauge32(uint64(row(r).active)) }},
		},
		Rows: func(r *Request) []Row {
			cs := captureRows(snapshot(b, r))
			rows := make([]Row, len(cs))
			for i, c := range cs {
				// Looked up at each request: an interface re-created
				// gets a new index.
				if ifi, err := net.InterfaceByName(c.name); err == nil {
					c.ifIndex = ifi.Index
				}
				rows[i] = Row{Index: OID{uint32(i + 1)}, Data: c}
			}
			return rows
		},
	}
}
