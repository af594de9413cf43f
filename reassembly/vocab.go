package reassembly

import "github.com/tcptap/tcptap/tcpstate"

// The vocabulary of an observed connection — endpoint states, roles and
// segment analysis flags — lives in package tcpstate, below both this
// tracker and the flight recorder that records it. These names keep the
// tracker's code and its callers reading as they did, the way os.FileMode
// is io/fs's FileMode.
type (
	State    = tcpstate.State
	Role     = tcpstate.Role
	Analysis = tcpstate.Analysis
)

// Endpoint states (tcpstate).
const (
	StateUnknown     = tcpstate.StateUnknown
	StateClosed      = tcpstate.StateClosed
	StateListen      = tcpstate.StateListen
	StateSynSent     = tcpstate.StateSynSent
	StateSynReceived = tcpstate.StateSynReceived
	StateEstablished = tcpstate.StateEstablished
	StateFinWait1    = tcpstate.StateFinWait1
	StateFinWait2    = tcpstate.StateFinWait2
	StateCloseWait   = tcpstate.StateCloseWait
	StateLastAck     = tcpstate.StateLastAck
	StateClosing     = tcpstate.StateClosing
	StateTimeWait    = tcpstate.StateTimeWait
)

// Roles (tcpstate).
const (
	Client = tcpstate.Client
	Server = tcpstate.Server
)

// Analysis flags (tcpstate).
const (
	Retransmission         = tcpstate.Retransmission
	FastRetransmission     = tcpstate.FastRetransmission
	SpuriousRetransmission = tcpstate.SpuriousRetransmission
	OutOfOrder             = tcpstate.OutOfOrder
	DupAck                 = tcpstate.DupAck
	ZeroWindow             = tcpstate.ZeroWindow
	ZeroWindowProbe        = tcpstate.ZeroWindowProbe
	ZeroWindowProbeAck     = tcpstate.ZeroWindowProbeAck
	KeepAlive              = tcpstate.KeepAlive
	KeepAliveAck           = tcpstate.KeepAliveAck
	WindowFull             = tcpstate.WindowFull
	WindowUpdate           = tcpstate.WindowUpdate
	LostSegment            = tcpstate.LostSegment
	AckedUnseen            = tcpstate.AckedUnseen
	ReusedPorts            = tcpstate.ReusedPorts
	PersistProbe           = tcpstate.PersistProbe
	KeepaliveProbe         = tcpstate.KeepaliveProbe
	ProbeRetransmission    = tcpstate.ProbeRetransmission
)
