package capture_test

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/internal/synth"
)

var benchData = sync.OnceValues(func() ([]byte, error) {
	b, _, err := synth.Bytes(synth.BenchConfig)
	return b, err
})

// benchVXLAN is the synthetic capture with every frame wrapped in VXLAN.
var benchVXLAN = sync.OnceValues(func() ([]byte, error) {
	cfg := synth.BenchConfig
	cfg.VXLAN = true
	b, _, err := synth.Bytes(cfg)
	return b, err
})

// benchFrames returns the synthetic capture's frames, copied out of the
// reader's buffer.
func benchFrames(b *testing.B) []capture.Frame { return benchFramesOf(b, benchData) }

func benchFramesOf(b *testing.B, input func() ([]byte, error)) []capture.Frame {
	data, err := input()
	if err != nil {
		b.Fatal(err)
	}
	src, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	var frames []capture.Frame
	for {
		f, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		f.Data = bytes.Clone(f.Data)
		frames = append(frames, f)
	}
	return frames
}

func reportRate(b *testing.B, packets int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(packets)/s, "packets/s")
	}
}

// BenchmarkSynthRead is the pcap reader alone over the in-memory capture; one op
// is one frame.
func BenchmarkSynthRead(b *testing.B) {
	data, err := benchData()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)) / int64(synth.BenchConfig.Packets))
	b.ReportAllocs()
	var src capture.Source
	for i := 0; i < b.N; i++ {
		if src == nil {
			if src, err = capture.NewReader(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := src.Next(); err == io.EOF {
			src = nil
		} else if err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N)
}

// BenchmarkSynthDecode decodes frames already in memory; one op is one frame.
func BenchmarkSynthDecode(b *testing.B) { benchmarkDecode(b, benchFrames(b)) }

// BenchmarkSynthDecodeVXLAN decapsulates and decodes the VXLAN-wrapped
// frames.
func BenchmarkSynthDecodeVXLAN(b *testing.B) { benchmarkDecode(b, benchFramesOf(b, benchVXLAN)) }

func benchmarkDecode(b *testing.B, frames []capture.Frame) {
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var p capture.Packet
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !dec.Decode(&frames[i%len(frames)], &p) {
			b.Fatal("not a TCP segment")
		}
	}
	reportRate(b, b.N)
}

// BenchmarkSynthReadDecode is the offline reader's loop without the workers:
// read and decode; one op is one frame.
func BenchmarkSynthReadDecode(b *testing.B) {
	data, err := benchData()
	if err != nil {
		b.Fatal(err)
	}
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var p capture.Packet
	b.ReportAllocs()
	var src capture.Source
	for i := 0; i < b.N; i++ {
		if src == nil {
			if src, err = capture.NewReader(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		f, err := src.Next()
		if err == io.EOF {
			src = nil
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		dec.Decode(&f, &p)
	}
	reportRate(b, b.N)
}

var shardSink int

// BenchmarkSynthShard is the symmetric flow hash and the worker choice; one op
// is one packet.
func BenchmarkSynthShard(b *testing.B) {
	frames := benchFrames(b)
	dec := capture.NewDecoder(capture.DecoderConfig{})
	pkts := make([]capture.Packet, len(frames))
	for i := range frames {
		dec.Decode(&frames[i], &pkts[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	s := 0
	for i := 0; i < b.N; i++ {
		s += capture.Shard(capture.FlowHash(&pkts[i%len(pkts)]), 2)
	}
	shardSink = s
	reportRate(b, b.N)
}
