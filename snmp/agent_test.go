package snmp

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"
)

func TestOIDOrder(t *testing.T) {
	sorted := []string{"1", "1.3", "1.3.6.1.2.1.6.9.0", "1.3.6.1.2.1.6.10", "1.3.6.1.2.1.6.10.0", "1.3.6.1.2.1.6.19.1.7", "1.3.6.1.2.1.11", "1.3.6.1.4294967295", "2"}
	var os []OID
	for _, s := range sorted {
		os = append(os, MustOID(s))
	}
	for i := range os {
		for j := range os {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := os[i].Compare(os[j]); got != want {
				t.Errorf("%s vs %s: %d, want %d", os[i], os[j], got, want)
			}
		}
	}
	shuffled := append([]OID(nil), os...)
	sort.Slice(shuffled, func(i, j int) bool { return shuffled[i].String() > shuffled[j].String() })
	sort.Slice(shuffled, func(i, j int) bool { return shuffled[i].Compare(shuffled[j]) < 0 })
	for i := range os {
		if shuffled[i].Compare(os[i]) != 0 {
			t.Fatalf("sorted: %v", shuffled)
		}
	}
	for _, bad := range []string{"1..2", "1.x", "1.4294967296", strings.Repeat("1.", 128) + "1"} {
		if _, err := ParseOID(bad); err == nil {
			t.Errorf("ParseOID(%q) accepted", bad)
		}
	}
	if MustOID(".1.3.6").String() != ".1.3.6" {
		t.Error("String")
	}
}

func TestGet(t *testing.T) {
	h, _ := testAgent(t)
	resp := exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.GetRequest,
		oids(".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.1.1", ".1.3.6.1.2.1.99.0", ".1.3.6.1.2.1.6.17.0",
			".1.3.6.1.2.1.6.19.1.7.1.4.10.0.0.1.40000.1.4.10.0.0.2.80", ".1.3.6.1.2.1.6.19.1.7.1.4.10.0.0.1.40000.1.4.10.0.0.2.81",
			".1.3.6.1.2.1.6.19.1.1.1")...))
	if resp.Error != gosnmp.NoError {
		t.Fatalf("error %v", resp.Error)
	}
	v := resp.Variables
	if string(v[0].Value.([]byte)) != "tcptap test passive TCP tap analyzer" {
		t.Errorf("sysDescr %q", v[0].Value)
	}
	want := []gosnmp.Asn1BER{gosnmp.OctetString, gosnmp.NoSuchInstance, gosnmp.NoSuchObject, gosnmp.Counter64, gosnmp.Integer, gosnmp.NoSuchInstance, gosnmp.NoSuchObject}
	for i, w := range want {
		if v[i].Type != w {
			t.Errorf("varbind %d %s: type %v, want %v", i+1, v[i].Name, v[i].Type, w)
		}
	}
	if v[3].Value.(uint64) != 1<<33 || v[4].Value.(int) != 5 {
		t.Errorf("tcpHCInSegs %v, state %v", v[3].Value, v[4].Value)
	}

	// SNMPv1: noSuchName with the index; Counter64 does not exist.
	for _, c := range []struct {
		oid   string
		index uint8
	}{{".1.3.6.1.2.1.99.0", 2}, {".1.3.6.1.2.1.6.18.0", 2}} {
		resp = exchange(t, h, packet(gosnmp.Version1, "public", gosnmp.GetRequest, oids(".1.3.6.1.2.1.1.5.0", c.oid)...))
		if resp.Error != gosnmp.NoSuchName || resp.ErrorIndex != c.index || resp.Variables[1].Name != c.oid {
			t.Errorf("v1 get %s: %v index %d", c.oid, resp.Error, resp.ErrorIndex)
		}
	}
	resp = exchange(t, h, packet(gosnmp.Version1, "public", gosnmp.GetRequest, oids(".1.3.6.1.2.1.1.5.0")...))
	if resp.Error != gosnmp.NoError || string(resp.Variables[0].Value.([]byte)) != "tap1" {
		t.Errorf("v1 sysName: %v %v", resp.Error, resp.Variables)
	}
}

func TestTooBig(t *testing.T) {
	h, _ := testAgent(t)
	var vbs []gosnmp.SnmpPDU
	for i := 0; i < 60; i++ {
		vbs = append(vbs, null(".1.3.6.1.2.1.1.1"))
	}
	for _, typ := range []gosnmp.PDUType{gosnmp.GetNextRequest, gosnmp.GetRequest} {
		if typ == gosnmp.GetRequest {
			for i := range vbs {
				vbs[i].Name = ".1.3.6.1.2.1.1.1.0"
			}
		}
		resp := exchange(t, h, packet(gosnmp.Version2c, "public", typ, vbs...))
		if resp.Error != gosnmp.TooBig || resp.ErrorIndex != 0 || len(resp.Variables) != 0 {
			t.Errorf("%v: %v index %d, %d varbinds", typ, resp.Error, resp.ErrorIndex, len(resp.Variables))
		}
	}
}

func TestGetNext(t *testing.T) {
	h, _ := testAgent(t)
	resp := exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.GetNextRequest,
		oids(".1.3.6.1.2.1.1.10", ".1.3.6.1.2.1.6.9", ".1.3.6.1.2.1.6.13.1.1.10.0.0.1.40000", ".1.3.6.1.2.1.6.19.1.7.1.4.10.0.0.1.40000.1.4.10.0.0.2.80",
			".1.3.6.1.2.1.6.19.1.7.1.9", ".1.3", ".2.1")...))
	want := []string{".1.3.6.1.2.1.1.9" /* placeholder, see below */, ".1.3.6.1.2.1.6.9.0", ".1.3.6.1.2.1.6.13.1.1.10.0.0.1.40000.10.0.0.2.80",
		".1.3.6.1.2.1.6.19.1.7.1.4.10.0.0.1.40001.1.4.10.0.0.2.80", ".1.3.6.1.2.1.6.19.1.7.2.16.253.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.50000.2.16.253.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.443",
		".1.3.6.1.2.1.1.1.0", ".2.1"}
	want[0] = ".1.3.6.1.2.1.6.1.0" // after the system group comes tcp
	for i, w := range want {
		if resp.Variables[i].Name != w {
			t.Errorf("varbind %d: next is %s, want %s", i+1, resp.Variables[i].Name, w)
		}
	}
	if resp.Variables[6].Type != gosnmp.EndOfMibView || resp.Error != gosnmp.NoError {
		t.Errorf("past the end: %v, error %v", resp.Variables[6].Type, resp.Error)
	}
	resp = exchange(t, h, packet(gosnmp.Version1, "public", gosnmp.GetNextRequest, oids(".1.3.6.1.2.1.1.1.0", ".2.1")...))
	if resp.Error != gosnmp.NoSuchName || resp.ErrorIndex != 2 {
		t.Errorf("v1 past the end: %v index %d", resp.Error, resp.ErrorIndex)
	}
	// v1 skips Counter64: after tcpOutRsts comes the connection table.
	resp = exchange(t, h, packet(gosnmp.Version1, "public", gosnmp.GetNextRequest, oids(".1.3.6.1.2.1.6.15.0")...))
	if !strings.HasPrefix(resp.Variables[0].Name, ".1.3.6.1.2.1.6.19.1.7.") {
		t.Errorf("v1 next of tcpOutRsts.0: %s", resp.Variables[0].Name)
	}
}

// walk get-nexts from start until the end or leaving prefix, checking
// that OIDs strictly increase; between steps, change may alter the rows.
func walk(t *testing.T, h *Handler, v gosnmp.SnmpVersion, com, start string, change func(step int)) []gosnmp.SnmpPDU {
	t.Helper()
	var out []gosnmp.SnmpPDU
	prev := MustOID(start)
	for step := 0; ; step++ {
		if change != nil {
			change(step)
		}
		resp := exchange(t, h, packet(v, com, gosnmp.GetNextRequest, null(prev.String())))
		if resp.Error != gosnmp.NoError {
			if v == gosnmp.Version1 && resp.Error == gosnmp.NoSuchName {
				return out
			}
			t.Fatalf("walk: %v", resp.Error)
		}
		vb := resp.Variables[0]
		if vb.Type == gosnmp.EndOfMibView {
			return out
		}
		o := MustOID(vb.Name)
		if o.Compare(prev) <= 0 {
			t.Fatalf("walk: %s after %s", o, prev)
		}
		if !o.HasPrefix(MustOID(start)) {
			return out
		}
		out = append(out, vb)
		prev = o
		if step > 10000 {
			t.Fatal("walk does not end")
		}
	}
}

func TestWalk(t *testing.T) {
	h, f := testAgent(t)
	all := walk(t, h, gosnmp.Version2c, "public", ".1.3", nil)
	v1 := walk(t, h, gosnmp.Version1, "public", ".1.3", nil)
	t.Logf("v2c walk: %d objects, v1: %d", len(all), len(v1))
	counts := map[string]int{}
	for _, vb := range all {
		for _, p := range []string{".1.3.6.1.2.1.1.", ".1.3.6.1.2.1.6.13.", ".1.3.6.1.2.1.6.19.", ".1.3.6.1.4.1.64399.1.1.4."} {
			if strings.HasPrefix(vb.Name, p) {
				counts[p]++
			}
		}
	}
	// 8 system scalars and 3 sysORTable rows × 3 columns; 3 IPv4
	// connections × 5 columns; 4 connections × 2 columns; 2 cache
	// entries × 12 columns.
	want := map[string]int{".1.3.6.1.2.1.1.": 17, ".1.3.6.1.2.1.6.13.": 15, ".1.3.6.1.2.1.6.19.": 8, ".1.3.6.1.4.1.64399.1.1.4.": 24}
	for p, n := range want {
		if counts[p] != n {
			t.Errorf("%s: %d objects, want %d", p, counts[p], n)
		}
	}
	if len(v1) >= len(all) {
		t.Errorf("v1 walk does not skip Counter64")
	}

	// Rows come and go between requests: the walk still ends and
	// increases, never repeating a row.
	base := append([]string(nil), "10.0.0.1:40000", "10.0.0.1:40001")
	walk(t, h, gosnmp.Version2c, "public", ".1.3.6.1.2.1.6.19", func(step int) {
		switch step % 3 {
		case 0:
			f.setOpen(conn(base[0], "10.0.0.2:80", "ESTABLISHED"))
		case 1:
			f.setOpen(conn("10.0.0.3:1", "10.0.0.2:80", "ESTABLISHED"), conn("[fd00::9]:9", "[fd00::2]:80", "ESTABLISHED"))
		case 2:
			f.setOpen()
		}
	})
	f.setOpen()
	if got := walk(t, h, gosnmp.Version2c, "public", ".1.3.6.1.2.1.6.19", nil); len(got) != 0 {
		t.Errorf("empty table walks %d", len(got))
	}
}

func TestView(t *testing.T) {
	h, _ := testAgent(t)
	got := walk(t, h, gosnmp.Version2c, "tcponly", ".1.3", nil)
	for _, vb := range got {
		if !strings.HasPrefix(vb.Name, ".1.3.6.1.2.1.6.") || strings.HasPrefix(vb.Name, ".1.3.6.1.2.1.6.13.") {
			t.Fatalf("outside the view: %s", vb.Name)
		}
	}
	if len(got) == 0 {
		t.Fatal("empty")
	}
	resp := exchange(t, h, packet(gosnmp.Version2c, "tcponly", gosnmp.GetRequest, oids(".1.3.6.1.2.1.1.1.0")...))
	if resp.Variables[0].Type != gosnmp.NoSuchObject {
		t.Errorf("sysDescr outside the view: %v", resp.Variables[0].Type)
	}
}

func TestGetBulk(t *testing.T) {
	h, _ := testAgent(t)
	bulk := func(nonRep uint8, maxRep uint32, names ...string) *gosnmp.SnmpPacket {
		p := packet(gosnmp.Version2c, "public", gosnmp.GetBulkRequest, oids(names...)...)
		p.NonRepeaters, p.MaxRepetitions = nonRep, maxRep
		return exchange(t, h, p)
	}
	resp := bulk(1, 3, ".1.3.6.1.2.1.1.3", ".1.3.6.1.2.1.6.19.1.7", ".1.3.6.1.2.1.6.19.1.8")
	names := []string{".1.3.6.1.2.1.1.3.0"}
	if len(resp.Variables) != 1+2*3 || resp.Variables[0].Name != names[0] {
		t.Fatalf("bulk: %d varbinds, first %s", len(resp.Variables), resp.Variables[0].Name)
	}
	for i := 1; i < 7; i += 2 {
		if !strings.HasPrefix(resp.Variables[i].Name, ".1.3.6.1.2.1.6.19.1.7.") {
			t.Errorf("repeater 1 rep %d: %s", i/2, resp.Variables[i].Name)
		}
	}
	// The last state row is followed by the process column.
	if !strings.HasPrefix(resp.Variables[6].Name, ".1.3.6.1.2.1.6.19.1.8.") {
		t.Errorf("%s", resp.Variables[6].Name)
	}

	// Clamped to MaxBulkVarbinds, truncated to the message size.
	resp = bulk(0, 1000, ".1.3.6.1.2.1.6.17", ".1.3.6.1.2.1.6.18")
	if len(resp.Variables) == 0 || len(resp.Variables) > MaxBulkVarbinds || resp.Error != gosnmp.NoError {
		t.Errorf("clamp: %d varbinds, %v", len(resp.Variables), resp.Error)
	}
	h.MaxMessageSize = MinMaxMessageSize
	resp = bulk(0, 100, ".1.3")
	if resp.Error != gosnmp.NoError || len(resp.Variables) < 5 || len(resp.Variables) > 30 {
		t.Errorf("truncation: %v, %d varbinds", resp.Error, len(resp.Variables))
	}
	t.Logf("484-byte bulk: %d varbinds", len(resp.Variables))
	h.MaxMessageSize = 0

	// Past the end: endOfMibView, repeated no further.
	resp = bulk(1, 5, ".2.1", ".2.1.1")
	if len(resp.Variables) != 2 || resp.Variables[0].Type != gosnmp.EndOfMibView || resp.Variables[1].Type != gosnmp.EndOfMibView {
		t.Errorf("end: %v", resp.Variables)
	}
	// Non-repeaters beyond the varbinds.
	resp = bulk(9, 5, ".1.3.6.1.2.1.1.1")
	if len(resp.Variables) != 1 || resp.Variables[0].Name != ".1.3.6.1.2.1.1.1.0" {
		t.Errorf("non-repeaters > N: %v", resp.Variables)
	}
	// SNMPv1 has no get-bulk: dropped, counted.
	p := packet(gosnmp.Version1, "public", gosnmp.GetBulkRequest, oids(".1.3")...)
	before := h.Counters.InASNParseErrs.Load()
	if exchange(t, h, p) != nil || h.Counters.InASNParseErrs.Load() != before+1 {
		t.Error("v1 get-bulk answered")
	}
}

const (
	oidEnable = ".1.3.6.1.4.1.64399.1.1.1.1.0"
	oidMPN    = ".1.3.6.1.4.1.64399.1.1.1.2.0"
	oidQuota  = ".1.3.6.1.4.1.64399.1.1.1.3.0"
	oidMode   = ".1.3.6.1.4.1.64399.1.1.1.4.0"
)

func integer(oid string, n int) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Integer, Value: n}
}

func TestSet(t *testing.T) {
	h, f := testAgent(t)
	set := func(v gosnmp.SnmpVersion, com string, vbs ...gosnmp.SnmpPDU) (gosnmp.SNMPError, uint8) {
		resp := exchange(t, h, packet(v, com, gosnmp.SetRequest, vbs...))
		if len(resp.Variables) != len(vbs) {
			t.Fatalf("set answered %d varbinds for %d", len(resp.Variables), len(vbs))
		}
		return resp.Error, resp.ErrorIndex
	}
	check := func(what string, gotE gosnmp.SNMPError, gotI uint8, wantE gosnmp.SNMPError, wantI uint8) {
		t.Helper()
		if gotE != wantE || gotI != wantI {
			t.Errorf("%s: %v index %d, want %v index %d", what, gotE, gotI, wantE, wantI)
		}
	}
	e, i := set(gosnmp.Version2c, "public", integer(oidEnable, 1))
	check("read-only community", e, i, gosnmp.NoAccess, 1)
	e, i = set(gosnmp.Version1, "public", integer(oidEnable, 1))
	check("v1 read-only community", e, i, gosnmp.NoSuchName, 1)
	if f.Settings().Enabled || h.Counters.InBadCommunityUses.Load() != 2 {
		t.Fatal("a read-only community set something")
	}

	e, i = set(gosnmp.Version2c, "private", integer(oidEnable, 1), integer(oidMode, 2))
	check("enable", e, i, gosnmp.NoError, 0)
	if s := f.Settings(); !s.Enabled || s.CacheMode.String() != "all" {
		t.Fatalf("settings %+v", s)
	}
	e, i = set(gosnmp.Version2c, "private", integer(oidMode, 1), integer(oidMPN, 100))
	check("max-packet-number while enabled", e, i, gosnmp.InconsistentValue, 2)
	if f.Settings().CacheMode.String() != "all" {
		t.Error("a failed set committed its first varbind")
	}
	e, i = set(gosnmp.Version1, "private", integer(oidMPN, 100))
	check("v1 max-packet-number while enabled", e, i, gosnmp.BadValue, 1)
	// Disable, change and enable in one PDU.
	e, i = set(gosnmp.Version2c, "private", integer(oidMPN, 100), integer(oidEnable, 2),
		gosnmp.SnmpPDU{Name: oidQuota, Type: gosnmp.Gauge32, Value: uint(2048)})
	check("disable and change", e, i, gosnmp.NoError, 0)
	if s := f.Settings(); s.Enabled || s.MaxPacketNumber != 100 || s.MemoryQuota != 2<<20 {
		t.Fatalf("settings %+v", s)
	}
	e, i = set(gosnmp.Version2c, "private", integer(oidMPN, 200), integer(oidEnable, 1))
	check("change and enable", e, i, gosnmp.NoError, 0)
	if s := f.Settings(); !s.Enabled || s.MaxPacketNumber != 200 {
		t.Fatalf("settings %+v", s)
	}

	for _, c := range []struct {
		what   string
		vb     gosnmp.SnmpPDU
		v2, v1 gosnmp.SNMPError
	}{
		{"wrong type", gosnmp.SnmpPDU{Name: oidEnable, Type: gosnmp.OctetString, Value: []byte("yes")}, gosnmp.WrongType, gosnmp.BadValue},
		{"wrong value", integer(oidEnable, 3), gosnmp.WrongValue, gosnmp.BadValue},
		{"mode wrong value", integer(oidMode, 0), gosnmp.WrongValue, gosnmp.BadValue},
		{"quota wrong type", integer(oidQuota, 5), gosnmp.WrongType, gosnmp.BadValue},
		{"read-only object", gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.OctetString, Value: []byte("x")}, gosnmp.NotWritable, gosnmp.NoSuchName},
		{"no object", integer(".1.3.6.1.2.1.99.0", 1), gosnmp.NotWritable, gosnmp.NoSuchName},
		{"no instance", integer(".1.3.6.1.4.1.64399.1.1.1.1.1", 1), gosnmp.NoCreation, gosnmp.NoSuchName},
		{"deleteTCB", integer(".1.3.6.1.2.1.6.19.1.7.1.4.10.0.0.1.40000.1.4.10.0.0.2.80", 12), gosnmp.NotWritable, gosnmp.NoSuchName},
		{"deleteTCB v1 table", integer(".1.3.6.1.2.1.6.13.1.1.10.0.0.1.40000.10.0.0.2.80", 12), gosnmp.NotWritable, gosnmp.NoSuchName},
		{"other state", integer(".1.3.6.1.2.1.6.19.1.7.1.4.10.0.0.1.40000.1.4.10.0.0.2.80", 2), gosnmp.WrongValue, gosnmp.BadValue},
		{"no such connection", integer(".1.3.6.1.2.1.6.19.1.7.1.4.10.0.0.1.1.1.4.10.0.0.2.80", 12), gosnmp.NoCreation, gosnmp.NoSuchName},
	} {
		e, i = set(gosnmp.Version2c, "private", integer(oidMode, 1), c.vb)
		check(c.what, e, i, c.v2, 2)
		e, i = set(gosnmp.Version1, "private", integer(oidMode, 1), c.vb)
		check(c.what+" v1", e, i, c.v1, 2)
	}
	if f.Settings().CacheMode.String() != "all" {
		t.Error("a failed set committed")
	}
}

func TestDrops(t *testing.T) {
	h, _ := testAgent(t)
	if exchange(t, h, packet(gosnmp.Version2c, "nope", gosnmp.GetRequest, oids(".1.3.6.1.2.1.1.1.0")...)) != nil {
		t.Error("unknown community answered")
	}
	// local only answers 10.0.0.0/8.
	if exchange(t, h, packet(gosnmp.Version2c, "local", gosnmp.GetRequest, oids(".1.3.6.1.2.1.1.1.0")...)) != nil {
		t.Error("community answered a source outside its prefixes")
	}
	msg, _ := packet(gosnmp.Version2c, "local", gosnmp.GetRequest, oids(".1.3.6.1.2.1.1.1.0")...).MarshalMsg()
	if h.Handle(context.Background(), msg, netip.MustParseAddr("::ffff:10.1.2.3")) == nil {
		t.Error("community refused a source inside its prefixes")
	}
	if got := h.Counters.InBadCommunityNames.Load(); got != 2 {
		t.Errorf("snmpInBadCommunityNames %d", got)
	}
	for _, m := range [][]byte{nil, {0x30}, {0x30, 0x03, 0x02, 0x01, 0x01}, append(msg[:len(msg)-3:len(msg)-3], 0xff), []byte("GET / HTTP/1.0\r\n")} {
		if h.Handle(context.Background(), m, localhost) != nil {
			t.Errorf("answered %x", m)
		}
	}
	if got := h.Counters.InASNParseErrs.Load(); got != 5 {
		t.Errorf("snmpInASNParseErrs %d", got)
	}
	// A version that does not exist; an SNMPv3 message without its
	// header.
	for _, m := range [][]byte{{0x30, 0x05, 0x02, 0x01, 0x02, 0x30, 0x00}, {0x30, 0x05, 0x02, 0x01, 0x03, 0x30, 0x00}} {
		if h.Handle(context.Background(), m, localhost) != nil {
			t.Errorf("answered %x", m)
		}
	}
	if h.Counters.InBadVersions.Load() != 1 {
		t.Errorf("snmpInBadVersions %d", h.Counters.InBadVersions.Load())
	}
	resp := exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.GetRequest, oids(".1.3.6.1.2.1.11.4.0", ".1.3.6.1.2.1.11.6.0", ".1.3.6.1.2.1.11.3.0")...))
	if resp.Variables[0].Value.(uint) != 2 || resp.Variables[1].Value.(uint) != 6 || resp.Variables[2].Value.(uint) != 1 {
		t.Errorf("snmp group: %v", resp.Variables)
	}
}

// Authentication failures of SNMPv1/v2c: unknown communities and
// sources outside a community's, notified while snmpEnableAuthenTraps
// is enabled(1); a read-only community's set is not one.
func TestAuthenticationFailure(t *testing.T) {
	h, _ := testAgent(t)
	fails := 0
	h.OnAuthFailure = func() { fails++ }
	get := func(com string) { exchange(t, h, packet(gosnmp.Version2c, com, gosnmp.GetRequest, oids(sysDescr0)...)) }
	get("wrong")
	if fails != 0 {
		t.Error("notified while disabled")
	}
	const enableAuthenTraps = ".1.3.6.1.2.1.11.30.0"
	resp := exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.SetRequest, integer(enableAuthenTraps, 1)))
	if resp.Error != gosnmp.NoAccess || h.Counters.EnableAuthenTraps.Load() {
		t.Errorf("read-only set: %v", resp.Error)
	}
	resp = exchange(t, h, packet(gosnmp.Version2c, "private", gosnmp.SetRequest, integer(enableAuthenTraps, 1)))
	if resp.Error != gosnmp.NoError || !h.Counters.EnableAuthenTraps.Load() {
		t.Errorf("enable: %v", resp.Error)
	}
	get("wrong")
	get("local") // only from 10.0.0.0/8
	if resp = exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.SetRequest, integer(enableAuthenTraps, 2))); resp.Error != gosnmp.NoAccess {
		t.Errorf("read-only disable: %v", resp.Error)
	}
	if fails != 2 {
		t.Errorf("%d failures notified, want 2", fails)
	}
	resp = exchange(t, h, packet(gosnmp.Version1, "private", gosnmp.SetRequest, gosnmp.SnmpPDU{Name: enableAuthenTraps, Type: gosnmp.OctetString, Value: []byte("1")}))
	if resp.Error != gosnmp.BadValue {
		t.Errorf("v1 wrong type: %v", resp.Error)
	}
	resp = exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.GetRequest, oids(enableAuthenTraps)...))
	if resp.Variables[0].Value.(int) != 1 {
		t.Errorf("snmpEnableAuthenTraps %v", resp.Variables[0].Value)
	}
}

// FuzzHandle feeds the agent any message: it never panics and never
// answers more than its size limit. The seeds are SNMPv1, v2c and v3
// requests (discovery, and a request of each security level, which
// mutations can only keep past the digest check at noAuthNoPriv).
func FuzzHandle(f *testing.F) {
	h, _, _ := v3Agent(f)
	for _, u := range testUsers {
		user := h.USM.user(u.Name)
		f.Add(v3Msg{user: user, userName: u.Name, level: user.level(), pdu: gosnmp.GetNextRequest, vbs: oids(".1.3.6.1.2.1.6")}.to(h).encode(f))
	}
	f.Add(v3Msg{}.encode(f))
	f.Add(v3Msg{userName: "noauth", pdu: gosnmp.GetBulkRequest, vbs: oids(".1.3", ".1.3.6.1.6.3"), maxRep: 20}.to(h).encode(f))
	f.Add(v3Msg{userName: "noauth", pdu: gosnmp.SetRequest, vbs: []gosnmp.SnmpPDU{integer(oidMPN, 7)}, contextName: "c"}.to(h).encode(f))
	for _, p := range []*gosnmp.SnmpPacket{
		packet(gosnmp.Version2c, "public", gosnmp.GetRequest, oids(".1.3.6.1.2.1.1.1.0")...),
		packet(gosnmp.Version1, "public", gosnmp.GetNextRequest, oids(".1.3.6.1.2.1.6")...),
		{Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.GetBulkRequest, NonRepeaters: 1, MaxRepetitions: 50, Variables: oids(".1.3", ".1.3.6.1.4.1")},
		packet(gosnmp.Version2c, "private", gosnmp.SetRequest, integer(oidMPN, 7)),
	} {
		p.RequestID = 1
		b, err := p.MarshalMsg()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out := h.Handle(context.Background(), msg, localhost)
		if len(out) > h.maxSize() {
			t.Fatalf("%d-byte response", len(out))
		}
	})
}
