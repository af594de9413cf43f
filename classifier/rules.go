package classifier

import (
	"time"

	"github.com/tcptap/tcptap/reassembly"
)

// input is what a rule looks at.
type input struct {
	c     *reassembly.Conn
	cfg   *Config
	local reassembly.Role
}

// rule is one row of the table: a reason code and its wire signature.
type rule struct {
	code Code
	// match reports whether the connection shows the signature, and the
	// endpoint whose action or timer ended it.
	match func(in *input) (actor reassembly.Role, hasActor, ok bool)
}

// rules are tried in this order; the first match wins (docs/reasons.md).
var rules = [...]rule{
	// RF refused: the handshake never completed and the server answered
	// the client's SYN with a RST (Linux: RST|ACK with seq 0 from a closed
	// port, or a firewall's reject).
	{Refused, func(in *input) (reassembly.Role, bool, bool) {
		c := in.c
		if c.AnyRST && c.RSTInHandshake && c.FirstRST == reassembly.Server && c.Ends[reassembly.Client].SYNs > 0 {
			return reassembly.Server, true, true
		}
		return 0, false, false
	}},
	// ST SYN timeout: the handshake never completed, no RST; the client's
	// SYN (or the server's SYN-ACK) was retransmitted and never answered,
	// then silence. A lone SYN counts once it stayed unanswered for
	// SYNSilence (every stack retries within 3 s).
	{SYNTimeout, func(in *input) (reassembly.Role, bool, bool) {
		c := in.c
		if c.Established || c.AnyRST || c.AnyFIN || c.Midstream {
			return 0, false, false
		}
		cl, sv := &c.Ends[reassembly.Client], &c.Ends[reassembly.Server]
		if cl.SYNs == 0 || cl.PayloadBytes > 0 || sv.PayloadBytes > 0 {
			return 0, false, false
		}
		actor := reassembly.Client
		run := &cl.SYNRun
		if sv.SYNACKs > 0 && sv.SYNRun.Last > cl.SYNRun.Last {
			actor, run = reassembly.Server, &sv.SYNRun
		}
		e := &c.Ends[actor]
		silence := time.Duration(c.EvalTime - e.LastNonRST)
		if run.Count == 1 {
			return actor, true, silence >= in.cfg.SYNSilence
		}
		return actor, true, silence >= in.silenceAfter(run)
	}},
	// RT retransmission timeout: one side retransmitted the oldest
	// unacknowledged data at least RTMinRetransmissions times with gaps
	// that back off, no ACK ever covered it, and then that side went
	// silent (Linux: tcp_write_err sends no RST) or sent a RST (BSD).
	{RetransmitTimeout, func(in *input) (reassembly.Role, bool, bool) {
		for _, r := range in.order() {
			e := &in.c.Ends[r]
			run := &e.Retransmits
			if run.Count < in.cfg.RTMinRetransmissions || !backsOff(run) {
				continue
			}
			if in.resetAfter(r, run) || in.silentAfter(r, run) {
				return r, true, true
			}
		}
		return 0, false, false
	}},
	// PT persist timeout: the peer's last advertised window was 0, the
	// sender probed it at least PTMinProbes times (Linux: no payload at
	// snd_una-1; BSD/Windows: one byte at snd_una), and then the sender
	// went silent (Linux) or reset.
	{PersistTimeout, func(in *input) (reassembly.Role, bool, bool) {
		for _, r := range in.order() {
			e, peer := &in.c.Ends[r], &in.c.Ends[r.Other()]
			run := &e.Persist
			if !peer.WindowZero || run.Count < in.cfg.PTMinProbes {
				continue
			}
			if in.resetAfter(r, run) || in.silentAfter(r, run) {
				return r, true, true
			}
		}
		return 0, false, false
	}},
	// KT keepalive timeout: with nothing outstanding, keepalive probes (0
	// or 1 byte at snd_nxt-1) went unanswered and then the prober sent a
	// RST (Linux, after keepalive_probes probes), or at least KTMinProbes
	// evenly spaced probes went unanswered and the prober fell silent.
	{KeepaliveTimeout, func(in *input) (reassembly.Role, bool, bool) {
		for _, r := range in.order() {
			run := &in.c.Ends[r].Keepalive
			if run.Count == 0 {
				continue
			}
			if in.resetAfter(r, run) {
				return r, true, true
			}
			if run.Count >= in.cfg.KTMinProbes && evenlySpaced(run) && in.silentAfter(r, run) {
				return r, true, true
			}
		}
		return 0, false, false
	}},
	// AA application abnormal close: the local side sent its FIN and then
	// the first RST: its orderly close turned into an abort (data kept
	// arriving after it closed, or it aborted while closing).
	{AppAbnormalClose, func(in *input) (reassembly.Role, bool, bool) {
		c := in.c
		if c.AnyRST && c.FirstRST == in.local && c.Ends[in.local].RSTAfterFIN {
			return in.local, true, true
		}
		return 0, false, false
	}},
	// SR sent reset: the local side sent the first RST (abort with
	// SO_LINGER 0 or unread data, an administrative kill, or the reply of
	// a host with no state for the segment).
	{SentReset, func(in *input) (reassembly.Role, bool, bool) {
		if in.c.AnyRST && in.c.FirstRST == in.local {
			return in.local, true, true
		}
		return 0, false, false
	}},
	// RR received reset: the remote side sent the first RST, including one
	// that follows its own FIN.
	{ReceivedReset, func(in *input) (reassembly.Role, bool, bool) {
		if in.c.AnyRST {
			return in.c.FirstRST, true, true
		}
		return 0, false, false
	}},
	// AN application normal close: both FINs, the local side's first, no RST.
	{AppNormalClose, func(in *input) (reassembly.Role, bool, bool) {
		if in.c.CloseDone && in.c.FirstFIN == in.local {
			return in.local, true, true
		}
		return 0, false, false
	}},
	// PN peer normal close: both FINs, the remote side's first, no RST.
	{PeerNormalClose, func(in *input) (reassembly.Role, bool, bool) {
		if in.c.CloseDone {
			return in.c.FirstFIN, true, true
		}
		return 0, false, false
	}},
	// IT idle timeout: no close seen and nothing for longer than the idle
	// timeout.
	{IdleTimeout, func(in *input) (reassembly.Role, bool, bool) {
		return 0, false, in.c.End == reassembly.EndIdle
	}},
	// OP still open: no close seen when the capture ended (or, live, at
	// display time).
	{StillOpen, func(in *input) (reassembly.Role, bool, bool) {
		return 0, false, true
	}},
}

// order returns the roles to try as the actor of a timeout: the one that
// sent last first, so that of two stalled senders the one that gave up
// last is named.
func (in *input) order() [2]reassembly.Role {
	c := in.c
	if c.Ends[reassembly.Server].LastTime > c.Ends[reassembly.Client].LastTime {
		return [2]reassembly.Role{reassembly.Server, reassembly.Client}
	}
	return [2]reassembly.Role{reassembly.Client, reassembly.Server}
}

// resetAfter reports whether r sent its first RST after the run's last event.
func (in *input) resetAfter(r reassembly.Role, run *reassembly.Run) bool {
	e := &in.c.Ends[r]
	return e.RSTSent && e.RSTTime >= run.Last
}

// silentAfter reports whether r sent nothing but RSTs after the run and
// stayed silent long enough that its next retransmission or probe was due.
func (in *input) silentAfter(r reassembly.Role, run *reassembly.Run) bool {
	e := &in.c.Ends[r]
	if e.LastNonRST > run.Last {
		return false
	}
	return time.Duration(in.c.EvalTime-run.Last) >= in.silenceAfter(run)
}

// silenceAfter is how long a sender must stay silent after run for the run
// to count as given up.
func (in *input) silenceAfter(run *reassembly.Run) time.Duration {
	return in.cfg.Silence(time.Duration(run.LastGap))
}

// backsOff reports whether a run's gaps grow as a retransmission timer's
// exponential backoff does (allowing for the RTO cap: once capped, gaps
// stay equal, and the largest gap is still well above the smallest).
func backsOff(run *reassembly.Run) bool {
	if run.Count < 3 {
		return run.Count >= 1
	}
	return run.Shrinks == 0 && run.MaxGap*2 >= run.MinGap*3
}

// evenlySpaced reports whether a probe run's gaps are about equal, as a
// keepalive timer's are (keepalive_intvl).
func evenlySpaced(run *reassembly.Run) bool {
	if run.Count < 3 {
		return true
	}
	return run.MaxGap*4 <= run.MinGap*5+int64(50*time.Millisecond)
}
