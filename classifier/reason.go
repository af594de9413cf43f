// Package classifier decides why a connection ended: pure functions from a
// finished connection's history (reassembly.Conn) to one reason code (see
// docs/reasons.md), the actor, the local side, and Zeek's conn_state and
// history.
//
// The rules are one table (rules.go), tried in order; the first that
// matches wins. Each rule's comment gives the wire signature it recognises.
// The reason codes themselves are one table too (Reasons, below): every
// other list of codes — metric labels, the HTTP API's filter, help texts,
// TCPTAP-MIB's rows, the README's table — derives from it or is checked
// against it by a test.
package classifier

import "strings"

// Code is a reason code, as the switch vendor's trace feature prints it.
type Code string

// Reason codes.
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

// Reason is one row of the reason table.
type Reason struct {
	Code Code
	Name string // e.g. "retransmit timeout"
	// Abnormal: any code but a normal close by either side or a
	// connection still open.
	Abnormal bool
	// Index is the code's row in TCPTAP-MIB's tcptapClosedTable and its
	// slot (Index-1) in per-reason counter arrays. It never changes: a new
	// code takes the next free index, wherever its rule goes in the table.
	Index int
	// Help says in one line what the code means on the wire.
	Help string
}

// Reasons is the reason table, in the order of the rule table (BD last: the
// vendor's standby-MPU drop, never produced passively).
var Reasons = [...]Reason{
	{Refused, "refused", true, 1, "the handshake never completed and the server answered the client's SYN with a RST"},
	{SYNTimeout, "SYN timeout", true, 2, "the handshake never completed, no RST; the SYN (or SYN-ACK) was retried and never answered, then silence"},
	{RetransmitTimeout, "retransmit timeout", true, 3, "one side retransmitted the oldest unacknowledged data with backing-off gaps, no ACK covered it, then it fell silent or reset"},
	{PersistTimeout, "persist timeout", true, 4, "the peer's window was 0; the sender's window probes went unanswered, then it fell silent or reset"},
	{KeepaliveTimeout, "keepalive timeout", true, 5, "nothing outstanding; keepalive probes went unanswered, then the prober reset or fell silent"},
	{AppAbnormalClose, "application abnormal close", true, 6, "the local side sent its FIN and then the first RST"},
	{SentReset, "sent reset", true, 7, "the local side sent the first RST"},
	{ReceivedReset, "received reset", true, 8, "the remote side sent the first RST"},
	{AppNormalClose, "application normal close", false, 9, "both FINs, the local side's first, no RST"},
	{PeerNormalClose, "peer normal close", false, 10, "both FINs, the remote side's first, no RST"},
	{IdleTimeout, "idle timeout", true, 11, "no close seen; nothing for longer than the idle timeout"},
	{StillOpen, "still open", false, 12, "no close seen when the capture ended (live: at display time)"},
	{BackupDrop, "backup drop", true, 13, "the vendor's standby-MPU drop; never produced passively"},
}

// NumCodes is the number of reason codes: the size of an array indexed by
// Index-1.
const NumCodes = len(Reasons)

// Codes lists every reason code in the order of the reason table.
var Codes = func() []Code {
	out := make([]Code, len(Reasons))
	for i := range Reasons {
		out[i] = Reasons[i].Code
	}
	return out
}()

// reasonOf returns the table's row for c, or nil.
func reasonOf(c Code) *Reason {
	for i := range Reasons {
		if Reasons[i].Code == c {
			return &Reasons[i]
		}
	}
	return nil
}

// Text returns the code's name, e.g. "retransmit timeout" ("" for an
// unknown code).
func (c Code) Text() string {
	if r := reasonOf(c); r != nil {
		return r.Name
	}
	return ""
}

// Abnormal reports whether the code is an abnormal close: anything but a
// normal close by either side or a connection still open.
func (c Code) Abnormal() bool {
	if r := reasonOf(c); r != nil {
		return r.Abnormal
	}
	return true
}

// Valid reports whether c is a known code.
func (c Code) Valid() bool { return reasonOf(c) != nil }

// Index returns the code's stable index (Reason.Index), or 0 for an unknown
// code.
func (c Code) Index() int {
	if r := reasonOf(c); r != nil {
		return r.Index
	}
	return 0
}

// CodeList returns the codes as "RF, ST, RT, ...", for help texts and
// error messages.
func CodeList() string {
	s := make([]string, len(Codes))
	for i, c := range Codes {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
