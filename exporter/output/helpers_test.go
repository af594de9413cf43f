package output

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/record"
)

var (
	scenarioOnce sync.Once
	scenarioRecs []record.Record
	scenarioErr  error
)

// scenarioRecords returns the records of the shipped scenario captures
// (real connections on the Linux stack, every reason), stamped with a
// sensor name, a uid and the Community ID.
func scenarioRecords(t testing.TB) []record.Record {
	t.Helper()
	scenarioOnce.Do(func() {
		names, err := filepath.Glob("../../testdata/scenarios/*.pcap")
		if err != nil || len(names) == 0 {
			scenarioErr = err
			return
		}
		_, scenarioErr = offline.Run(context.Background(), names, offline.Options{Workers: 1, Fleet: &record.Fleet{Sensor: "test-sensor"}},
			func(r *record.Record) {
				c := *r
				c.VLAN = append([]uint16{}, r.VLAN...)
				scenarioRecs = append(scenarioRecs, c)
			})
	})
	if scenarioErr != nil || len(scenarioRecs) == 0 {
		t.Fatalf("scenario records: %v (%d)", scenarioErr, len(scenarioRecs))
	}
	return scenarioRecs
}

// makeRecords returns n records cycling through the scenario records,
// each with its own uid and id.
func makeRecords(t testing.TB, n int) []record.Record {
	base := scenarioRecords(t)
	out := make([]record.Record, n)
	for i := range out {
		out[i] = base[i%len(base)]
		out[i].ID = uint64(i)
		out[i].UID = record.NewUID()
	}
	return out
}

// jsonLine is a record's line in every output: AppendJSON and a newline.
func jsonLine(r *record.Record) string { return string(append(r.AppendJSON(nil), '\n')) }

// readLines returns the lines of a file, each with its newline; a last
// line without one is returned as it is.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text()+"\n")
	}
	if len(data) > 0 && data[len(data)-1] != '\n' && len(out) > 0 {
		out[len(out)-1] = out[len(out)-1][:len(out[len(out)-1])-1]
	}
	return out
}

// waitFor polls cond every 20 ms for at most limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statsOf returns the named output's counters.
func statsOf(s *Set, name string) Stats {
	for _, st := range s.Stats() {
		if st.Name == name {
			return st
		}
	}
	return Stats{}
}
