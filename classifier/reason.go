// Package classifier decides why a connection ended: pure functions from a
// finished connection's history (reassembly.Conn) to one reason code of
// DESIGN §3, the actor, the local side, and Zeek's conn_state and history.
//
// The rules are one table (rules.go), tried in order; the first that
// matches wins. Each rule's comment gives the wire signature it recognises.
package classifier

// Code is a reason code, as the switch vendor's trace feature prints it.
type Code string

// Reason codes (DESIGN §3).
const (
	Refused           Code = "RF"
	SYNTimeout        Code = "ST"
	RetransmitTimeout Code = "RT"
	PersistTimeout    Code = "PT"
	KeepaliveTimeout  Code = "KT"
	AppAbnormalClose  Code = "AA"
	SentReset         Code = "SR"
	ReceivedReset     Code = "RR"
	AppNormalClose    Code = "AN"
	PeerNormalClose   Code = "PN"
	IdleTimeout       Code = "IT"
	StillOpen         Code = "OP"
	BackupDrop        Code = "BD"
)

// Codes lists every reason code in the order of the rule table (BD last:
// the vendor's standby-MPU drop, never produced passively).
var Codes = []Code{
	Refused, SYNTimeout, RetransmitTimeout, PersistTimeout, KeepaliveTimeout,
	AppAbnormalClose, SentReset, ReceivedReset, AppNormalClose, PeerNormalClose,
	IdleTimeout, StillOpen, BackupDrop,
}

var codeText = map[Code]string{
	Refused:           "refused",
	SYNTimeout:        "SYN timeout",
	RetransmitTimeout: "retransmit timeout",
	PersistTimeout:    "persist timeout",
	KeepaliveTimeout:  "keepalive timeout",
	AppAbnormalClose:  "application abnormal close",
	SentReset:         "sent reset",
	ReceivedReset:     "received reset",
	AppNormalClose:    "application normal close",
	PeerNormalClose:   "peer normal close",
	IdleTimeout:       "idle timeout",
	StillOpen:         "still open",
	BackupDrop:        "backup drop",
}

// Text returns the code's name, e.g. "retransmit timeout".
func (c Code) Text() string { return codeText[c] }

// Abnormal reports whether the code is an abnormal close: anything but a
// normal close by either side or a connection still open.
func (c Code) Abnormal() bool {
	return c != AppNormalClose && c != PeerNormalClose && c != StillOpen
}

// Valid reports whether c is a known code.
func (c Code) Valid() bool { _, ok := codeText[c]; return ok }
