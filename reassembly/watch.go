package reassembly

// The watch list holds the connections with a retransmission, probe or SYN
// run in progress: the only ones that can be at risk of dying by a timer
// (an unanswered retransmission, a window probe against a zero window, an
// unanswered keepalive, a retried SYN) and so the only ones the live
// sensor's at-risk view and gauge need to look at. Looking at them costs
// what the list holds, not what the table holds: a table of a million
// healthy connections has an empty list.
//
// A connection joins when one of its runs grows (cfRunGrew, set by
// trackRuns and addSYN) and leaves when EachWatched finds no run in
// progress any more, or when it is finalized. Its place on the list is in
// its rare extension, which every run lives in, so leaving costs no search.

// watchGrown puts connection h on the watch list if one of its runs grew
// on the packet just applied.
func (t *Table) watchGrown(h uint32, c *tracked) {
	c.flags &^= cfRunGrew
	if c.has(cfWatched) || c.rareX == 0 {
		return
	}
	c.flags |= cfWatched
	t.watch = append(t.watch, h)
	t.rares.at(c.rareX).watchAt = uint32(len(t.watch))
}

// unwatch takes connection c off the watch list.
func (t *Table) unwatch(c *tracked) {
	if !c.has(cfWatched) {
		return
	}
	c.flags &^= cfWatched
	x := t.rares.at(c.rareX)
	i := x.watchAt - 1
	x.watchAt = 0
	last := len(t.watch) - 1
	if int(i) != last {
		moved := t.watch[last]
		t.watch[i] = moved
		t.rares.at(t.conns.at(moved).rareX).watchAt = i + 1
	}
	t.watch = t.watch[:last]
}

// runsInProgress reports whether any of c's retransmission, probe or
// keepalive runs has events, or its handshake is still being retried.
func (t *Table) runsInProgress(c *tracked) bool {
	if c.rareX == 0 {
		return false
	}
	x := t.rares.at(c.rareX)
	for i := range x.ends {
		e := &x.ends[i]
		if e.retransmits.Count > 0 || e.persist.Count > 0 || e.keepalive.Count > 0 {
			return true
		}
	}
	if c.has(cfEstablished) || c.has(cfAnyRST) {
		return false
	}
	return c.synRun(Client, x).Count > 1 || c.synRun(Server, x).Count > 1
}

// Watched returns the number of connections on the watch list.
func (t *Table) Watched() int { return len(t.watch) }

// EachWatched calls fn for every open connection with a retransmission,
// probe or SYN run in progress, until fn returns false; connections whose
// runs have all been answered leave the list on the way. The *Conn is only
// valid during the call (EvalTime 0); the table must not be used
// concurrently.
func (t *Table) EachWatched(fn func(c *Conn) bool) {
	for i := 0; i < len(t.watch); {
		h := t.watch[i]
		c := t.conns.at(h)
		if c.has(cfEnded) || !t.runsInProgress(c) {
			t.unwatch(c) // the last one moved to i: look at i again
			continue
		}
		i++
		t.fill(&t.view, c, 0, 0)
		more := fn(&t.view)
		t.view.Trace = nil
		if !more {
			return
		}
	}
}
