package scenarios

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/netlab"
)

// Job names one scenario to run on one network ("tcp4" or "tcp6").
type Job struct{ Name, Network string }

// RunConcurrently starts jobs at once in lab, stagger apart, each bounded
// by its Budget plus slack, and returns every expectation with the longest
// Silence any of them needs. A job that cannot produce its fault is
// reported with t.Errorf (not a tcptap result); an unknown name is fatal.
func RunConcurrently(ctx context.Context, t testing.TB, lab *netlab.Lab, jobs []Job, slack, stagger time.Duration) ([]Expect, time.Duration) {
	t.Helper()
	var (
		mu      sync.Mutex
		exps    []Expect
		wg      sync.WaitGroup
		silence time.Duration
	)
	for _, j := range jobs {
		sc, ok := ByName(j.Name)
		if !ok {
			t.Fatalf("no scenario %s", j.Name)
		}
		silence = max(silence, sc.Silence)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, sc.Budget+slack)
			defer cancel()
			e, err := sc.Run(sctx, t, lab, j.Network)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("scenario %s/%s did not produce its fault (not a tcptap result): %v", sc.Name, j.Network, err)
				return
			}
			exps = append(exps, e...)
		}()
		select {
		case <-time.After(stagger):
		case <-ctx.Done():
		}
	}
	wg.Wait()
	return exps, silence
}
