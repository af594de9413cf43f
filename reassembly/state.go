package reassembly

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
