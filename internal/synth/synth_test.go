package synth_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/internal/synth"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/record"
)

func generate(t testing.TB, cfg synth.Config) ([]byte, synth.Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := synth.Generate(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != st.Bytes {
		t.Fatalf("Stats.Bytes %d, wrote %d", st.Bytes, buf.Len())
	}
	return buf.Bytes(), st
}

func TestDeterministic(t *testing.T) {
	for _, mode := range []synth.Payload{synth.PayloadSmall, synth.PayloadNone, synth.PayloadMSS} {
		cfg := synth.Config{Connections: 300, Packets: 12_000, Seed: 7, Payload: mode}
		a, _ := generate(t, cfg)
		b, _ := generate(t, cfg)
		if !bytes.Equal(a, b) {
			t.Fatalf("%v: same config, different bytes", mode)
		}
		cfg.Seed = 8
		c, _ := generate(t, cfg)
		if bytes.Equal(a, c) {
			t.Fatalf("%v: seeds 7 and 8 gave the same bytes", mode)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []synth.Config{
		{Connections: 0, Packets: 100},
		{Connections: 10, Packets: 100},
		{Connections: 10, Packets: 1000, Payload: 9},
		{Connections: 10, Packets: 1000, DurationMicros: 1000},
	} {
		if _, err := synth.Generate(io.Discard, cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	for _, s := range []string{"none", "small", "mss"} {
		p, err := synth.ParsePayload(s)
		if err != nil || p.String() != s {
			t.Errorf("ParsePayload(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := synth.ParsePayload("big"); err == nil {
		t.Error("ParsePayload(big): no error")
	}
}

// TestMix checks the capture against the mix by decoding it with
// tcptap's own reader and decoder.
func TestMix(t *testing.T) {
	cfg := synth.Config{Connections: 2000, Packets: 80_000, Seed: 1}
	data, st := generate(t, cfg)
	if d := float64(st.Packets)/float64(cfg.Packets) - 1; d < -0.05 || d > 0.05 {
		t.Errorf("packets %d, target %d", st.Packets, cfg.Packets)
	}
	frac := func(n, of int) float64 { return float64(n) / float64(of) }
	if f := frac(st.IPv6, st.Connections); f < 0.07 || f > 0.13 {
		t.Errorf("IPv6 share %.3f", f)
	}
	if f := frac(st.VLAN, st.Connections); f < 0.07 || f > 0.13 {
		t.Errorf("VLAN share %.3f", f)
	}
	if f := frac(st.Retransmissions, st.Packets); f < 0.005 || f > 0.06 {
		t.Errorf("retransmission share %.4f", f)
	}
	if st.ZeroWindows == 0 || st.WindowProbes == 0 || st.Keepalives == 0 {
		t.Errorf("features missing: %+v", st)
	}
	if st.MaxOpen < 50 {
		t.Errorf("at most %d connections open at once: not interleaved", st.MaxOpen)
	}
	for k := synth.Kind(0); k < synth.NumKinds; k++ {
		if st.ByKind[k] == 0 {
			t.Errorf("no connection of kind %v", k)
		}
	}

	src, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var p capture.Packet
	var last int64
	n, small, v6, vlan := 0, 0, 0, 0
	for {
		f, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !dec.Decode(&f, &p) {
			t.Fatalf("frame %d: not a TCP segment (%+v)", n, dec.Stats)
		}
		if p.Timestamp < last {
			t.Fatalf("frame %d: time goes back", n)
		}
		last = p.Timestamp
		if p.PayloadLen < 600 {
			small++
		}
		if p.Family == capture.IPv6 {
			v6++
		}
		if p.VLANCount > 0 {
			vlan++
		}
		n++
	}
	if n != st.Packets {
		t.Fatalf("read %d packets, generated %d", n, st.Packets)
	}
	if last != st.Last*1000 {
		t.Errorf("last timestamp %d, stats say %d µs", last, st.Last)
	}
	if f := frac(small, n); f < 0.9 {
		t.Errorf("only %.2f of segments are small", f)
	}
	if v6 == 0 || vlan == 0 {
		t.Errorf("ipv6 packets %d, vlan packets %d", v6, vlan)
	}
}

// TestOfflineReasons runs a small capture through the offline pipeline and
// compares the reasons with what was generated.
func TestOfflineReasons(t *testing.T) {
	for _, mode := range []synth.Payload{synth.PayloadSmall, synth.PayloadNone, synth.PayloadMSS} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := synth.Config{Connections: 1500, Packets: 45_000, Seed: 3, Payload: mode}
			data, st := generate(t, cfg)
			path := filepath.Join(t.TempDir(), "synth.pcap")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			rs, err := offline.Run(context.Background(), []string{path}, offline.Options{Workers: 2}, func(r *record.Record) {
				got[string(r.Reason)]++
			})
			if err != nil {
				t.Fatal(err)
			}
			if int(rs.Segments) != st.Packets || int(rs.Table.Opened) != st.Connections {
				t.Errorf("segments %d connections %d, generated %d and %d", rs.Segments, rs.Table.Opened, st.Packets, st.Connections)
			}
			want := st.Expected()
			for code, n := range want {
				// Roughly: within 5 % of the generated count, or 3.
				if d := got[code] - n; d*d > max(9, n*n/400) {
					t.Errorf("%s: %d connections, generated %d", code, got[code], n)
				}
			}
			for code, n := range got {
				if _, ok := want[code]; !ok {
					t.Errorf("%s: %d connections, none generated", code, n)
				}
			}
			t.Logf("generated %v\ngot       %v", want, got)
		})
	}
}
