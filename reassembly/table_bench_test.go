package reassembly_test

import (
	"bytes"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/reassembly"
)

// synthPackets are the benchmark capture's segments, decoded once, with
// their IP and TCP header bytes (what the flight recorder copies).
type synthPackets struct {
	pkts []capture.Packet
	hdrs [][]byte
	span int64 // added to the timestamps on each pass over the capture
}

var benchPackets = sync.OnceValues(func() (*synthPackets, error) {
	data, _, err := synth.Bytes(synth.BenchConfig)
	if err != nil {
		return nil, err
	}
	src, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	dec := capture.NewDecoder(capture.DecoderConfig{})
	sp := &synthPackets{}
	for {
		f, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		var p capture.Packet
		if dec.Decode(&f, &p) {
			sp.pkts = append(sp.pkts, p)
			sp.hdrs = append(sp.hdrs, bytes.Clone(p.HeaderBytes(f.Data, flightrec.MaxHeaderBytes)))
		}
	}
	// Each pass starts after every connection of the previous one went
	// idle, so passes do not collide.
	sp.span = sp.pkts[len(sp.pkts)-1].Timestamp - sp.pkts[0].Timestamp + int64(reassembly.DefaultIdleTimeout) + 1e9
	return sp, nil
})

func loadPackets(b *testing.B) *synthPackets {
	sp, err := benchPackets()
	if err != nil {
		b.Fatal(err)
	}
	return sp
}

func reportRate(b *testing.B, packets int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(packets)/s, "packets/s")
	}
}

// runTable feeds b.N packets (one op is one packet) through a table,
// replaying the capture with shifted timestamps as often as needed.
func runTable(b *testing.B, trace bool) {
	sp := loadPackets(b)
	finished := 0
	t := reassembly.NewTable(reassembly.DefaultConfig(), 0, 1, func(*reassembly.Conn) { finished++ })
	if trace {
		t.SetTrace(flightrec.Config{Enabled: true, MaxPacketNumber: flightrec.DefaultMaxPacketNumber},
			flightrec.NewQuota(flightrec.DefaultMemoryQuota))
	}
	n := len(sp.pkts)
	b.ReportAllocs()
	b.ResetTimer()
	var p capture.Packet
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < b.N; i++ {
		k := i % n
		p = sp.pkts[k]
		p.Timestamp += int64(i/n) * sp.span
		t.PacketWithHeaders(&p, sp.hdrs[k])
	}
	t.Flush(p.Timestamp)
	runtime.ReadMemStats(&m1)
	reportRate(b, b.N)
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "mallocs/packet")
	b.ReportMetric(float64(finished)/float64(b.N), "conns/op")
}

// BenchmarkSynthKeyOf is the table's connection key of a packet (the hash
// map lookup's key); one op is one packet.
func BenchmarkSynthKeyOf(b *testing.B) {
	sp := loadPackets(b)
	var k reassembly.Key
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k = reassembly.KeyOf(&sp.pkts[i%len(sp.pkts)])
	}
	_ = k
	reportRate(b, b.N)
}

// BenchmarkSynthTableUpdate is the state update (table lookup, analysis,
// Zeek history, finalize of finished connections) without the flight
// recorder; one op is one packet.
func BenchmarkSynthTableUpdate(b *testing.B) { runTable(b, false) }

// BenchmarkSynthTableTrace adds the flight recorder's record write per
// packet (trace on, default quota and ring size); one op is one packet.
func BenchmarkSynthTableTrace(b *testing.B) { runTable(b, true) }
