package offline

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// A capture trickling through a pipe (tcpdump -U -w - | tcptap read -)
// gives each connection's record once it finished and the input paused,
// not at the end of the input.
func TestPipeRecordsBeforeEndOfInput(t *testing.T) {
	data, err := os.ReadFile("../testdata/scenarios/AN-client-closes_tcp4.pcap")
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = stdin; r.Close() })

	recs := make(chan record.Record, 16)
	flushes := make(chan struct{}, 1000)
	done := make(chan error, 1)
	opts := Options{
		Workers:   2,
		Table:     reassembly.Config{CloseLinger: 100 * time.Millisecond},
		Fleet:     &record.Fleet{Sensor: "pipe-test"},
		FlushIdle: 50 * time.Millisecond,
		Flush:     func() { flushes <- struct{}{} },
	}
	go func() {
		_, err := Run(context.Background(), []string{"-"}, opts, func(rec *record.Record) { recs <- *rec })
		done <- err
	}()
	// The whole capture, but no end of input.
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	// The capture holds two connections that both end with FINs.
	start := time.Now()
	for range 2 {
		select {
		case rec := <-recs:
			if rec.Reason != "AN" || rec.End != "closed" || rec.Sensor != "pipe-test" || rec.UID == "" || rec.CommunityID == "" {
				t.Errorf("record %+v", rec)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no record 5 s after the connection closed, input still open")
		}
	}
	t.Logf("both records after %v of silence on the pipe", time.Since(start).Round(time.Millisecond))
	select {
	case <-flushes:
	case <-time.After(time.Second):
		t.Error("the sink was not flushed after the record")
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Errorf("%d more records at the end of input", len(recs))
	}
}
