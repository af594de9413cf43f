package record_test

import (
	"io"

	"testing"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

type finished struct {
	c   reassembly.Conn
	res classifier.Result
}

// finishedConns runs the benchmark capture through one table and keeps a
// copy of every finished connection with its classification.
func finishedConns(b *testing.B) []finished {
	cls := classifier.New(classifier.DefaultConfig())
	var out []finished
	err := synth.Finished(synth.BenchConfig, func(c *reassembly.Conn) {
		f := finished{c: *c, res: cls.Classify(c)}
		f.c.Trace = nil
		out = append(out, f)
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func reportConns(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "conns/s")
	}
}

var recSink record.Record

// BenchmarkSynthNewRecord builds the exported record of a finished
// connection; one op is one connection.
func BenchmarkSynthNewRecord(b *testing.B) {
	fs := finishedConns(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := &fs[i%len(fs)]
		recSink = record.New(&f.c, f.res, "synth.pcap")
	}
	reportConns(b)
}

// BenchmarkSynthRecordJSON builds and writes the JSON line of a finished
// connection (tcptap read --format json); one op is one connection.
func BenchmarkSynthRecordJSON(b *testing.B) {
	fs := finishedConns(b)
	jw := exporter.NewJSONWriter(io.Discard)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := &fs[i%len(fs)]
		rec := record.New(&f.c, f.res, "synth.pcap")
		if err := jw.Write(&rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := jw.Flush(); err != nil {
		b.Fatal(err)
	}
	reportConns(b)
}
