package snmp

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/config"
)

// get returns the values of names, failing on an error status.
func get(t *testing.T, h *Handler, names ...string) []gosnmp.SnmpPDU {
	t.Helper()
	resp := exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.GetRequest, oids(names...)...))
	if resp.Error != gosnmp.NoError {
		t.Fatalf("get %v: %v", names, resp.Error)
	}
	return resp.Variables
}

// TestTCPScalars: the TCP group reads the fake's counters by side and
// opens (fake.MetricsSnapshot).
func TestTCPScalars(t *testing.T) {
	h, _ := testAgent(t)
	const tcpG = ".1.3.6.1.2.1.6."
	want := []struct {
		oid string
		typ gosnmp.Asn1BER
		v   any
	}{
		{tcpG + "5.0", gosnmp.Counter32, uint(11)},   // active opens
		{tcpG + "6.0", gosnmp.Counter32, uint(6)},    // passive opens
		{tcpG + "7.0", gosnmp.Counter32, uint(2)},    // attempt fails
		{tcpG + "8.0", gosnmp.Counter32, uint(5)},    // established resets
		{tcpG + "9.0", gosnmp.Gauge32, uint(2)},      // ESTABLISHED + CLOSE_WAIT
		{tcpG + "10.0", gosnmp.Counter32, uint(0)},   // 2^33 segments in: Counter32 wraps
		{tcpG + "11.0", gosnmp.Counter32, uint(990)}, // 1000 out less 10 retransmissions
		{tcpG + "12.0", gosnmp.Counter32, uint(10)},
		{tcpG + "15.0", gosnmp.Counter32, uint(3)},
		{tcpG + "17.0", gosnmp.Counter64, uint64(1 << 33)},
		{tcpG + "18.0", gosnmp.Counter64, uint64(990)},
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = w.oid
	}
	for i, vb := range get(t, h, names...) {
		w := want[i]
		if vb.Type != w.typ || gosnmp.ToBigInt(vb.Value).Cmp(gosnmp.ToBigInt(w.v)) != 0 {
			t.Errorf("%s = %v %v, want %v %v", w.oid, vb.Type, vb.Value, w.typ, w.v)
		}
	}
}

// TestListenerTable: rows indexed by type, length-prefixed address and
// port, IPv4 first.
func TestListenerTable(t *testing.T) {
	h, _ := testAgent(t)
	got := walk(t, h, gosnmp.Version2c, "public", ".1.3.6.1.2.1.6.20", nil)
	want := []string{".1.3.6.1.2.1.6.20.1.4.1.4.10.0.0.1.80", ".1.3.6.1.2.1.6.20.1.4.2.16.253" + strings.Repeat(".0", 14) + ".1.22"}
	if len(got) != len(want) {
		t.Fatalf("tcpListenerTable: %v", got)
	}
	for i, vb := range got {
		if vb.Name != want[i] || vb.Type != gosnmp.Gauge32 || vb.Value.(uint) != 0 {
			t.Errorf("row %d: %s %v %v, want %s Gauge32 0", i, vb.Name, vb.Type, vb.Value, want[i])
		}
	}
}

// TestCaptureTable: one row per interface; the kernel's columns only for
// the interface that has kernel statistics.
func TestCaptureTable(t *testing.T) {
	h, _ := testAgent(t)
	got := map[string]gosnmp.SnmpPDU{}
	for _, vb := range walk(t, h, gosnmp.Version2c, "public", ".1.3.6.1.4.1.64399.1.1.6", nil) {
		got[strings.TrimPrefix(vb.Name, ".1.3.6.1.4.1.64399.1.1.6.1.")] = vb
	}
	lo := uint(0)
	if ifi, err := net.InterfaceByName("lo"); err == nil {
		lo = uint(ifi.Index)
	}
	want := map[string]any{
		"2.1": "eth1", "2.2": "lo", "3.2": lo, "4.1": uint(1), "4.2": uint(1),
		"5.1": uint64(5000), "5.2": uint64(7), "6.1": uint64(4900), "7.1": uint64(90), "8.1": uint64(10),
		"9.1": uint64(5100), "10.1": uint64(100), "11.1": uint64(2), "12.1": uint64(0), "13.1": uint(4), "13.2": uint(0),
	}
	for k, w := range want {
		vb, ok := got[k]
		v := vb.Value
		if b, isBytes := v.([]byte); isBytes {
			v = string(b)
		}
		if !ok || v != w {
			t.Errorf("column.row %s = %v (present %v), want %v", k, v, ok, w)
		}
	}
	for _, k := range []string{"9.2", "10.2", "11.2", "12.2"} {
		if vb, ok := got[k]; ok {
			t.Errorf("%s served for an interface without kernel statistics: %v", k, vb.Value)
		}
	}
	// 12 readable columns for eth1, 8 for lo.
	if len(got) != 12+8 {
		t.Errorf("%d cells: %v", len(got), got)
	}
}

// TestSysORTable: the modules served, then Info.Modules.
func TestSysORTable(t *testing.T) {
	h, err := New(config.SNMP{Communities: []config.Community{{Name: "public"}}}, newFake(),
		Info{Start: time.Now(), Modules: []Module{{MustOID("1.3.6.1.6.3.15"), "USM"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := walk(t, h, gosnmp.Version2c, "public", ".1.3.6.1.2.1.1.9", nil)
	if len(got) != 4*3 {
		t.Fatalf("sysORTable: %v", got)
	}
	ids := []string{".1.3.6.1.6.3.1", ".1.3.6.1.2.1.49", TCPTAPMIB.String(), ".1.3.6.1.6.3.15"}
	for i, id := range ids {
		if vb := got[i]; vb.Name != ".1.3.6.1.2.1.1.9.1.2."+string(rune('1'+i)) || vb.Value != id {
			t.Errorf("sysORID.%d: %s = %v, want %s", i+1, vb.Name, vb.Value, id)
		}
		if d := got[4+i].Value.([]byte); len(d) == 0 {
			t.Errorf("sysORDescr.%d empty", i+1)
		}
		if vb := got[8+i]; vb.Type != gosnmp.TimeTicks || vb.Value.(uint32) != 0 {
			t.Errorf("sysORUpTime.%d: %v %v", i+1, vb.Type, vb.Value)
		}
	}
	if vb := get(t, h, ".1.3.6.1.2.1.1.8.0")[0]; vb.Type != gosnmp.TimeTicks || vb.Value.(uint32) != 0 {
		t.Errorf("sysORLastChange: %v %v", vb.Type, vb.Value)
	}
}
