package daemon

import "context"

// HoldWorkers has every worker run a query that waits until release is
// called, so a test can let frames pile up in the capture rings. It
// returns once every worker is holding.
func HoldWorkers(d *Daemon) (release func()) {
	gate := make(chan struct{})
	held := make(chan struct{}, len(d.workers))
	go d.ask(context.Background(), func(*worker, int64) any {
		held <- struct{}{}
		<-gate
		return nil
	})
	for range d.workers {
		<-held
	}
	return func() { close(gate) }
}
