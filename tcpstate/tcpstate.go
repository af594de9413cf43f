// Package tcpstate names what a passive observer infers about a TCP
// connection: each endpoint's state (RFC 793, numbered as TCP-MIB's
// tcpConnState), which end it is, and the analysis flags of a segment. The
// connection tracker (package reassembly) computes them and the flight
// recorder (package flightrec) keeps them for each recorded segment; both
// sit above this package so that neither needs the other to name them.
package tcpstate

// State is an endpoint's TCP state (RFC 793) as inferred from the segments
// seen on the wire in both directions.
type State uint8

// TCP states. Their numeric values are TCP-MIB's tcpConnState values.
const (
	StateUnknown     State = 0
	StateClosed      State = 1
	StateListen      State = 2
	StateSynSent     State = 3
	StateSynReceived State = 4
	StateEstablished State = 5
	StateFinWait1    State = 6
	StateFinWait2    State = 7
	StateCloseWait   State = 8
	StateLastAck     State = 9
	StateClosing     State = 10
	StateTimeWait    State = 11
)

var stateNames = [...]string{
	"UNKNOWN", "CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED",
	"FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "LAST_ACK", "CLOSING", "TIME_WAIT",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// Role says which end of a connection an endpoint is.
type Role uint8

// Roles. The client sent the first SYN; without a handshake, a heuristic
// picks it (Conn.Midstream is then set).
const (
	Client Role = 0
	Server Role = 1
)

// Other returns the opposite role.
func (r Role) Other() Role { return r ^ 1 }

func (r Role) String() string {
	if r == Client {
		return "client"
	}
	return "server"
}

// Analysis is the set of Wireshark-compatible analysis flags of one segment
// (Wireshark's TCP_A_* flags, epan/dissectors/packet-tcp.c), plus tcptap's
// context-aware probe interpretation.
type Analysis uint32

// Wireshark's analysis flags.
const (
	Retransmission Analysis = 1 << iota
	FastRetransmission
	SpuriousRetransmission
	OutOfOrder
	DupAck
	ZeroWindow
	ZeroWindowProbe
	ZeroWindowProbeAck
	KeepAlive
	KeepAliveAck
	WindowFull
	WindowUpdate
	LostSegment // "previous segment not captured"
	AckedUnseen // "ACKed unseen segment"
	ReusedPorts

	// tcptap's reading of a probe-shaped segment by context (docs/wire.md,
	// §3): Linux keepalive and persist probes are byte-identical, and a
	// 1-byte retransmission of the last byte sent looks like a keepalive to
	// Wireshark.
	PersistProbe        // a window probe: the peer's window is 0
	KeepaliveProbe      // a keepalive: nothing outstanding, the peer's window open
	ProbeRetransmission // keepalive-shaped but data is outstanding: a retransmission
)

var analysisNames = [...]string{
	"retransmission", "fast-retransmission", "spurious-retransmission", "out-of-order",
	"dup-ack", "zero-window", "zero-window-probe", "zero-window-probe-ack",
	"keep-alive", "keep-alive-ack", "window-full", "window-update",
	"previous-segment-not-captured", "acked-unseen-segment", "reused-ports",
	"persist-probe", "keepalive-probe", "probe-retransmission",
}

// Names returns the names of the flags set, in a fixed order.
func (a Analysis) Names() []string {
	var out []string
	for i, n := range analysisNames {
		if a&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}
