package output

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAllOutputs20k writes 20,000 finished connections a second
// (real records of the scenario captures) into every output at once: the
// file, standard output (to /dev/null), Debian's rsyslogd over TCP and
// nats-server with JetStream, started by the benchmark. Each b.N is one
// second of records, paced in 100 steps; it reports records/s delivered
// by the slowest output, tcptap's CPU per record (the benchmark process:
// encoding, queues, the outputs' goroutines; not the servers') and the
// records dropped, which must be 0.
//
//	go test ./exporter/output -run '^$' -bench AllOutputs20k -benchtime 5x
func BenchmarkAllOutputs20k(b *testing.B) {
	const rate = 20_000
	rs := startRsyslog(b)
	ns := startNATS(b)
	recs := makeRecords(b, rate)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	s, err := New(Config{
		Stdout: true,
		File:   &FileConfig{Path: filepath.Join(b.TempDir(), "records.json"), MaxSize: 256 << 20, MaxFiles: 2},
		Syslog: &SyslogConfig{Address: fmt.Sprintf("tcp://127.0.0.1:%d", rs.tcp), Tag: "tcptap"},
		NATS:   &NATSConfig{URL: ns.url(), Subject: "tcptap.bench", Stream: "BENCH"},
	}, Options{QueueBytes: 256 << 20, FlushTimeout: 60 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range s.outs {
		if so, ok := o.s.(*stdout); ok {
			so.w = devnull
		}
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	const steps = 100
	for i := range b.N {
		for k := range steps {
			due := start.Add(time.Duration(i)*time.Second + time.Duration(k)*time.Second/steps)
			time.Sleep(time.Until(due))
			for j := k * rate / steps; j < (k+1)*rate/steps; j++ {
				s.Write(&recs[j])
			}
		}
	}
	total := uint64(b.N * rate)
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		for _, st := range s.Stats() {
			if st.Sent+st.Dropped+st.Failed < total {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	s.Close()
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()) - time.Duration(ru0.Utime.Nano()+ru0.Stime.Nano())
	var dropped uint64
	for _, st := range s.Stats() {
		dropped += st.Dropped + st.Failed
		b.Logf("%s: sent %d dropped %d failed %d", st.Name, st.Sent, st.Dropped, st.Failed)
	}
	if dropped != 0 {
		b.Errorf("%d records dropped or failed", dropped)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(total), "cpu-µs/record")
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "%cpu")
}
