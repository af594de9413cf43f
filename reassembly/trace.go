package reassembly

import (
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
)

// startTrace decides whether a new connection is traced and gives it a ring.
func (t *Table) startTrace(c *tracked, p *capture.Packet) {
	tc := &t.trace
	if !tc.Enabled || t.quota == nil {
		return
	}
	if tc.OnlyNewConnection && (!p.Flags.Has(capture.FlagSYN) || p.Flags.Has(capture.FlagACK) || p.Timestamp < tc.EnabledAt) {
		t.Stats.Trace.NotTracedOld++
		return
	}
	if len(tc.Filter) > 0 {
		if !tc.Filter.Permits(c.addrPort(Client), c.addrPort(Server)) {
			t.Stats.Trace.NotTracedACL++
			return
		}
	}
	ring := flightrec.NewRing(t.quota, tc.MaxPacketNumber, &t.rings)
	if ring == nil {
		t.Stats.Trace.NotTracedQuota++
		return
	}
	t.setTrace(c, ring)
	t.Stats.Trace.Traced++
}

// record writes p, already applied to c, into c's flight recorder.
func (t *Table) record(c *tracked, p *capture.Packet, from Role, a Analysis, hdr []byte) {
	r, overwrote := t.traceOf(c).Slot()
	t.Stats.Trace.Records++
	if overwrote {
		t.Stats.Trace.Overwritten++
	}
	fillRecord(r, c, p, from, a, hdr)
}

// fillRecord overwrites every field of r, a slot that may hold an older
// record. Field by field rather than *r = flightrec.PacketRecord{...}, which the
// compiler builds whole (header bytes included) in a temporary and then
// copies: 42 instructions a packet more (cachegrind). Only the header
// bytes past hdr are cleared. TestFillRecordOverwritesAll checks that no
// field is left out.
func fillRecord(r *flightrec.PacketRecord, c *tracked, p *capture.Packet, from Role, a Analysis, hdr []byte) {
	r.Timestamp = p.Timestamp
	r.Seq, r.Ack = p.Seq, p.Ack
	r.PayloadLen = p.PayloadLen
	r.Window = p.Window
	r.Checksum = p.Checksum
	r.IPID = p.IPID
	r.Flags = p.Flags
	r.From = from
	r.States = [2]State{c.ends[Client].state, c.ends[Server].state}
	r.Analysis = a
	for role := range c.ends {
		r.Snap[role] = c.ends[role].snapshot()
	}
	r.WireLen = p.IPLen
	r.Family = p.Family
	n := copy(r.Hdr[:], hdr)
	r.HdrLen = uint8(n)
	clear(r.Hdr[n:])
}

// BaseSeq is the endpoint's initial sequence number, or one before the first
// sequence number it was seen sending when its SYN was not seen (as
// Wireshark's relative sequence numbers count).
func (e *Endpoint) BaseSeq() uint32 {
	if !e.SentAny {
		return 0 // nothing seen from it yet
	}
	if e.SawSYN {
		return e.ISN
	}
	return e.firstSeq - 1
}
