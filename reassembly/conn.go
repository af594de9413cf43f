package reassembly

import (
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
)

// Counters are the per-direction counts of one endpoint's segments. The
// Wireshark-compatible flags count as tshark's tcp.analysis.* fields do:
// Retransmissions includes fast and spurious retransmissions. KeepAlives
// and WindowProbes are tcptap's context-aware reading of probe-shaped
// segments (see Analysis); WiresharkKeepAlives and ZeroWindowProbes are
// Wireshark's raw labels.
type Counters struct {
	Packets                   uint64
	PayloadBytes              uint64
	IPBytes                   uint64 // IP datagram bytes, as Zeek's orig_ip_bytes
	SYNs, SYNACKs, FINs, RSTs uint32

	AnalysisCounts
}

// AnalysisCounts are the counts of Wireshark's analysis flags and of
// tcptap's probe readings. Most connections never increment one, so the
// table keeps them in an extension taken only when one is first counted.
type AnalysisCounts struct {
	Retransmissions         uint32
	FastRetransmissions     uint32
	SpuriousRetransmissions uint32
	OutOfOrder              uint32
	DupAcks                 uint32
	ZeroWindows             uint32
	ZeroWindowProbes        uint32
	ZeroWindowProbeAcks     uint32
	WiresharkKeepAlives     uint32
	KeepAliveAcks           uint32
	WindowFull              uint32
	WindowUpdates           uint32
	LostSegments            uint32
	AckedUnseen             uint32

	KeepAlives   uint32 // keepalive probes by context
	WindowProbes uint32 // persist (zero-window) probes by context, Linux and BSD style
	// ProbeRetransmissions are keepalive-shaped segments sent while data was
	// outstanding: retransmissions that Wireshark labels Keep-Alive.
	ProbeRetransmissions uint32
}

// Run follows a sequence of like events from one endpoint that its peer
// does not answer: retransmissions of the same unacknowledged data, or
// probes. The classifier reads a run's count and timing to recognise
// retransmission, persist and keepalive timeouts.
type Run struct {
	Count       uint32 // events in the run
	Unanswered  uint32 // events since the peer last sent anything
	Seq         uint32 // sequence number the run is about
	First, Last int64  // times of the first and last event
	MinGap      int64  // smallest and largest gap between consecutive events
	MaxGap      int64
	LastGap     int64
	Shrinks     uint32 // gaps that were clearly shorter than the one before
}

func (r *Run) reset() { *r = Run{} }

// add records an event at time ts.
func (r *Run) add(ts int64, seq uint32) {
	if r.Count == 0 {
		*r = Run{Count: 1, Unanswered: 1, Seq: seq, First: ts, Last: ts}
		return
	}
	gap := ts - r.Last
	if r.Count == 1 || gap < r.MinGap {
		r.MinGap = gap
	}
	if gap > r.MaxGap {
		r.MaxGap = gap
	}
	if r.Count >= 2 && gap*4 < r.LastGap*3 {
		r.Shrinks++
	}
	r.LastGap = gap
	r.Last = ts
	r.Count++
	r.Unanswered++
}

// Endpoint is one end of a connection: its address, what it sent, and the
// state inferred for it.
type Endpoint struct {
	Addr  capture.Addr
	Port  uint16
	State State
	Counters

	// From its SYN.
	SawSYN        bool
	ISN           uint32
	MSS           uint16
	WScale        int8 // -1 when not offered
	SACKPermitted bool
	Timestamps    bool

	FirstTime, LastTime int64 // first and last segment sent
	firstSeq            uint32
	LastNonRST          int64 // last segment sent that was not a RST

	// Highest sequence number sent (seq+len, SYN/FIN count one) and highest
	// acknowledgment sent, valid when Sent/Acked are set.
	HighSeq, HighAck  uint32
	SentAny, AckedAny bool
	Window            uint16 // last raw window advertised
	WindowFromSYN     bool   // ... and it came in a SYN (never scaled)
	WindowZero        bool   // the last window advertised (non-SYN/FIN/RST) was 0

	FINSent     bool
	FINTime     int64
	FINSeq      uint32 // sequence number the FIN occupies
	FINAcked    bool   // the peer acknowledged the FIN
	RSTSent     bool
	RSTTime     int64
	RSTHasACK   bool
	RSTAfterFIN bool // its first RST came after its own FIN
	// DataAfterFIN: the peer's data arrived after this endpoint's FIN.
	DataAfterFIN bool

	// Runs read by the timeout rules.
	Retransmits Run // retransmissions of the data the peer has not acknowledged
	Persist     Run // window probes while the peer's window is 0
	Keepalive   Run // keepalive probes
	SYNRun      Run // its SYNs (or SYN-ACKs), retransmissions included

	// Data RTT (RFC 6298 smoothing, Karn's rule): one segment is timed at a
	// time, from its capture to the capture of the peer's ACK covering it.
	SRTT       int64
	RTTSamples uint32
}

// Conn is one TCP connection as seen on the tap: the view of a connection a
// Table hands to its sink, its dead check and EachOpen. The table keeps
// connections in a compact form (about 425 bytes each) and fills a Conn only
// for those calls; a Conn is only valid during the call.
type Conn struct {
	Key       Key
	ID        uint64 // unique within a run: worker-local sequence * workers + worker
	Family    capture.Family
	VLANCount uint8
	VLAN      [2]uint16
	Interface uint16
	Tunnel    capture.Tunnel  // how its first segment travelled (zero: not tunnelled)
	Ends      [2]Endpoint     // indexed by Role
	Trace     *flightrec.Ring // the flight recorder; nil when not traced
	Midstream bool            // the connection's SYN was not seen

	FirstSeen, LastSeen int64

	Established  bool  // the three-way handshake completed (or midstream data flowed)
	HandshakeRTT int64 // SYN to the ACK of the SYN-ACK, as seen on the tap

	FirstFIN       Role
	AnyFIN         bool
	FirstRST       Role
	AnyRST         bool
	RSTInHandshake bool // the first RST came before the handshake completed
	CloseDone      bool // both FINs sent and the second one acknowledged (or both FINs seen)

	// End bookkeeping, set by the table.
	Ended    bool  // a RST or a completed close ended it; it lingers to absorb stragglers
	EndedAt  int64 // packet time it ended
	End      EndCause
	EvalTime int64 // the time the classifier judges silence against

	// Zeek is the connection's Zeek analysis (it runs no timers and counts no
	// packets: see ZeekTracker).
	Zeek ZeekTracker
}

// EndCause says why the table let go of a connection.
type EndCause uint8

// End causes.
const (
	EndClosed  EndCause = iota + 1 // RST or completed close, after lingering
	EndIdle                        // idle timeout
	EndCapture                     // end of input (offline) or shutdown
	EndReused                      // a new SYN with another ISN reused the 4-tuple
	EndEvicted                     // table full (memory quota)
	EndSilent                      // live: judged dead by its silence (a timeout rule matched)
)

// fill sets v to the view of connection c, ending for reason end (0 while
// it is open) and judged as of eval.
func (t *Table) fill(v *Conn, c *tracked, end EndCause, eval int64) {
	x, cx := t.rareExtIf(c), t.closeExtIf(c)
	v.Key = c.key()
	v.ID = c.id
	v.Family = c.family
	v.VLANCount = c.vlanCount
	v.VLAN = c.vlan
	v.Interface = c.iface
	v.Tunnel = t.tunnelOf(c)
	v.Trace = t.traceOf(c)
	v.Midstream = c.has(cfMidstream)
	v.FirstSeen = c.firstSeen()
	v.LastSeen = c.lastSeen()
	v.Established = c.has(cfEstablished)
	v.HandshakeRTT = 0
	if v.Established {
		v.HandshakeRTT = c.synTime
	}
	v.FirstFIN = roleIf(c.has(cfFirstFINServer))
	v.AnyFIN = c.has(cfAnyFIN)
	v.FirstRST = roleIf(c.has(cfFirstRSTServer))
	v.AnyRST = c.has(cfAnyRST)
	v.RSTInHandshake = c.has(cfRSTInHandshake)
	v.CloseDone = c.has(cfCloseDone)
	v.Ended = c.has(cfEnded)
	v.EndedAt = 0
	if cx != nil {
		v.EndedAt = cx.endedAt
	}
	v.End = end
	v.EvalTime = eval
	for r := Client; r <= Server; r++ {
		t.fillEnd(&v.Ends[r], c, r, x, cx)
	}
	v.Zeek = ZeekTracker{noTimers: true, core: c.zeek}
	if x != nil {
		v.Zeek.rare = x.zeek
	}
	if cx != nil {
		v.Zeek.close = cx.zeek
	}
}

// fillEnd sets v to the view of c's endpoint r; x and cx are c's
// extensions or nil.
func (t *Table) fillEnd(v *Endpoint, c *tracked, r Role, x *rareExt, cx *closeExt) {
	e := &c.ends[r]
	addr, port := c.endpoint(r)
	*v = Endpoint{
		Addr:  addr,
		Port:  port,
		State: e.state,
		Counters: Counters{
			Packets:      t.wideValue(c, r, wPackets),
			PayloadBytes: t.wideValue(c, r, wPayloadBytes),
			IPBytes:      t.wideValue(c, r, wIPBytes),
			SYNs:         t.smallCount(c, r, scSYNs),
			SYNACKs:      t.smallCount(c, r, scSYNACKs),
			FINs:         t.smallCount(c, r, scFINs),
			RSTs:         t.smallCount(c, r, scRSTs),
		},
		SawSYN:        e.has(efSawSYN),
		ISN:           e.isn,
		MSS:           e.mss,
		WScale:        e.wscale,
		SACKPermitted: e.has(efSACKPermitted),
		Timestamps:    e.has(efTimestamps),
		FirstTime:     e.firstTime,
		LastTime:      e.lastTime,
		firstSeq:      e.firstSeq,
		LastNonRST:    e.lastTime,
		HighSeq:       e.highSeq,
		HighAck:       e.highAck,
		SentAny:       e.has(efSentAny),
		AckedAny:      e.has(efAckedAny),
		Window:        e.window,
		WindowFromSYN: e.has(efWindowFromSYN),
		WindowZero:    e.has(efWindowZero),
		FINSent:       e.has(efFINSent),
		FINSeq:        e.finSeq,
		FINAcked:      e.has(efFINAcked),
		RSTSent:       e.has(efRSTSent),
		RSTHasACK:     e.has(efRSTHasACK),
		RSTAfterFIN:   e.has(efRSTAfterFIN),
		DataAfterFIN:  e.has(efDataAfterFIN),
		SYNRun:        c.synRun(r, x),
		SRTT:          int64(t.wideValue(c, r, wSRTT)),
		RTTSamples:    e.rttSamples,
	}
	if cx != nil {
		v.FINTime = cx.finTime[r]
		v.RSTTime = cx.rstTime[r]
		if e.has(efLastWasRST) {
			v.LastNonRST = cx.lastNonRST[r]
		}
	}
	if x != nil {
		xe := &x.ends[r]
		v.Counters.AnalysisCounts = xe.counts
		v.Retransmits = xe.retransmits
		v.Persist = xe.persist
		v.Keepalive = xe.keepalive
	}
}

// senderLooksLikeClient guesses, for a connection joined mid-stream, whether
// the sender of its first segment is the client: servers usually listen on
// a well-known or registered port, clients use ephemeral ones.
func senderLooksLikeClient(srcPort, dstPort uint16) bool {
	srcServ, dstServ := serviceLikely(srcPort), serviceLikely(dstPort)
	switch {
	case dstServ > srcServ:
		return true
	case srcServ > dstServ:
		return false
	}
	return true // no hint: the first sender is the client
}

// serviceLikely ranks how likely a port is a server's: 2 for well-known,
// 1 for registered, 0 for the dynamic range.
func serviceLikely(port uint16) int {
	switch {
	case port < 1024:
		return 2
	case port < 32768:
		return 1
	}
	return 0
}
