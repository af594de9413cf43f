package classifier_test

import (
	"testing"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/reassembly"
)

// finishedConns runs the benchmark capture through one table and keeps a
// copy of every finished connection.
func finishedConns(b *testing.B) []reassembly.Conn {
	var conns []reassembly.Conn
	err := synth.Finished(synth.BenchConfig, func(c *reassembly.Conn) {
		cc := *c
		cc.Trace = nil
		conns = append(conns, cc)
	})
	if err != nil {
		b.Fatal(err)
	}
	return conns
}

var resultSink classifier.Result

// BenchmarkSynthClassify classifies finished connections of the synthetic
// mix (Zeek conn_state and history included); one op is one connection.
func BenchmarkSynthClassify(b *testing.B) {
	conns := finishedConns(b)
	cls := classifier.New(classifier.DefaultConfig())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resultSink = cls.Classify(&conns[i%len(conns)])
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "conns/s")
	}
}
