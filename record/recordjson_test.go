package record_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/record"
)

// checkAppendJSON fails t unless AppendJSON gives exactly json.Marshal's
// bytes for r, both into an empty buffer and appended after a prefix.
func checkAppendJSON(t testing.TB, r *record.Record) {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if got := r.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON mismatch\n got: %s\nwant: %s", got, want)
	}
	prefix := []byte("prefix")
	if got := r.AppendJSON(prefix); !bytes.Equal(got[len(prefix):], want) || string(got[:len(prefix)]) != "prefix" {
		t.Fatalf("AppendJSON after prefix mismatch\n got: %s\nwant: prefix%s", got, want)
	}
}

func captureRecords(t testing.TB) []record.Record {
	t.Helper()
	names, err := filepath.Glob("../testdata/scenarios/*.pcap")
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, "../testdata/sample.pcap")
	if len(names) < 2 {
		t.Fatalf("no captures found")
	}
	var recs []record.Record
	for _, n := range names {
		_, err := offline.Run(context.Background(), []string{n}, offline.Options{Workers: 1}, func(r *record.Record) {
			recs = append(recs, *r)
		})
		if err != nil {
			t.Logf("%s: %v", n, err)
		}
	}
	return recs
}

// TestAppendJSONCaptures compares AppendJSON with json.Marshal on every
// record of every scenario capture and the sample capture.
func TestAppendJSONCaptures(t *testing.T) {
	recs := captureRecords(t)
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	for i := range recs {
		checkAppendJSON(t, &recs[i])
	}
	t.Logf("%d records byte-identical", len(recs))
}

// TestJSONWriterMatchesEncoder checks JSONWriter output against what
// json.Encoder wrote before.
func TestJSONWriterMatchesEncoder(t *testing.T) {
	recs := captureRecords(t)
	recs = append(recs, edgeRecords()...)
	var got, want bytes.Buffer
	jw := exporter.NewJSONWriter(&got)
	enc := json.NewEncoder(&want)
	for i := range recs {
		if err := jw.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := jw.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("JSONWriter output differs from json.Encoder")
	}
}

var edgeFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.5, 1e-6, 9.99e-7, 1e-7, 1.5e-7, 1e-9, 1.234e-10,
	1e-100, 5e-324, math.SmallestNonzeroFloat64, 0.000123, 123.456, 1e20, 999999999999999999999,
	1e21, 1.5e21, 1e22, 1e100, math.MaxFloat64, 0.1 + 0.2, 1.0 / 3, 12345678.9,
	-1e-7, -1e21, 2.5e-5, 4.2e-308,
}

func edgeRecords() []record.Record {
	base := record.Record{
		ID:        1,
		Client:    netip.MustParseAddrPort("192.0.2.1:40000"),
		Server:    netip.MustParseAddrPort("198.51.100.2:443"),
		Family:    "ipv4",
		VLAN:      []uint16{},
		Reason:    classifier.Code("AN"),
		FirstSeen: time.Unix(1700000000, 123456789).UTC(),
		LastSeen:  time.Unix(1700000001, 0).UTC(),
		WScale:    record.Pair[int8]{Client: -1, Server: 14},
	}
	var out []record.Record
	add := func(f func(r *record.Record)) {
		r := base
		f(&r)
		out = append(out, r)
	}
	add(func(r *record.Record) {})
	add(func(r *record.Record) { *r = record.Record{} }) // all zero: zero times, zero AddrPorts, nil VLAN
	add(func(r *record.Record) { r.VLAN = nil })
	add(func(r *record.Record) { r.VLAN = []uint16{100} })
	add(func(r *record.Record) { r.VLAN = []uint16{100, 20, 0, 65535} })
	add(func(r *record.Record) { r.Tunnel = []record.TunnelHop{} })
	add(func(r *record.Record) {
		r.Tunnel = []record.TunnelHop{
			{Type: "erspan2", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), IDName: "session", ID: 1023},
			{Type: "vxlan", Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), IDName: "vni", ID: 16777215},
			{Type: "ipip", Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")},
			{Type: "gre"}, // zero addresses
		}
	})
	add(func(r *record.Record) {
		r.Client = netip.MustParseAddrPort("[2001:db8::1]:1")
		r.Server = netip.MustParseAddrPort("[::ffff:10.0.0.1]:65535")
		r.Family = "ipv6"
	})
	add(func(r *record.Record) {
		r.Client = netip.MustParseAddrPort("[fe80::1%eth0]:22")
		r.Server = netip.AddrPortFrom(netip.MustParseAddr("fe80::2").WithZone(`we<ird>&"\zone`+"\x01\xff\u2028"), 80)
	})
	add(func(r *record.Record) {
		r.Client = netip.AddrPortFrom(netip.MustParseAddr("::ffff:1.2.3.4").WithZone("z"), 9)
	})
	add(func(r *record.Record) { r.Client = netip.AddrPortFrom(netip.IPv4Unspecified(), 0) })
	add(func(r *record.Record) { r.SetRisk(classifier.RiskRetransmitting, 1700000000123456789) })
	add(func(r *record.Record) { r.SetRisk(classifier.RiskSYNUnanswered, 0) })
	add(func(r *record.Record) {
		r.Interface = "<a href=\"x\">&amp;</a>\\ \b\f\n\r\t\x00\x1f\x7f é 日本 \u2028\u2029 \xff\xfe \xe2\x82"
		r.History = "ShADadFf<>&"
		r.ConnState = "S0\u2029"
		r.End = "capture_end"
		r.Local = "client"
		r.Actor = "\x00"
	})
	add(func(r *record.Record) {
		r.FirstSeen = time.Time{}
		r.LastSeen = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	})
	add(func(r *record.Record) {
		r.FirstSeen = time.Date(2024, 2, 29, 1, 2, 3, 100, time.FixedZone("X", -(9*3600+30*60)))
		r.LastSeen = time.Date(2024, 2, 29, 1, 2, 3, 120000000, time.FixedZone("Y", 14*3600))
	})
	add(func(r *record.Record) {
		r.FirstSeen = time.Unix(1700000000, 5).In(time.Local)
	})
	add(func(r *record.Record) {
		r.ID = math.MaxUint64
		r.Packets = record.Pair[uint64]{Client: math.MaxUint64, Server: 0}
		r.SYNs = record.Pair[uint32]{Client: math.MaxUint32, Server: 7}
		r.MSS = record.Pair[uint16]{Client: 65535, Server: 1460}
		r.WScale = record.Pair[int8]{Client: -128, Server: 127}
		r.Midstream = true
	})
	for i, f := range edgeFloats {
		g := edgeFloats[(i+7)%len(edgeFloats)]
		add(func(r *record.Record) {
			r.DurationS = f
			r.RTTms.Handshake = g
			r.RTTms.Smoothed = -f
			r.RTTms.Data = record.Pair[float64]{Client: f / 3, Server: g / 7}
		})
	}
	return out
}

func TestAppendJSONEdgeCases(t *testing.T) {
	for _, r := range edgeRecords() {
		checkAppendJSON(t, &r)
	}
}

// TestAppendJSONNoAllocs checks AppendJSON allocates nothing when the
// buffer is large enough.
func TestAppendJSONNoAllocs(t *testing.T) {
	recs := captureRecords(t)
	recs = append(recs, edgeRecords()[0])
	buf := make([]byte, 0, 8192)
	for i := range recs {
		r := &recs[i]
		if r.Client.Addr().Zone() != "" || r.Server.Addr().Zone() != "" {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { buf = r.AppendJSON(buf[:0]) }); n != 0 {
			t.Fatalf("record %d: %v allocs per AppendJSON, want 0", i, n)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add(uint64(1), []byte{192, 0, 2, 1}, uint16(40000), []byte{198, 51, 100, 2}, uint16(443), "", "ipv4", "sample.pcap", "AN", "ShADadFf", uint64(0), int64(1700000000123456789), int64(1e9), int32(0), math.Float64bits(1.5), math.Float64bits(1e-7), math.Float64bits(1e21), uint32(3), int8(7), true, 2)
	f.Add(uint64(0), []byte{}, uint16(0), []byte{}, uint16(0), "", "", "", "", "", uint64(0), int64(0), int64(0), int32(0), uint64(0), uint64(0), uint64(0), uint32(0), int8(0), false, -1)
	f.Add(uint64(5), []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(1), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}, uint16(65535), "eth<0>", "ipv6", "<&>\u2028\xff", "RST", "\x00\t\"\\", uint64(0x0064001400000001), int64(math.MinInt64), int64(5), int32(-34200), math.Float64bits(math.Copysign(0, -1)), math.Float64bits(9.99e-7), math.Float64bits(1e300), uint32(math.MaxUint32), int8(-128), false, 0)
	f.Fuzz(func(t *testing.T, id uint64, ca []byte, cp uint16, sa []byte, sp uint16, zone, family, iface, reason, history string,
		vlanBits uint64, firstNS, durNS int64, tzOffset int32, f1, f2, f3 uint64, u32 uint32, i8 int8, mid bool, nvlan int) {
		addr := func(b []byte, p uint16) netip.AddrPort {
			a, ok := netip.AddrFromSlice(b)
			if !ok {
				return netip.AddrPort{}
			}
			if a.Is6() && zone != "" {
				a = a.WithZone(zone)
			}
			return netip.AddrPortFrom(a, p)
		}
		var vlan []uint16
		if nvlan >= 0 {
			vlan = []uint16{}
			for i := 0; i < nvlan%5; i++ {
				vlan = append(vlan, uint16(vlanBits>>(16*i)))
			}
		}
		loc := time.UTC
		if tzOffset != 0 {
			loc = time.FixedZone("F", int(tzOffset%(30*3600)))
		}
		first := time.Unix(0, firstNS).In(loc)
		floats := [...]float64{math.Float64frombits(f1), math.Float64frombits(f2), math.Float64frombits(f3)}
		r := record.Record{
			ID: id, Client: addr(ca, cp), Server: addr(sa, sp), Family: family, VLAN: vlan,
			Interface: iface, Local: history, Reason: classifier.Code(reason), ReasonText: reason + iface,
			Sensor: iface + zone, UID: history, CommunityID: reason,
			Actor: zone, State: family, ConnState: history, History: history, Midstream: mid,
			FirstSeen: first, LastSeen: first.Add(time.Duration(durNS)), DurationS: floats[0],
			Packets:     record.Pair[uint64]{Client: id, Server: vlanBits},
			Bytes:       record.Pair[uint64]{Client: f1, Server: f2},
			DupAcks:     record.Pair[uint32]{Client: u32, Server: ^u32},
			Resets:      record.Pair[uint32]{Client: uint32(nvlan), Server: u32 / 3},
			MSS:         record.Pair[uint16]{Client: cp, Server: sp},
			WScale:      record.Pair[int8]{Client: i8, Server: -i8},
			End:         reason,
			RTTms:       record.RTT{Handshake: floats[1], Smoothed: floats[2], Data: record.Pair[float64]{Client: floats[0] * 1e-3, Server: floats[1] * 1e3}},
			AckedUnseen: record.Pair[uint32]{Client: uint32(f3), Server: uint32(f3 >> 32)},
		}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Skip() // NaN, Inf, or a time MarshalJSON rejects
		}
		if got := r.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON mismatch\n got: %s\nwant: %s", got, want)
		}
	})
}

func benchRecords(b *testing.B) []record.Record {
	recs := captureRecords(b)
	if len(recs) == 0 {
		b.Fatal("no records")
	}
	return recs
}

// BenchmarkAppendJSON encodes capture records with AppendJSON into a reused
// buffer; one op is one record.
func BenchmarkAppendJSON(b *testing.B) {
	recs := benchRecords(b)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = recs[i%len(recs)].AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkJSONMarshal is the encoding/json baseline for BenchmarkAppendJSON.
func BenchmarkJSONMarshal(b *testing.B) {
	recs := benchRecords(b)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = json.Marshal(&recs[i%len(recs)])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
