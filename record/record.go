// Package record is tcptap's record model: the record of one connection
// (Record, built from a finished or open connection by New), its JSON
// encoder (AppendJSON), the fleet fields (Fleet: sensor, uid, Community
// ID), how it travelled (TunnelHop) and the vendor table's row
// (LocalForeign, VPNName). It sits below the cache and every output, which
// all read records and import it; see docs/trace.md for the fields.
package record

import (
	"net/netip"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/reassembly"
)

// Pair holds one value per endpoint role.
type Pair[T any] struct {
	Client T `json:"client"`
	Server T `json:"server"`
}

func pairOf[T any](c *reassembly.Conn, f func(e *reassembly.Endpoint) T) Pair[T] {
	return Pair[T]{Client: f(&c.Ends[reassembly.Client]), Server: f(&c.Ends[reassembly.Server])}
}

// RTT holds round-trip times in milliseconds as seen from the tap.
type RTT struct {
	// Handshake is SYN to the ACK of the SYN-ACK.
	Handshake float64 `json:"handshake"`
	// Smoothed is the RFC 6298 smoothed RTT of the direction with the most
	// samples; Data gives both directions (data sent by that side, to the
	// ACK that covered it).
	Smoothed float64       `json:"smoothed"`
	Data     Pair[float64] `json:"data"`
}

// Record is one connection as tcptap reports it (docs/trace.md). Field names
// are part of the interface: add fields, never rename.
type Record struct {
	ID         uint64          `json:"id"`
	Client     netip.AddrPort  `json:"client"`
	Server     netip.AddrPort  `json:"server"`
	Family     string          `json:"family"`
	VLAN       []uint16        `json:"vlan"`
	Tunnel     []TunnelHop     `json:"tunnel,omitempty"` // how it travelled, outermost first; absent when plain
	Interface  string          `json:"interface"`
	Local      string          `json:"local"`
	Reason     classifier.Code `json:"reason"`
	ReasonText string          `json:"reason_text"`
	Actor      string          `json:"actor"`
	State      string          `json:"state"`
	ConnState  string          `json:"conn_state"`
	History    string          `json:"history"`
	Midstream  bool            `json:"midstream"`
	FirstSeen  time.Time       `json:"first_seen"`
	LastSeen   time.Time       `json:"last_seen"`
	DurationS  float64         `json:"duration_s"`

	// The fleet fields (Fleet.Stamp): which sensor made the record, an
	// identifier unique across sensors and restarts (ID counts per run),
	// and the Community ID v1 flow hash other tools' records join on.
	Sensor      string `json:"sensor"`
	UID         string `json:"uid"`
	CommunityID string `json:"community_id"`

	Packets                 Pair[uint64] `json:"packets"`
	Bytes                   Pair[uint64] `json:"bytes"`
	IPBytes                 Pair[uint64] `json:"ip_bytes"`
	Retransmissions         Pair[uint32] `json:"retransmissions"`
	FastRetransmissions     Pair[uint32] `json:"fast_retransmissions"`
	SpuriousRetransmissions Pair[uint32] `json:"spurious_retransmissions"`
	OutOfOrder              Pair[uint32] `json:"out_of_order"`
	DupAcks                 Pair[uint32] `json:"dup_acks"`
	ZeroWindows             Pair[uint32] `json:"zero_windows"`
	WindowProbes            Pair[uint32] `json:"window_probes"`
	KeepAlives              Pair[uint32] `json:"keepalives"`
	Resets                  Pair[uint32] `json:"resets"`
	FINs                    Pair[uint32] `json:"fins"`
	SYNs                    Pair[uint32] `json:"syns"`
	WindowFull              Pair[uint32] `json:"window_full"`
	LostSegments            Pair[uint32] `json:"previous_segment_not_captured"`
	AckedUnseen             Pair[uint32] `json:"acked_unseen_segment"`
	// Wireshark's own labels for probe-shaped segments, for comparison
	// with tshark: Linux persist probes and 1-byte retransmissions are
	// "Keep-Alive" there.
	WiresharkKeepAlives    Pair[uint32] `json:"wireshark_keep_alives"`
	WiresharkZeroWinProbes Pair[uint32] `json:"wireshark_zero_window_probes"`

	RTTms  RTT          `json:"rtt_ms"`
	MSS    Pair[uint16] `json:"mss"`
	WScale Pair[int8]   `json:"wscale"`
	End    string       `json:"end"` // why tracking stopped: closed, idle, capture_end, port_reused

	// Risk and RiskSince, in records of open connections only: the
	// pattern the connection is in that ends in a timer's verdict if it
	// goes on (classifier.Risk), and when it began.
	Risk      string    `json:"risk,omitempty"`
	RiskSince time.Time `json:"risk_since,omitzero"`
}

// SetRisk marks an open connection's record with its risk (classifier.RiskOf).
func (r *Record) SetRisk(risk classifier.Risk, since int64) {
	if risk == classifier.NoRisk {
		r.Risk, r.RiskSince = "", time.Time{}
		return
	}
	r.Risk, r.RiskSince = risk.String(), time.Unix(0, since).UTC()
}

var endNames = map[reassembly.EndCause]string{
	reassembly.EndClosed:  "closed",
	reassembly.EndIdle:    "idle",
	reassembly.EndCapture: "capture_end",
	reassembly.EndReused:  "port_reused",
	reassembly.EndEvicted: "evicted",
	reassembly.EndSilent:  "silent",
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// Finish is the finished-connection step tcptap read and tcptap run share:
// it classifies c, builds its record into rec (reusing rec's storage) and
// stamps the fleet fields when fleet is set. The caller then counts,
// caches and delivers rec as its pipeline does.
func Finish(rec *Record, c *reassembly.Conn, cls *classifier.Classifier, iface string, fleet *Fleet) {
	*rec = New(c, cls.Classify(c), iface)
	if fleet != nil {
		fleet.Stamp(rec)
	}
}

// New builds the record of a connection, finished or (for a listing of open
// connections) still open.
func New(c *reassembly.Conn, r classifier.Result, iface string) Record {
	cl, sv := &c.Ends[reassembly.Client], &c.Ends[reassembly.Server]
	rec := Record{
		ID:         c.ID,
		Client:     netip.AddrPortFrom(capture.AddrOf(cl.Addr, c.Family), cl.Port),
		Server:     netip.AddrPortFrom(capture.AddrOf(sv.Addr, c.Family), sv.Port),
		Family:     c.Family.String(),
		VLAN:       append([]uint16{}, c.VLAN[:c.VLANCount]...),
		Tunnel:     TunnelHops(&c.Tunnel),
		Interface:  iface,
		Local:      r.Local.String(),
		Reason:     r.Reason,
		ReasonText: r.Reason.Text(),
		Actor:      "none",
		State:      c.Ends[r.Local].State.String(),
		ConnState:  r.ConnState,
		History:    r.History,
		Midstream:  c.Midstream,
		FirstSeen:  time.Unix(0, c.FirstSeen).UTC(),
		LastSeen:   time.Unix(0, c.LastSeen).UTC(),
		DurationS:  float64(c.LastSeen-c.FirstSeen) / 1e9,
		End:        endNames[c.End],
	}
	if r.HasActor {
		rec.Actor = r.Actor.String()
	}
	get := func(f func(e *reassembly.Endpoint) uint32) Pair[uint32] { return pairOf(c, f) }
	rec.Packets = pairOf(c, func(e *reassembly.Endpoint) uint64 { return e.Packets })
	rec.Bytes = pairOf(c, func(e *reassembly.Endpoint) uint64 { return e.PayloadBytes })
	rec.IPBytes = pairOf(c, func(e *reassembly.Endpoint) uint64 { return e.IPBytes })
	rec.Retransmissions = get(func(e *reassembly.Endpoint) uint32 { return e.Retransmissions })
	rec.FastRetransmissions = get(func(e *reassembly.Endpoint) uint32 { return e.FastRetransmissions })
	rec.SpuriousRetransmissions = get(func(e *reassembly.Endpoint) uint32 { return e.SpuriousRetransmissions })
	rec.OutOfOrder = get(func(e *reassembly.Endpoint) uint32 { return e.OutOfOrder })
	rec.DupAcks = get(func(e *reassembly.Endpoint) uint32 { return e.DupAcks })
	rec.ZeroWindows = get(func(e *reassembly.Endpoint) uint32 { return e.ZeroWindows })
	rec.WindowProbes = get(func(e *reassembly.Endpoint) uint32 { return e.WindowProbes })
	rec.KeepAlives = get(func(e *reassembly.Endpoint) uint32 { return e.KeepAlives })
	rec.Resets = get(func(e *reassembly.Endpoint) uint32 { return e.RSTs })
	rec.FINs = get(func(e *reassembly.Endpoint) uint32 { return e.FINs })
	rec.SYNs = get(func(e *reassembly.Endpoint) uint32 { return e.SYNs + e.SYNACKs })
	rec.WindowFull = get(func(e *reassembly.Endpoint) uint32 { return e.WindowFull })
	rec.LostSegments = get(func(e *reassembly.Endpoint) uint32 { return e.LostSegments })
	rec.AckedUnseen = get(func(e *reassembly.Endpoint) uint32 { return e.AckedUnseen })
	rec.WiresharkKeepAlives = get(func(e *reassembly.Endpoint) uint32 { return e.WiresharkKeepAlives })
	rec.WiresharkZeroWinProbes = get(func(e *reassembly.Endpoint) uint32 { return e.ZeroWindowProbes })
	rec.MSS = pairOf(c, func(e *reassembly.Endpoint) uint16 { return e.MSS })
	rec.WScale = pairOf(c, func(e *reassembly.Endpoint) int8 { return e.WScale })
	rec.RTTms.Handshake = ms(c.HandshakeRTT)
	rec.RTTms.Data = pairOf(c, func(e *reassembly.Endpoint) float64 { return ms(e.SRTT) })
	if cl.RTTSamples >= sv.RTTSamples {
		rec.RTTms.Smoothed = ms(cl.SRTT)
	} else {
		rec.RTTms.Smoothed = ms(sv.SRTT)
	}
	return rec
}
