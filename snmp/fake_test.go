package snmp

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// fake is a Backend whose state tests change between requests.
type fake struct {
	mu        sync.Mutex
	s         config.TraceSettings
	open      []record.Record
	entries   []*cache.Entry
	closed    [metrics.NumReasons]uint64
	listeners []netip.AddrPort
}

func newFake() *fake {
	return &fake{s: config.TraceSettings{MaxPacketNumber: 500, MemoryQuota: 100 << 20}}
}

func (f *fake) Settings() config.TraceSettings { f.mu.Lock(); defer f.mu.Unlock(); return f.s }
func (f *fake) SetEnabled(on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s.Enabled = on
	return nil
}
func (f *fake) SetMaxPacketNumber(n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s.Enabled {
		return daemon.ErrTraceEnabled
	}
	f.s.MaxPacketNumber = n
	return nil
}
func (f *fake) SetMemoryQuota(n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s.Enabled {
		return daemon.ErrTraceEnabled
	}
	f.s.MemoryQuota = n
	return nil
}
func (f *fake) SetCacheMode(m cache.Mode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s.CacheMode = m
	return nil
}
func (f *fake) MetricsSnapshot() *metrics.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := metrics.Worker{Interface: "eth1", Active: len(f.open)}
	w.Table.Opened = uint64(len(f.open)) + 7
	w.Conns.Closed = f.closed
	// The client is local: client to server is the local side's.
	w.Table.Segments[reassembly.Client][reassembly.Local] = reassembly.SegmentCounts{Segments: 1000, Retransmissions: 10, RSTs: 3}
	w.Table.Segments[reassembly.Server][reassembly.Remote] = reassembly.SegmentCounts{Segments: 1 << 33, Retransmissions: 20, RSTs: 4}
	w.Conns.AttemptFails, w.Conns.EstabResets = 2, 5
	w.Opens = metrics.Opens{Active: 11, Passive: 6}
	w.Frames = 5000
	w.Decode = capture.DecodeStats{TCP: 4900, NonIP: 40, NonTCP: 50, TruncatedIP: 6, BadTCPOption: 4}
	w.Kernel, w.HasKernel = capture.LiveStats{Packets: 5100, Drops: 100, QueueFreezes: 2}, true
	// A second interface whose source has no kernel statistics.
	w2 := metrics.Worker{Interface: "lo", Frames: 7}
	return &metrics.Snapshot{Workers: []metrics.Worker{w, w2}}
}
func (f *fake) Information() *exporter.TraceInformation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &exporter.TraceInformation{Enabled: f.s.Enabled, ConnectionsTracked: 9, MemoryUsed: 4096,
		CachedByReason: map[classifier.Code]uint64{classifier.ReceivedReset: uint64(len(f.entries))}, Cached: uint64(len(f.entries))}
}
func (f *fake) OpenConnections(ctx context.Context, max int) ([]record.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		return nil, errors.New("canceled")
	}
	return append([]record.Record(nil), f.open[:min(max, len(f.open))]...), nil
}
func (f *fake) Listeners() []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.AddrPort(nil), f.listeners...)
}
func (f *fake) CacheEntries() []*cache.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*cache.Entry(nil), f.entries...)
}

func conn(client, server string, state string) record.Record {
	return record.Record{Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server),
		Family: familyOf(client), Local: "client", State: state}
}

func familyOf(s string) string {
	if netip.MustParseAddrPort(s).Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

func (f *fake) setOpen(recs ...record.Record) { f.mu.Lock(); f.open = recs; f.mu.Unlock() }

func (f *fake) addEntry(id uint64, client, server string, reason classifier.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := conn(client, server, "CLOSED")
	r.ID, r.Reason, r.Actor, r.Interface = id, reason, "server", "eth1"
	r.LastSeen = time.Date(2026, 7, 1, 20, 29, 8, 120e6, time.UTC)
	r.Packets = record.Pair[uint64]{Client: 23, Server: 21}
	r.Retransmissions = record.Pair[uint32]{Client: 14}
	r.VLAN = []uint16{10}
	f.entries = append(f.entries, &cache.Entry{Record: r})
}

// testAgent returns a handler over a fake with communities public (ro),
// private (rw), local (ro, only from 10.0.0.0/8).
func testAgent(t testing.TB) (*Handler, *fake) {
	t.Helper()
	f := newFake()
	f.setOpen(
		conn("10.0.0.1:40000", "10.0.0.2:80", "ESTABLISHED"),
		conn("10.0.0.1:40001", "10.0.0.2:80", "CLOSE_WAIT"),
		conn("[fd00::1]:50000", "[fd00::2]:443", "SYN_SENT"),
		conn("9.0.0.1:1", "10.0.0.2:22", "FIN_WAIT_1"),
	)
	f.addEntry(4, "10.0.0.1:40123", "10.0.0.2:23", classifier.RetransmitTimeout)
	f.addEntry(2, "[fd00::1]:1234", "[fd00::2]:443", classifier.ReceivedReset)
	f.listeners = []netip.AddrPort{netip.MustParseAddrPort("[fd00::1]:22"), netip.MustParseAddrPort("10.0.0.1:80")}
	cfg := config.SNMP{Communities: []config.Community{
		{Name: "public"}, {Name: "private", Access: "rw"}, {Name: "local", Sources: []string{"10.0.0.0/8"}},
		{Name: "tcponly", View: "tcp"},
	}, Views: []config.View{{Name: "tcp", Included: []string{"1.3.6.1.2.1.6"}, Excluded: []string{"1.3.6.1.2.1.6.13"}}}}
	h, err := New(cfg, f, Info{Version: "test", Name: "tap1", Start: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, f
}

var localhost = netip.MustParseAddr("127.0.0.1")

// exchange sends a request and decodes the answer (nil: no answer).
func exchange(t testing.TB, h *Handler, req *gosnmp.SnmpPacket) *gosnmp.SnmpPacket {
	t.Helper()
	if req.RequestID == 0 {
		req.RequestID = 42
	}
	msg, err := req.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	out := h.Handle(context.Background(), msg, localhost)
	if out == nil {
		return nil
	}
	if len(out) > h.maxSize() {
		t.Fatalf("response of %d bytes, more than %d", len(out), h.maxSize())
	}
	resp, err := decode(out)
	if err != nil {
		t.Fatalf("decode response: %v", err)
	}
	if resp.RequestID != req.RequestID || resp.PDUType != gosnmp.GetResponse {
		t.Fatalf("response id %d type %v", resp.RequestID, resp.PDUType)
	}
	return resp
}

func packet(v gosnmp.SnmpVersion, com string, typ gosnmp.PDUType, vbs ...gosnmp.SnmpPDU) *gosnmp.SnmpPacket {
	return &gosnmp.SnmpPacket{Version: v, Community: com, PDUType: typ, Variables: vbs}
}

func null(oid string) gosnmp.SnmpPDU { return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Null} }

func oids(names ...string) []gosnmp.SnmpPDU {
	out := make([]gosnmp.SnmpPDU, len(names))
	for i, n := range names {
		out[i] = null(n)
	}
	return out
}
