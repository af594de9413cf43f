package reassembly

// EachLingering calls fn for every connection that ended and lingers in
// the table (EachOpen lists only those not yet ended); for tests.
func (t *Table) EachLingering(fn func(c *Conn)) {
	for h := t.ended.head; h != 0; {
		c := t.conns.at(h)
		h = c.next
		t.fill(&t.view, c, 0, 0)
		fn(&t.view)
		t.view.Trace = nil
	}
}
