package exporter_test

import (
	"net/netip"
	"testing"

	"github.com/tcptap/tcptap/exporter"
)

func BenchmarkFleetStamp(b *testing.B) {
	r := exporter.Record{Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:443")}
	f := exporter.Fleet{Sensor: "s"}
	b.ReportAllocs()
	for b.Loop() {
		f.Stamp(&r)
	}
}
