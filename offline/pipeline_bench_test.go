package offline_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

var pipelineData = sync.OnceValues(func() ([]byte, error) {
	b, _, err := synth.Bytes(synth.BenchConfig)
	return b, err
})

// pipelineVXLAN is the same capture with every frame wrapped in VXLAN.
var pipelineVXLAN = sync.OnceValues(func() ([]byte, error) {
	cfg := synth.BenchConfig
	cfg.VXLAN = true
	b, _, err := synth.Bytes(cfg)
	return b, err
})

// runPipeline is `tcptap read --trace --cache-mode all --format json` on
// the in-memory synthetic capture, output discarded: reader, decoder,
// batches, per-worker tables with the flight recorder, classifier, cache,
// records and JSON. One op is the whole capture (synth.BenchConfig).
func runPipeline(b *testing.B, workers int, trace bool) {
	runPipelineOn(b, pipelineData, workers, trace)
}

func runPipelineOn(b *testing.B, input func() ([]byte, error), workers int, trace bool) {
	data, err := input()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var segs uint64
	for i := 0; i < b.N; i++ {
		src, err := capture.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		opts := offline.Options{Workers: workers, Table: reassembly.DefaultConfig()}
		if trace {
			quota := flightrec.NewQuota(flightrec.DefaultMemoryQuota)
			opts.Trace = flightrec.Config{Enabled: true, MaxPacketNumber: flightrec.DefaultMaxPacketNumber}
			opts.Quota, opts.Cache = quota, cache.New(cache.All, quota)
		}
		jw := exporter.NewJSONWriter(io.Discard)
		st, err := offline.RunSources(context.Background(), []offline.Input{offline.NewInput("synth.pcap", src)}, opts,
			func(r *record.Record) {
				if err := jw.Write(r); err != nil {
					b.Fatal(err)
				}
			})
		if err != nil {
			b.Fatal(err)
		}
		if err := jw.Flush(); err != nil {
			b.Fatal(err)
		}
		segs += st.Segments
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(segs)/s, "packets/s")
	}
	b.ReportMetric(float64(segs)/float64(b.N), "packets/op")
}

func BenchmarkSynthPipeline1Worker(b *testing.B)        { runPipeline(b, 1, true) }
func BenchmarkSynthPipeline2Workers(b *testing.B)       { runPipeline(b, 2, true) }
func BenchmarkSynthPipeline1WorkerNoTrace(b *testing.B) { runPipeline(b, 1, false) }

// BenchmarkSynthPipelineVXLAN1Worker is BenchmarkSynthPipeline1Worker on
// the capture wrapped in VXLAN, as a cloud's traffic mirroring delivers it.
func BenchmarkSynthPipelineVXLAN1Worker(b *testing.B) { runPipelineOn(b, pipelineVXLAN, 1, true) }
