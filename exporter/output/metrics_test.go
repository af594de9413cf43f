package output

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	recs := makeRecords(t, 3)
	s, err := New(Config{File: &FileConfig{Path: filepath.Join(t.TempDir(), "r.json")}}, Options{QueueBytes: 64 << 10, FlushTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range recs {
		s.Write(&recs[i])
	}
	waitFor(t, 2*time.Second, "3 sent", func() bool { return statsOf(s, "file").Sent == 3 })
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	want := `# HELP tcptap_output_queue_bytes Bytes of records waiting in the output's queue.
# TYPE tcptap_output_queue_bytes gauge
tcptap_output_queue_bytes{output="file"} 0
# HELP tcptap_output_queue_limit_bytes Size of the output's queue (output.queue_size).
# TYPE tcptap_output_queue_limit_bytes gauge
tcptap_output_queue_limit_bytes{output="file"} 65536
# HELP tcptap_output_up 1 when the output's file is open or its connection is up, else 0.
# TYPE tcptap_output_up gauge
tcptap_output_up{output="file"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tcptap_output_queue_bytes", "tcptap_output_queue_limit_bytes", "tcptap_output_up"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tcptap_output_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if got["sent"] != 3 || got["dropped"] != 0 || got["failed"] != 0 || len(got) != 3 {
		t.Errorf("tcptap_output_records_total %v", got)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", err, probs)
	}
}
