package snmp

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/internal/oracle"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// startTrapd runs snmptrapd on a free loopback port, printing each
// notification on one line: "TRAP " and its varbinds, tab-separated,
// octet strings in hex. It returns the address and the output.
func startTrapd(t *testing.T) (string, *peers.Output) {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(conf, []byte("disableAuthorization yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("snmptrapd", "-f", "-Lo", "-n", "-On", "-Ox", "-C", "-c", conf, "-F", "TRAP %v\n",
		"-p", filepath.Join(dir, "pid"), "-M", "/nonexistent", "-m", "", "udp:"+addr)
	cmd.Env = append(os.Environ(), "SNMPCONFPATH="+dir, "MIBS=")
	out := &peers.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), "NET-SNMP version"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("snmptrapd did not start:\n%s", out.String())
		}
	}
	return addr, out
}

// snmpValue is one varbind as net-snmp prints it with -On -Ox.
type snmpValue struct {
	typ string // "Counter32", "Hex-STRING", ...
	val string // the rest of the line; octet strings decoded
}

func (v snmpValue) uint(t *testing.T) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(v.val, 10, 64)
	if err != nil {
		t.Fatalf("%s %q: not a number", v.typ, v.val)
	}
	return n
}

// parseVarbinds parses "OID = TYPE: VALUE" items, as snmpbulkwalk prints
// them one per line (a long hex string continuing on the next lines) and
// snmptrapd's %v tab-separated.
func parseVarbinds(t *testing.T, items []string) map[string]snmpValue {
	t.Helper()
	out := map[string]snmpValue{}
	var last string
	for _, it := range items {
		it = strings.TrimRight(it, " \r")
		if it == "" {
			continue
		}
		if !strings.HasPrefix(it, ".") {
			if last == "" {
				t.Fatalf("unparsable output line %q", it)
			}
			v := out[last]
			b, err := hex.DecodeString(strings.ReplaceAll(it, " ", ""))
			if err != nil || v.typ != "Hex-STRING" {
				t.Fatalf("unparsable continuation %q of %s", it, last)
			}
			v.val += string(b)
			out[last] = v
			continue
		}
		oid, rest, ok := strings.Cut(it, " = ")
		if !ok {
			t.Fatalf("unparsable varbind %q", it)
		}
		typ, val, _ := strings.Cut(rest, ": ")
		switch typ {
		case "Hex-STRING":
			b, err := hex.DecodeString(strings.ReplaceAll(val, " ", ""))
			if err != nil {
				t.Fatalf("%s: bad hex %q", oid, val)
			}
			val = string(b)
		case `""`:
			typ, val = "Hex-STRING", ""
		}
		out[oid] = snmpValue{typ, val}
		last = oid
	}
	return out
}

// e2eNets are the local networks of the end-to-end test: in the sample,
// the IPv4 clients and the IPv6 servers are local, so IPv4 connections
// are active opens and IPv6 ones passive opens.
var e2eNets = []netip.Prefix{netip.MustParsePrefix("10.201.0.1/32"), netip.MustParsePrefix("fd00:201::2/128")}

func e2eLocal(a netip.Addr) bool {
	for _, p := range e2eNets {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// tuple is a connection by its local and remote ends.
type tuple struct{ local, remote netip.AddrPort }

func recordTuple(r *record.Record) tuple {
	if r.Local == "server" {
		return tuple{r.Server, r.Client}
	}
	return tuple{r.Client, r.Server}
}

// TestDaemonEndToEnd serves the agent over a real daemon replaying
// testdata/sample.pcap, walks it with net-snmp's snmpbulkwalk and checks
// TCP-MIB against tshark's view of the capture (opens, listeners, segments
// and resets by side) and against the daemon's records and open
// connections, TCPTAP-MIB's closes, cache and capture tables, and that
// snmptrapd receives an abnormal-close notification from the daemon's
// OnClose path for each abnormal close.
func TestDaemonEndToEnd(t *testing.T) {
	needTool(t, "snmpbulkwalk", "snmp")
	needTool(t, "snmptrapd", "snmptrapd")
	needTool(t, "tshark", "tshark")
	sample := filepath.Join(peers.ModuleRoot(t), "testdata", "sample.pcap")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	tsh, err := oracle.Run(ctx, "", sample)
	if err != nil {
		t.Fatal(err)
	}
	allFrames, err := exec.Command("tshark", "-n", "-r", sample, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatal(err)
	}

	trapAddr, traps := startTrapd(t)
	notifier, err := NewNotifier([]string{trapAddr}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	notifier.Rate = 1000 // the test checks delivery, not the rate limit

	var mu sync.Mutex
	var closed []record.Record
	d, err := daemon.New(daemon.Options{
		Interfaces: []string{"replay"},
		Workers:    1,
		Open: func(string, int, int) (daemon.Source, error) {
			src, err := capture.Open(sample)
			return &capture.Replay{Src: src}, err
		},
		Classifier: classifier.Config{LocalNets: e2eNets},
		// Connections still open at the sample's end stay open.
		Table:     reassembly.Config{IdleTimeout: 100 * 365 * 24 * time.Hour},
		CacheMode: cache.AbnormalClose,
		OnClose: func(rec *record.Record) {
			mu.Lock()
			closed = append(closed, *rec)
			mu.Unlock()
			notifier.AbnormalClose(rec)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(config.SNMP{Communities: []config.Community{{Name: "public"}}}, d, Info{Version: "e2e", Start: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(3)
	go func() { defer wg.Done(); _ = d.Run(ctx) }()
	go func() { defer wg.Done(); notifier.Run(ctx) }()
	go func() { defer wg.Done(); _ = Serve(ctx, conn, h) }()

	// The replay is done, and every connection that will end has: the
	// timers' dead check runs once a second.
	frames := func() uint64 { return d.Stats()[0].Frames }
	nClosed := func() int { mu.Lock(); defer mu.Unlock(); return len(closed) }
	wantFrames := uint64(len(outputLines(string(allFrames))))
	last, since := -1, time.Now()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if n := nClosed(); n != last {
			last, since = n, time.Now()
		}
		if frames() == wantFrames && time.Since(since) > 2500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay not settled: %d of %d frames, %d closes", frames(), wantFrames, nClosed())
		}
	}
	mu.Lock()
	ended := slices.Clone(closed)
	mu.Unlock()
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	open, err := d.OpenConnections(octx, MaxOpenRows)
	ocancel()
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) == 0 || len(open) == 0 {
		t.Fatalf("%d closed and %d open connections: the sample has both", len(ended), len(open))
	}

	walk := func(root string) map[string]snmpValue {
		t.Helper()
		cmd := exec.Command("snmpbulkwalk", "-On", "-Ox", "-m", "", "-M", "/nonexistent", "-t", "2", "-r", "1",
			"-v2c", "-c", "public", conn.LocalAddr().String(), root)
		cmd.Env = append(os.Environ(), "MIBS=", "SNMPCONFPATH=/nonexistent")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "not increasing") {
			t.Fatalf("snmpbulkwalk %s: %v\n%s", root, err, out)
		}
		return parseVarbinds(t, outputLines(string(out)))
	}
	tcpVals := walk(".1.3.6.1.2.1.6")
	tcptapVals := walk(TCPTAPMIB.Append(1).String())
	tcpScalar := func(id int) uint64 {
		t.Helper()
		v, ok := tcpVals[fmt.Sprintf(".1.3.6.1.2.1.6.%d.0", id)]
		if !ok {
			t.Fatalf("tcp.%d.0 not served", id)
		}
		return v.uint(t)
	}

	// Opens and listeners, from tshark's streams.
	var active, passive uint64
	listeners := map[netip.AddrPort]bool{}
	streams := map[oracle.Tuple]*oracle.Stream{}
	for i := range tsh.Streams {
		s := &tsh.Streams[i]
		if s.ClientFrom != oracle.ClientFromSYN && s.C2S.SYNACK > 0 {
			t.Fatalf("stream %d: a SYN-ACK without its SYN; the expectations below assume none", s.TCPStream)
		}
		streams[oracle.TupleOf(s.Client.AddrPort(), s.Server.AddrPort())] = s
		serverLocal := e2eLocal(s.Server.IP) && !e2eLocal(s.Client.IP)
		if s.ClientFrom == oracle.ClientFromSYN && !serverLocal {
			active++
		}
		if serverLocal && s.S2C.SYNACK > 0 {
			passive++
			listeners[s.Server.AddrPort()] = true
		}
	}
	if active == 0 || passive == 0 {
		t.Fatalf("tshark: %d active and %d passive opens; the test wants both", active, passive)
	}
	if got := tcpScalar(5); got != active {
		t.Errorf("tcpActiveOpens %d, tshark's streams opened by a local SYN %d", got, active)
	}
	if got := tcpScalar(6); got != passive {
		t.Errorf("tcpPassiveOpens %d, tshark's streams whose local server sent a SYN-ACK %d", got, passive)
	}
	var gotListeners []string
	for oid := range tcpVals {
		if rest, ok := strings.CutPrefix(oid, ".1.3.6.1.2.1.6.20.1.4."); ok {
			gotListeners = append(gotListeners, rest)
		}
	}
	var wantListeners []string
	for l := range listeners {
		wantListeners = append(wantListeners, strings.TrimPrefix(inetIndex(nil, l).String(), "."))
	}
	sort.Strings(gotListeners)
	sort.Strings(wantListeners)
	if !slices.Equal(gotListeners, wantListeners) {
		t.Errorf("tcpListenerTable %v, tshark's local SYN-ACK senders %v", gotListeners, wantListeners)
	}

	// Segments by side, counted as they are seen: from tshark's streams of
	// every connection, ended or still open, the local side the daemon's.
	var inSegs, outSegs, outRetrans, outRsts, attemptFails, estabResets uint64
	seen := map[*oracle.Stream]bool{}
	for _, r := range slices.Concat(ended, open) {
		tu := recordTuple(&r)
		s := streams[oracle.TupleOf(r.Client, r.Server)]
		if s == nil {
			t.Fatalf("%s-%s: no tshark stream", r.Client, r.Server)
		}
		if seen[s] {
			t.Fatalf("%s-%s: two connections of one tshark stream; the sums below assume none", r.Client, r.Server)
		}
		seen[s] = true
		out, in := s.C2S, s.S2C
		if s.Client.AddrPort() != tu.local {
			out, in = in, out
		}
		inSegs += in.Packets
		outSegs += out.Packets
		outRetrans += uint64(out.Retransmission)
		outRsts += uint64(out.RST)
	}
	if len(seen) != len(tsh.Streams) {
		t.Errorf("%d of tshark's %d streams are the daemon's connections", len(seen), len(tsh.Streams))
	}
	// Closes: attempts and aborts from the records of the ended ones.
	byReason := map[classifier.Code]uint64{}
	abnormal := map[string]int{} // "local remote reason"
	for i := range ended {
		r := &ended[i]
		byReason[r.Reason]++
		tu := recordTuple(r)
		if r.Reason.Abnormal() {
			abnormal[fmt.Sprintf("%s %s %s", tu.local, tu.remote, r.Reason)]++
		}
		s := streams[oracle.TupleOf(r.Client, r.Server)]
		switch r.Reason {
		case classifier.Refused, classifier.SYNTimeout:
			if (tu.local == s.Client.AddrPort() && s.C2S.SYN > 0) || (tu.local == s.Server.AddrPort() && s.S2C.SYNACK > 0) {
				attemptFails++
			}
		case classifier.AppAbnormalClose, classifier.SentReset, classifier.ReceivedReset,
			classifier.RetransmitTimeout, classifier.PersistTimeout, classifier.KeepaliveTimeout:
			estabResets++
		}
	}
	for _, c := range []struct {
		name     string
		id       int
		got, sum uint64
	}{
		{"tcpAttemptFails", 7, tcpScalar(7), attemptFails},
		{"tcpEstabResets", 8, tcpScalar(8), estabResets},
		{"tcpInSegs", 10, tcpScalar(10), inSegs},
		{"tcpHCInSegs", 17, tcpScalar(17), inSegs},
		{"tcpOutSegs", 11, tcpScalar(11), outSegs - outRetrans},
		{"tcpHCOutSegs", 18, tcpScalar(18), outSegs - outRetrans},
		{"tcpRetransSegs", 12, tcpScalar(12), outRetrans},
		{"tcpOutRsts", 15, tcpScalar(15), outRsts},
	} {
		if c.got != c.sum {
			t.Errorf("%s (tcp.%d) = %d, want %d", c.name, c.id, c.got, c.sum)
		}
	}
	if attemptFails == 0 || estabResets == 0 || outRsts == 0 {
		t.Errorf("weak check: %d attempt fails, %d established resets, %d local RSTs in the sample", attemptFails, estabResets, outRsts)
	}

	// The open connections: tcpConnectionTable, tcpConnTable, tcpCurrEstab.
	wantRows, wantRows4 := map[string]int{}, map[string]int{}
	estab := uint64(0)
	for i := range open {
		r := &open[i]
		tu := recordTuple(r)
		state := tcpStates[r.State]
		wantRows[fmt.Sprintf("%s %d", strings.TrimPrefix(inetIndex(inetIndex(nil, tu.local), tu.remote).String(), "."), state)]++
		if tu.local.Addr().Is4() {
			wantRows4[fmt.Sprintf("%s.%d.%s.%d %d", tu.local.Addr(), tu.local.Port(), tu.remote.Addr(), tu.remote.Port(), state)]++
		}
		if r.State == "ESTABLISHED" || r.State == "CLOSE_WAIT" {
			estab++
		}
		if s := streams[oracle.TupleOf(r.Client, r.Server)]; s == nil || s.C2S.RST+s.S2C.RST > 0 {
			t.Errorf("open %s-%s: tshark stream %v, reset or missing", r.Client, r.Server, s)
		}
	}
	gotRows, gotRows4 := map[string]int{}, map[string]int{}
	for oid, v := range tcpVals {
		if rest, ok := strings.CutPrefix(oid, ".1.3.6.1.2.1.6.19.1.7."); ok {
			gotRows[fmt.Sprintf("%s %d", rest, v.uint(t))]++
		}
		if rest, ok := strings.CutPrefix(oid, ".1.3.6.1.2.1.6.13.1.1."); ok {
			gotRows4[fmt.Sprintf("%s %d", rest, v.uint(t))]++
		}
	}
	if !maps.Equal(gotRows, wantRows) {
		t.Errorf("tcpConnectionState rows %v, the daemon's open connections %v", gotRows, wantRows)
	}
	if !maps.Equal(gotRows4, wantRows4) {
		t.Errorf("tcpConnState rows %v, the daemon's open IPv4 connections %v", gotRows4, wantRows4)
	}
	if got := tcpScalar(9); got != estab {
		t.Errorf("tcpCurrEstab %d, open connections ESTABLISHED or CLOSE_WAIT %d", got, estab)
	}

	// TCPTAP-MIB: closes and cached closes by reason.
	closedEntry := TCPTAPMIB.Append(1, 3, 1).String()
	for i, code := range classifier.Codes {
		col := func(c int) snmpValue { return tcptapVals[fmt.Sprintf("%s.%d.%d", closedEntry, c, i+1)] }
		if col(2).val != string(code) {
			t.Errorf("tcptapClosedCode.%d = %q, want %s", i+1, col(2).val, code)
		}
		if got := col(4).uint(t); got != byReason[code] {
			t.Errorf("tcptapClosedCount %s = %d, records %d", code, got, byReason[code])
		}
		wantCached := uint64(0)
		if code.Abnormal() {
			wantCached = byReason[code]
		}
		if got := col(5).uint(t); got != wantCached {
			t.Errorf("tcptapClosedCached %s = %d, want %d", code, got, wantCached)
		}
	}

	// The cache table lists the abnormal closes.
	cacheEntry := TCPTAPMIB.Append(1, 4, 1).String()
	gotCache := map[string]int{}
	for oid, v := range tcptapVals {
		rest, ok := strings.CutPrefix(oid, cacheEntry+".8.")
		if !ok {
			continue
		}
		cell := func(c int) snmpValue { return tcptapVals[fmt.Sprintf("%s.%d.%s", cacheEntry, c, rest)] }
		addr := func(c int) netip.Addr { a, _ := netip.AddrFromSlice([]byte(cell(c).val)); return a }
		l := netip.AddrPortFrom(addr(3), uint16(cell(4).uint(t)))
		rm := netip.AddrPortFrom(addr(5), uint16(cell(6).uint(t)))
		gotCache[fmt.Sprintf("%s %s %s", l, rm, v.val)]++
	}
	if len(abnormal) == 0 || !maps.Equal(gotCache, abnormal) {
		t.Errorf("tcptapCacheTable %v, abnormal closes %v", gotCache, abnormal)
	}

	// The capture table: one interface, no kernel statistics.
	capEntry := TCPTAPMIB.Append(1, 6, 1).String()
	if v := tcptapVals[capEntry+".2.1"]; v.val != "replay" {
		t.Errorf("tcptapCaptureName.1 = %q", v.val)
	}
	if got := tcptapVals[capEntry+".5.1"].uint(t); got != wantFrames {
		t.Errorf("tcptapCaptureFrames.1 = %d, tshark's frames %d", got, wantFrames)
	}
	if got := tcptapVals[capEntry+".6.1"].uint(t); got != tsh.Totals.Packets {
		t.Errorf("tcptapCaptureTcpSegments.1 = %d, tshark's TCP frames %d", got, tsh.Totals.Packets)
	}
	if _, ok := tcptapVals[capEntry+".10.1"]; ok {
		t.Error("tcptapCaptureKernelDrops served for a replay")
	}

	// snmptrapd got one tcptapAbnormalClose per abnormal close.
	want := 0
	for _, n := range abnormal {
		want += n
	}
	var gotTraps map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		gotTraps = map[string]int{}
		for _, l := range outputLines(traps.String()) {
			body, ok := strings.CutPrefix(l, "TRAP ")
			if !ok || !strings.Contains(body, "OID: "+abnormalCloseOID.String()) {
				continue
			}
			vb := parseVarbinds(t, strings.Split(body, "\t"))
			addr := func(o OID) netip.Addr { a, _ := netip.AddrFromSlice([]byte(vb[o.String()].val)); return a }
			l := netip.AddrPortFrom(addr(notifyLocalAddrOID), uint16(vb[notifyLocalPortOID.String()].uint(t)))
			rm := netip.AddrPortFrom(addr(notifyRemoteAddrOID), uint16(vb[notifyRemotePortOID.String()].uint(t)))
			gotTraps[fmt.Sprintf("%s %s %s", l, rm, vb[notifyReasonOID.String()].val)]++
		}
		n := 0
		for _, c := range gotTraps {
			n += c
		}
		if n >= want || time.Now().After(deadline) {
			break
		}
	}
	if !maps.Equal(gotTraps, abnormal) {
		t.Errorf("snmptrapd received %v, abnormal closes %v\n%s", gotTraps, abnormal, traps.String())
	}
	if !strings.Contains(traps.String(), "OID: "+coldStartOID.String()) {
		t.Error("snmptrapd received no coldStart")
	}
	if notifier.Suppressed() != 0 {
		t.Errorf("%d notifications suppressed", notifier.Suppressed())
	}
	t.Logf("%d frames, %d closed (%d abnormal) and %d open connections; %d active and %d passive opens, %d listeners, %d attempt fails, %d established resets",
		wantFrames, len(ended), want, len(open), active, passive, len(listeners), attemptFails, estabResets)
}

// outputLines splits a tool's output into lines.
func outputLines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
