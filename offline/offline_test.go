package offline

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/record"
)

// runAll analyses names with the given number of workers and returns the
// records sorted, as JSON lines.
func runAll(t *testing.T, names []string, workers int) ([]string, Stats) {
	t.Helper()
	var recs []record.Record
	st, err := Run(context.Background(), names, Options{Workers: workers}, func(r *record.Record) {
		recs = append(recs, *r)
	})
	if err != nil {
		t.Logf("run with %d workers: %v", workers, err)
	}
	exporter.SortRecords(recs)
	out := make([]string, len(recs))
	for i := range recs {
		recs[i].ID = 0 // IDs encode the worker
		b, err := json.Marshal(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out, st
}

// TestResultsIndependentOfWorkers checks that sharding changes nothing: every
// peer capture gives the same records with 1, 2, 3 and 8 workers.
func TestResultsIndependentOfWorkers(t *testing.T) {
	for _, p := range peers.Pcaps(t) {
		t.Run(filepath.Base(p), func(t *testing.T) {
			want, st := runAll(t, []string{p}, 1)
			for _, n := range []int{2, 3, 8} {
				got, _ := runAll(t, []string{p}, n)
				if len(got) != len(want) {
					t.Fatalf("%d workers: %d records, 1 worker: %d", n, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%d workers, record %d differs:\n got %s\nwant %s", n, i, got[i], want[i])
					}
				}
			}
			if st.Segments > 0 && len(want) == 0 {
				t.Errorf("%d TCP segments but no connection", st.Segments)
			}
		})
	}
}

// TestAllPeerCapturesAtOnce reads the whole corpus as one input list, with
// several workers: no panic, every connection accounted for.
func TestAllPeerCapturesAtOnce(t *testing.T) {
	names := peers.Pcaps(t)
	got, st := runAll(t, names, 4)
	if st.Table.Opened != uint64(len(got)) {
		t.Errorf("opened %d connections, reported %d", st.Table.Opened, len(got))
	}
	if st.Table.Packets != st.Segments {
		t.Errorf("table saw %d segments, reader produced %d", st.Table.Packets, st.Segments)
	}
	t.Logf("%d inputs, %d frames, %d TCP segments, %d connections", len(names), st.Frames, st.Segments, len(got))
}
