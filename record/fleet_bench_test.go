package record_test

import (
	"net/netip"
	"testing"

	"github.com/tcptap/tcptap/record"
)

func BenchmarkFleetStamp(b *testing.B) {
	r := record.Record{Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:443")}
	f := record.Fleet{Sensor: "s"}
	b.ReportAllocs()
	for b.Loop() {
		f.Stamp(&r)
	}
}
