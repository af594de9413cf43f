package exporter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// PacketViewOptions select what WriteConnectionPackets shows: the vendor's
// "display tcp trace cache-packet ... [verbose] [last N]" keywords.
type PacketViewOptions struct {
	// Verbose adds, per packet, both directions' sequence snapshot and the
	// analysis flags.
	Verbose bool
	// Last shows only the last N records; 0 shows all.
	Last int
	// Dropped is how many records the connection's ring overwrote before
	// the oldest one given: the header says so and packets are numbered
	// from Dropped+1, their position in the connection's whole history.
	Dropped uint64
}

// packetTimeLayout is how the packet view prints times: UTC to the
// microsecond (the table prints milliseconds; a packet view needs more).
const packetTimeLayout = "2006-01-02 15:04:05.000000"

// WriteConnectionPackets prints the vendor's cache-packet view of one
// connection: a header block (endpoints seen from the local side, VLAN,
// reason, actor, state, connection time, packets, bytes and
// retransmissions in/out, both sides' sequence state, MSS, window scale,
// RTT, how many records exist) followed by one block per recorded packet,
// oldest first.
//
// Directions are printed from the local side, as the vendor's device
// prints its own stack's packets: "out" is sent by the local endpoint, "in"
// received by it; each packet also names the roles ("out (client ->
// server)") because the roles are what the JSON record and the verbose
// snapshot use. "Packets in/out" in the header follows the same rule.
//
// Relative sequence numbers are relative to the sender's ISN from the
// record's snapshot (when the SYN was not seen, one before the first
// sequence number seen), so a SYN is 0 and the first data byte 1, as in
// Wireshark; a relative
// acknowledgment is relative to the receiver's ISN and shown only when the
// ACK flag is set and that side has been seen.
func WriteConnectionPackets(w io.Writer, rec *record.Record, pkts []flightrec.PacketRecord, opts PacketViewOptions) error {
	if rec == nil {
		return errors.New("packet view: no connection record")
	}
	if opts.Last < 0 {
		return fmt.Errorf("packet view: last %d: give a count of 1 or more, or 0 for all packets", opts.Last)
	}
	first := 0
	if opts.Last > 0 && opts.Last < len(pkts) {
		first = len(pkts) - opts.Last
	}
	bw := bufio.NewWriter(w)
	pvHeader(bw, rec, pkts, first, opts)
	for i := first; i < len(pkts); i++ {
		var prev *flightrec.PacketRecord
		if i > 0 {
			prev = &pkts[i-1]
		}
		pvPacket(bw, rec, &pkts[i], prev, opts.Dropped+uint64(i)+1, opts.Verbose)
	}
	return bw.Flush()
}

// pvLocalRole returns the role of the record's local side.
func pvLocalRole(rec *record.Record) reassembly.Role {
	if rec.Local == reassembly.Server.String() {
		return reassembly.Server
	}
	return reassembly.Client
}

// pvField prints one "label : value" line of the header.
func pvField(bw *bufio.Writer, label, format string, args ...any) {
	fmt.Fprintf(bw, "  %-24s: %s\n", label, fmt.Sprintf(format, args...))
}

// pvInOut formats a per-role pair as "in A, out B" from the local side.
func pvInOut[T any](p record.Pair[T], local reassembly.Role) string {
	in, out := p.Server, p.Client
	if local == reassembly.Server {
		in, out = p.Client, p.Server
	}
	return fmt.Sprintf("in %v, out %v", in, out)
}

// pvOf picks one role's value of a pair.
func pvOf[T any](p record.Pair[T], r reassembly.Role) T {
	if r == reassembly.Server {
		return p.Server
	}
	return p.Client
}

// pvTime formats a timestamp in nanoseconds.
func pvTime(ns int64) string { return time.Unix(0, ns).UTC().Format(packetTimeLayout) }

// pvDelta formats a time difference in seconds with microseconds.
func pvDelta(ns int64) string {
	sign := "+"
	if ns < 0 {
		sign, ns = "-", -ns
	}
	us := (ns + 500) / 1000
	return fmt.Sprintf("%s%d.%06d s", sign, us/1e6, us%1e6)
}

// pvKnown reports whether a direction's snapshot has seen a segment. An
// endpoint that has sent nothing has no highest sequence number,
// acknowledgment or window; its ISN field is not a marker (the recorder
// gives it the base of an unseen first sequence number, 0 - 1). Every
// segment sets the highest sequence number to its end, which is 0 only
// when it wraps exactly there.
func pvKnown(s flightrec.SeqSnapshot) bool { return s.HighSeq != 0 || s.HighAck != 0 || s.Window != 0 }

// pvRel formats a raw sequence number with its value relative to base.
func pvRel(raw, base uint32, known bool) string {
	if !known {
		return strconv.FormatUint(uint64(raw), 10)
	}
	return fmt.Sprintf("%d (rel %d)", raw, raw-base)
}

// pvHighAck formats a snapshot's highest acknowledgment: "-" while the
// side has acknowledged nothing (0, as Wireshark keeps "unknown"),
// relative to the peer's ISN when that is known.
func pvHighAck(s, peer flightrec.SeqSnapshot) string {
	if s.HighAck == 0 {
		return "-"
	}
	return pvRel(s.HighAck, peer.ISN, pvKnown(peer))
}

// pvOrDash prints v, or "-" when it is the zero value meaning "not seen".
func pvOrDash[T comparable](v, none T) string {
	if v == none {
		return "-"
	}
	return fmt.Sprint(v)
}

func pvHeader(bw *bufio.Writer, rec *record.Record, pkts []flightrec.PacketRecord, first int, opts PacketViewOptions) {
	local := pvLocalRole(rec)
	foreign := local.Other()
	l, f := record.LocalForeign(rec)
	fmt.Fprintf(bw, "Connection %s <-> %s (id %d)\n", l, f, rec.ID)
	pvField(bw, "Local address", "%s (%s)", l, local)
	pvField(bw, "Foreign address", "%s (%s)", f, foreign)
	pvField(bw, "VPN name (VLAN)", "%s", record.VPNName(rec))
	if rec.Interface != "" {
		pvField(bw, "Interface", "%s", rec.Interface)
	}
	reason := string(rec.Reason)
	if rec.ReasonText != "" {
		reason += " (" + rec.ReasonText + ")"
	}
	pvField(bw, "Reason", "%s", reason)
	pvField(bw, "Actor", "%s", rec.Actor)
	pvField(bw, "State", "%s", rec.State)
	if rec.ConnState != "" {
		pvField(bw, "Zeek conn_state/history", "%s %s", rec.ConnState, rec.History)
	}
	pvField(bw, "Connection time", "%s to %s UTC (%.6f s)",
		rec.FirstSeen.UTC().Format(packetTimeLayout), rec.LastSeen.UTC().Format(packetTimeLayout), rec.DurationS)
	if rec.Midstream {
		pvField(bw, "Handshake", "not seen (midstream): roles guessed; ISN is one before the first sequence number seen")
	}
	pvField(bw, "Packets", "%s", pvInOut(rec.Packets, local))
	pvField(bw, "Payload bytes", "%s", pvInOut(rec.Bytes, local))
	pvField(bw, "Retransmissions", "%s", pvInOut(rec.Retransmissions, local))
	rtt := "-"
	if rec.RTTms.Handshake > 0 {
		rtt = fmt.Sprintf("%.3f ms", rec.RTTms.Handshake)
	}
	pvField(bw, "Handshake RTT", "%s", rtt)
	if rec.RTTms.Smoothed > 0 {
		pvField(bw, "Smoothed RTT", "%.3f ms", rec.RTTms.Smoothed)
	}

	n := fmt.Sprintf("%d packets recorded", len(pkts))
	if len(pkts) == 1 {
		n = "1 packet recorded"
	}
	if opts.Dropped > 0 {
		n += fmt.Sprintf(", %d older ones overwritten", opts.Dropped)
	}
	if first > 0 {
		n += fmt.Sprintf("; showing the last %d", len(pkts)-first)
	}
	pvField(bw, "Packet records", "%s", n)

	// Sequence state after the last recorded packet (the snapshot is
	// cumulative, so the last one holds both sides' latest values).
	var snap [2]flightrec.SeqSnapshot
	if len(pkts) > 0 {
		snap = pkts[len(pkts)-1].Snap
	}
	fmt.Fprintf(bw, "\n  %-18s %-11s %-27s %-27s %-10s %-5s %s\n",
		"Sequence state", "ISN", "Highest sent", "Highest acked", "Window", "MSS", "WScale")
	for _, r := range [2]reassembly.Role{local, foreign} {
		side := "local"
		if r == foreign {
			side = "foreign"
		}
		s, peer := snap[r], snap[r.Other()]
		isn, hs, ha, win := "-", "-", "-", "-"
		if pvKnown(s) {
			isn = strconv.FormatUint(uint64(s.ISN), 10)
			hs = pvRel(s.HighSeq, s.ISN, true)
			ha = pvHighAck(s, peer)
			win = strconv.FormatUint(uint64(s.Window), 10)
		}
		ws := "-" // not offered (or its SYN not seen)
		if v := pvOf(rec.WScale, r); v >= 0 {
			ws = strconv.Itoa(int(v))
		}
		fmt.Fprintf(bw, "  %-18s %-11s %-27s %-27s %-10s %-5s %s\n",
			fmt.Sprintf("%s (%s)", side, r), isn, hs, ha, win, pvOrDash(pvOf(rec.MSS, r), 0), ws)
	}
	if len(pkts) == 0 {
		fmt.Fprintln(bw, "\n(no packets recorded)")
	}
}

// pvFamily returns the record's IP version, from the packet or else the
// connection's addresses.
func pvFamily(rec *record.Record, p *flightrec.PacketRecord) capture.Family {
	if p.Family == capture.IPv4 || p.Family == capture.IPv6 {
		return p.Family
	}
	if rec.Client.Addr().Is4() {
		return capture.IPv4
	}
	return capture.IPv6
}

// pvLine prints two label/value pairs on one fixed-width line.
func pvLine(bw *bufio.Writer, l1, v1, l2, v2 string) {
	if l2 == "" {
		fmt.Fprintf(bw, "  %-14s %s\n", l1, v1)
		return
	}
	fmt.Fprintf(bw, "  %-14s %-28s %-14s %s\n", l1, v1, l2, v2)
}

func pvPacket(bw *bufio.Writer, rec *record.Record, p, prev *flightrec.PacketRecord, index uint64, verbose bool) {
	from, to := p.From, p.From.Other()
	dir := "in "
	if from == pvLocalRole(rec) {
		dir = "out"
	}
	delta := ""
	if prev != nil {
		delta = "  " + pvDelta(p.Timestamp-prev.Timestamp)
	}
	fmt.Fprintf(bw, "\nPacket %d  %s UTC%s  %s (%s -> %s)\n", index, pvTime(p.Timestamp), delta, dir, from, to)

	sender, receiver := p.Snap[from], p.Snap[to]
	ack := strconv.FormatUint(uint64(p.Ack), 10)
	if p.Flags.Has(capture.FlagACK) {
		ack = pvRel(p.Ack, receiver.ISN, pvKnown(receiver))
	}
	pvLine(bw, "Seq", pvRel(p.Seq, sender.ISN, pvKnown(sender)), "Ack", ack)
	pvLine(bw, "Length", strconv.FormatUint(uint64(p.PayloadLen), 10), "Flags", p.Flags.String())
	win := strconv.FormatUint(uint64(p.Window), 10)
	switch {
	case p.Flags.Has(capture.FlagSYN):
		// RFC 7323 §2.2: the window of a SYN is never scaled.
		win += " (SYN, unscaled)"
	case pvKnown(sender):
		win += fmt.Sprintf(" (scaled %d)", p.WindowScaled())
	}
	pvLine(bw, "Window", win, "Checksum", fmt.Sprintf("0x%04x", p.Checksum))
	ipid := "-"
	if pvFamily(rec, p) == capture.IPv4 {
		ipid = fmt.Sprintf("%d (0x%04x)", p.IPID, p.IPID)
	}
	pvLine(bw, "IP ID", ipid, "IP length", pvOrDash(p.WireLen, 0))
	pvLine(bw, "Sender state", p.States[from].String(), "Receiver state", p.States[to].String())
	if !verbose {
		return
	}
	fmt.Fprintf(bw, "  %-14s %-11s %-27s %-27s %s\n", "Snapshot", "ISN", "Highest sent", "Highest acked", "Window")
	for _, r := range [2]reassembly.Role{reassembly.Client, reassembly.Server} {
		s, peer := p.Snap[r], p.Snap[r.Other()]
		if !pvKnown(s) {
			fmt.Fprintf(bw, "    %-12s %s\n", r, "(nothing seen yet)")
			continue
		}
		fmt.Fprintf(bw, "    %-12s %-11d %-27s %-27s %d\n", r, s.ISN,
			pvRel(s.HighSeq, s.ISN, true), pvHighAck(s, peer), s.Window)
	}
	flags := "none"
	if names := p.Analysis.Names(); len(names) > 0 {
		flags = strings.Join(names, ", ")
	}
	pvLine(bw, "Analysis", flags, "", "")
}
