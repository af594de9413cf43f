package reassembly

// Zeek's connection timers: the inactivity, close and reset timers that
// decide when Zeek would have removed a connection (ZeekTracker.Expired).

// Expired reports whether Zeek's timers would have removed the connection by
// time now (nanoseconds since the epoch), so that a packet at now starts a new
// connection (and a new conn.log row). It models ConnDeleteTimer
// (tcp_close_delay after a complete close), AttemptTimer (tcp_attempt_delay
// after an unanswered SYN), ExpireTimer (tcp_session_timer /
// tcp_connection_linger) and the session inactivity timer
// (tcp_inactivity_timeout; before the handshake completes, Zeek uses
// udp_inactivity_timeout for TCP). Check it before each Update. A tracker
// rebuilt from a table's connection (Conn.Zeek) runs no timers and reports
// false.
func (z *ZeekTracker) Expired(now int64) bool {
	if !z.core.has(zcStarted) || z.noTimers {
		return false
	}
	tm := z.tm // the timers run on a copy: the tracker does not change
	o := z.op()
	o.tm = &tm
	return o.advance(now)
}

// advance runs the timers due by now in time order and reports whether one of
// them removed the connection. Only the timers change.
func (o *zeekOp) advance(now int64) bool {
	tm := o.tm
	removed := false
	for {
		// Pick the earliest due timer.
		kind, at := -1, int64(0)
		consider := func(k int, t int64) {
			if t != zeekNoTimer && t <= now && (kind < 0 || t < at) {
				kind, at = k, t
			}
		}
		consider(0, tm.deleteAt)
		if tm.inactivity > 0 {
			consider(1, tm.lastTime+tm.inactivity)
		}
		consider(2, tm.attemptAt)
		consider(3, tm.expireAt[0])
		consider(4, tm.expireAt[1])
		if kind < 0 {
			return removed
		}
		switch kind {
		case 0: // TCPSessionAdapter::ConnDeleteTimer
			tm.deleteAt = zeekNoTimer
			removed = true
		case 1: // Session::InactivityTimer
			tm.inactivity = 0
			removed = true
		case 2: // TCPSessionAdapter::AttemptTimer
			tm.attemptAt = zeekNoTimer
			orig, resp := o.origEP(), o.respEP()
			if tm.isActive && (orig.state == ZeekSynSent || orig.state == ZeekSynAckSent) && resp.state == ZeekInactive {
				tm.isActive = false
				removed = true
			}
		default: // TCPSessionAdapter::ExpireTimer
			k := kind - 3
			if !tm.isActive {
				tm.expireAt[k] = zeekNoTimer
				break
			}
			orig, resp := o.origEP(), o.respEP()
			oClosed, rClosed := orig.has(zeDidClose), resp.has(zeDidClose)
			if tm.lastTime+zeekConnectionLinger < at {
				if (oClosed || rClosed) &&
					((oClosed && rClosed) || orig.state == ZeekReset || resp.state == ZeekReset ||
						orig.state == ZeekInactive || resp.state == ZeekInactive) {
					tm.isActive = false
					removed = true
				} else if resp.state == ZeekInactive && orig.state == ZeekInactive {
					removed = true
				}
			}
			tm.expireAt[k] = at + zeekSessionTimer
		}
		if removed {
			// Nothing fires after removal.
			tm.deleteAt, tm.attemptAt, tm.inactivity = zeekNoTimer, zeekNoTimer, 0
			tm.expireAt = [2]int64{zeekNoTimer, zeekNoTimer}
		}
	}
}

// cancelTimers is Analyzer::CancelTimers on the TCP session adapter: the
// attempt and expire timers go; the session's inactivity timer stays.
func (o *zeekOp) cancelTimers() {
	if tm := o.tm; tm != nil {
		tm.attemptAt = zeekNoTimer
		tm.expireAt = [2]int64{zeekNoTimer, zeekNoTimer}
		tm.timersEnded = true
	}
}

// setActive sets TCPSessionAdapter::is_active, which only the timers read.
func (o *zeekOp) setActive(on bool) {
	if o.tm != nil {
		o.tm.isActive = on
	}
}

// addTimer sets a timer unless the adapter's timers were cancelled.
func (o *zeekOp) addTimer(slot *int64, at int64) {
	if o.tm.timersEnded {
		return
	}
	if *slot == zeekNoTimer || at < *slot {
		*slot = at
	}
}
