//go:build linux

package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/tcptap/tcptap/internal/netlab"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// openLive opens a LiveSource inside ns and closes it at cleanup.
func openLive(t testing.TB, ns *netlab.Namespace, cfg LiveConfig) *LiveSource {
	t.Helper()
	var src *LiveSource
	if err := ns.Do(func() error {
		var err error
		src, err = OpenLive(cfg)
		return err
	}); err != nil {
		t.Fatalf("OpenLive in %s: %v", ns, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// livePacket is a decoded segment and the frame facts tests check.
type livePacket struct {
	Packet
	linkType LinkType
	stripped bool // the kernel stripped a VLAN tag off the frame
	capLen   int
}

// collector reads a LiveSource on its own goroutine, decoding every frame,
// until stopped: the reader loop of a capture worker.
type collector struct {
	src  *LiveSource
	dec  *Decoder
	stop atomic.Bool
	done chan struct{}

	mu       sync.Mutex
	pkts     []livePacket
	frames   int
	timeouts int
	err      error
}

func collect(src *LiveSource) *collector {
	c := &collector{src: src, dec: NewDecoder(DecoderConfig{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *collector) run() {
	defer close(c.done)
	var p Packet
	for !c.stop.Load() {
		f, err := c.src.Next()
		if errors.Is(err, ErrTimeout) {
			c.mu.Lock()
			c.timeouts++
			c.mu.Unlock()
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		ok := c.dec.Decode(&f, &p)
		c.mu.Lock()
		c.frames++
		if ok {
			_, stripped := c.src.LastVLAN()
			c.src.ApplyVLAN(&p)
			c.pkts = append(c.pkts, livePacket{Packet: p, linkType: f.LinkType, stripped: stripped, capLen: len(f.Data)})
		}
		c.mu.Unlock()
	}
}

// finish stops the reader, waits for it and returns what it collected.
func (c *collector) finish(t testing.TB) []livePacket {
	t.Helper()
	c.stop.Store(true)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not stop")
	}
	if c.err != nil {
		t.Fatalf("Next: %v", c.err)
	}
	return c.pkts
}

// waitFor waits until cond holds for the packets collected so far.
func (c *collector) waitFor(t testing.TB, what string, cond func([]livePacket) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ok := cond(c.pkts)
		err := c.err
		c.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %s: Next: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// transfer runs one TCP connection from client to a listener of server on
// laddr ("" for the server's own address of the family of network, "tcp4"
// or "tcp6"), sends n bytes and closes it from both sides, the client
// first. It returns the two endpoints.
func transfer(t testing.TB, client, server *netlab.Namespace, network, laddr string, n int) (clientEnd, serverEnd netip.AddrPort) {
	t.Helper()
	ln, err := server.ListenTCP(network, laddr, netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		m, err := io.Copy(io.Discard, c)
		if err == nil && m != int64(n) {
			err = fmt.Errorf("server received %d bytes, want %d", m, n)
		}
		got <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialTCP(ctx, network, ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// The server closed after reading EOF; wait for that FIN.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	return c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// ipCmd runs ip(8) in ns.
func ipCmd(t testing.TB, ns *netlab.Namespace, args ...string) {
	t.Helper()
	run(t, "ip", append([]string{"-n", ns.Name}, args...)...)
}

// segKey identifies a segment for comparisons between captures.
func segKey(src, dst netip.AddrPort, seq, ack uint32, flags uint8, n int) string {
	return fmt.Sprintf("%v>%v seq %d ack %d flags %#02x len %d", src, dst, seq, ack, flags, n)
}

func (p *livePacket) key() string {
	return segKey(p.SrcAddrPort(), p.DstAddrPort(), p.Seq, p.Ack, uint8(p.Flags), int(p.PayloadLen))
}

// connKey names a connection the same way in both directions.
func connKey(a, b netip.AddrPort) string {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return a.String() + " " + b.String()
}

// conn is a connection made by transfer.
type conn struct {
	client, server netip.AddrPort
	bytes          int
}

func (c conn) String() string { return c.client.String() + " > " + c.server.String() }

func (c conn) has(p *livePacket) bool {
	return connKey(p.SrcAddrPort(), p.DstAddrPort()) == connKey(c.client, c.server)
}

// of returns the packets of c.
func (c conn) of(pkts []livePacket) []livePacket {
	var out []livePacket
	for i := range pkts {
		if c.has(&pkts[i]) {
			out = append(out, pkts[i])
		}
	}
	return out
}

// closed reports whether pkts hold both FINs of c.
func (c conn) closed(pkts []livePacket) bool {
	var fins [2]bool
	for i := range pkts {
		p := &pkts[i]
		if c.has(p) && p.Flags.Has(FlagFIN) {
			fins[btoi(p.SrcAddrPort() == c.server)] = true
		}
	}
	return fins[0] && fins[1]
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkConn checks that pkts hold the whole of c exactly once: one SYN,
// one SYN-ACK, every byte of data, a FIN from each side, no duplicate.
func checkConn(t testing.TB, c conn, pkts []livePacket) {
	t.Helper()
	var syn, synAck, finClient, finServer int
	var isn, sent uint32
	seen := map[string]int{}
	for _, p := range c.of(pkts) {
		fromClient := p.SrcAddrPort() == c.client
		switch {
		case fromClient && p.Flags&(FlagSYN|FlagACK) == FlagSYN:
			syn++
			isn = p.Seq
		case !fromClient && p.Flags.Has(FlagSYN|FlagACK):
			synAck++
		}
		if p.Flags.Has(FlagFIN) {
			if fromClient {
				finClient++
			} else {
				finServer++
			}
		}
		if fromClient && p.PayloadLen > 0 {
			sent = max(sent, p.Seq+p.PayloadLen-isn-1)
		}
		k := fmt.Sprintf("%s id %d win %d", p.key(), p.IPID, p.Window)
		if seen[k]++; seen[k] == 2 {
			t.Errorf("%v: segment seen twice: %s", c, k)
		}
	}
	if syn != 1 || synAck != 1 || finClient != 1 || finServer != 1 || int(sent) != c.bytes {
		t.Errorf("%v: %d SYN, %d SYN-ACK, FINs %d/%d, %d data bytes; want 1, 1, 1/1, %d", c, syn, synAck, finClient, finServer, sent, c.bytes)
	}
}

// udpNoise sends UDP datagrams from the client to an open port of the
// server (and checks they arrive) and to a closed one (whose ICMP port
// unreachable errors come back), over IPv4 and IPv6.
func udpNoise(t testing.TB, client, server *netlab.Namespace, network string) {
	t.Helper()
	var pc net.PacketConn
	if err := server.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, netip.AddrPortFrom(server.Addr(network), 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	closed := netip.AddrPortFrom(server.Addr(network), 9)
	for _, dst := range []string{pc.LocalAddr().String(), closed.String()} {
		var c net.Conn
		if err := client.Do(func() error {
			var err error
			c, err = net.Dial(network, dst)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			c.Write([]byte("not tcp")) // errors (ECONNREFUSED after an ICMP error) are expected
			time.Sleep(time.Millisecond)
		}
		c.Close()
	}
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 100)
	for range 5 {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			t.Fatalf("%s noise did not arrive: %v", network, err)
		}
	}
}

// TestLiveCapture captures TCP transfers over IPv4 and IPv6 on the bridge
// port facing the client, with UDP and ICMP crossing it at the same time:
// every TCP segment tcpdump sees there arrives once, decoded, and nothing
// else passes the kernel filter.
func TestLiveCapture(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	dump := lab.StartCapture(t, "vc.pcap", netlab.CaptureOptions{})
	src := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort, Promiscuous: true})
	if src.LinkType() != LinkTypeEthernet {
		t.Fatalf("link type %d, want Ethernet", src.LinkType())
	}
	c := collect(src)
	var conns []conn
	for _, network := range []string{"tcp4", "tcp6"} {
		udpNoise(t, lab.Client, lab.Server, strings.Replace(network, "tcp", "udp", 1))
		cl, sv := transfer(t, lab.Client, lab.Server, network, "", 300_000)
		conns = append(conns, conn{cl, sv, 300_000})
	}
	udpNoise(t, lab.Client, lab.Server, "udp4")
	segs, err := netlab.ReadSegments(dump.Stop())
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the segments tcpdump saw", func(p []livePacket) bool { return len(p) >= len(segs) })
	time.Sleep(50 * time.Millisecond) // anything more would show now
	pkts := c.finish(t)

	want := map[string]int{}
	for _, s := range segs {
		want[segKey(s.Src, s.Dst, s.Seq, s.Ack, uint8(s.Flags), s.Len)]++
	}
	got := map[string]int{}
	for i := range pkts {
		got[pkts[i].key()]++
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("tcpdump saw %d × %s, LiveSource %d", n, k, got[k])
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			t.Errorf("LiveSource saw %d × %s, tcpdump none", n, k)
		}
	}
	for _, cn := range conns {
		checkConn(t, cn, pkts)
	}
	full := 0
	for i := range pkts {
		p := &pkts[i]
		if p.linkType != LinkTypeEthernet || p.stripped || p.VLANCount != 0 {
			t.Errorf("%s: link type %d, stripped tag %v, %d VLANs", p.key(), p.linkType, p.stripped, p.VLANCount)
		}
		if p.capLen > DefaultLiveSnaplen {
			t.Errorf("%s: %d bytes captured, snap length %d", p.key(), p.capLen, DefaultLiveSnaplen)
		}
		if p.WireLen != uint32(p.IPOffset)+p.IPLen && p.WireLen > 60 {
			t.Errorf("%s: wire length %d, want %d", p.key(), p.WireLen, uint32(p.IPOffset)+p.IPLen)
		}
		if p.capLen == DefaultLiveSnaplen {
			full++
		}
	}
	if s := c.dec.Stats; s.Frames != s.TCP {
		t.Errorf("frames other than TCP passed the filter: %+v", s)
	}
	st, err := src.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != uint64(c.frames) || st.Drops != 0 {
		t.Errorf("kernel counted %+v, read %d frames", st, c.frames)
	}
	t.Logf("%d frames, %d TCP segments (tcpdump %d), %d cut at the snap length; kernel %+v; %d poll timeouts",
		c.frames, len(pkts), len(segs), full, st, c.timeouts)
}

// injector puts hand-built Ethernet frames on the client's link through a
// packet socket, as if the client's NIC sent them. The test kernel has no
// 8021q module (no VLAN interfaces), so tagged traffic is made this way;
// the tap's receive path treats the frames like any other.
type injector struct {
	fd int
	to unix.SockaddrLinklayer
}

func newInjector(t testing.TB, ns *netlab.Namespace) *injector {
	t.Helper()
	in := &injector{fd: -1}
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(netlab.HostLink)
		if err != nil {
			return err
		}
		in.to.Ifindex = ifi.Index
		in.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(in.fd) })
	return in
}

func (in *injector) send(t testing.TB, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if err := unix.Sendto(in.fd, f, 0, &in.to); err != nil {
			t.Fatalf("injecting a frame: %v", err)
		}
	}
}

// taggedFrame returns an Ethernet frame with tags carrying an IPv4 (or
// IPv6) packet of protocol whose first transport bytes are seq: for TCP a
// 100-byte segment with that sequence number.
func taggedFrame(seq uint32, v6 bool, protocol byte, tags ...[2]uint16) []byte {
	var transport []byte
	switch protocol {
	case ipProtocolTCP:
		transport = tcpSegment(FlagACK|FlagPSH, nil, 100)
		binary.BigEndian.PutUint32(transport[4:], seq)
	default: // UDP, ICMP: 8-byte header and 100 bytes
		transport = make([]byte, 108)
		binary.BigEndian.PutUint32(transport, seq)
	}
	if v6 {
		return ethernet(etherTypeIPv6, ipv6Packet(protocol, nil, transport), tags...)
	}
	return ethernet(etherTypeIPv4, ipv4Packet(protocol, transport), tags...)
}

var (
	dot1q  = func(id uint16) [2]uint16 { return [2]uint16{etherTypeDot1Q, id} }
	dot1ad = func(id uint16) [2]uint16 { return [2]uint16{etherTypeDot1AD, id} }
)

// TestLiveVLAN sends tagged frames through the tap: the receive path strips
// the outer tag into the frame's metadata, LastVLAN reports it, ApplyVLAN
// puts it in front of the tags the decoder found in the frame, WireLen
// counts it; tagged UDP, ICMP and ARP do not pass the filter.
func TestLiveVLAN(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	in := newInjector(t, lab.Client)
	src := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort})
	c := collect(src)
	arp := ethernet(0x0806, make([]byte, 28), dot1q(100))
	type tcpCase struct {
		seq   uint32
		frame []byte
		vlans []uint16
	}
	// The kernel strips an outer 802.1Q or 802.1ad tag, not 0x9100.
	stripped := func(tc tcpCase) bool { return len(tc.vlans) > 0 && tc.seq != 6 }
	cases := []tcpCase{
		{1, taggedFrame(1, false, ipProtocolTCP), nil},
		{2, taggedFrame(2, false, ipProtocolTCP, dot1q(100)), []uint16{100}},
		{3, taggedFrame(3, true, ipProtocolTCP, dot1q(4094)), []uint16{4094}},
		{4, taggedFrame(4, false, ipProtocolTCP, dot1ad(200), dot1q(100)), []uint16{200, 100}},
		{5, taggedFrame(5, true, ipProtocolTCP, dot1ad(200), dot1q(100)), []uint16{200, 100}},
		{6, taggedFrame(6, false, ipProtocolTCP, [2]uint16{etherTypeQinQ9100, 7}, dot1q(8)), []uint16{7, 8}},
		// Three tags: two stay in the frame, which the filter allows;
		// the packet keeps the two outermost.
		{7, taggedFrame(7, false, ipProtocolTCP, dot1ad(300), dot1q(200), dot1q(100)), []uint16{300, 200}},
	}
	for _, tc := range cases {
		in.send(t, tc.frame)
		in.send(t, taggedFrame(tc.seq, false, 17, dot1q(100)), taggedFrame(tc.seq, true, 17, dot1ad(200), dot1q(100)),
			taggedFrame(tc.seq, false, 1, dot1q(100)), arp)
	}
	c.waitFor(t, "the tagged TCP frames", func(p []livePacket) bool { return len(p) >= len(cases) })
	time.Sleep(50 * time.Millisecond)
	pkts := c.finish(t)
	if len(pkts) != len(cases) {
		t.Fatalf("%d TCP segments, want %d", len(pkts), len(cases))
	}
	for i, tc := range cases {
		p := pkts[i]
		if p.Seq != tc.seq {
			t.Errorf("segment %d has seq %d, want %d", i, p.Seq, tc.seq)
			continue
		}
		if got := p.VLAN[:p.VLANCount]; !slices.Equal(got, tc.vlans) {
			t.Errorf("seq %d: VLANs %v, want %v", tc.seq, got, tc.vlans)
		}
		if p.stripped != stripped(tc) {
			t.Errorf("seq %d: tag stripped %v", tc.seq, p.stripped)
		}
		if p.WireLen != uint32(len(tc.frame)) {
			t.Errorf("seq %d: wire length %d, want %d", tc.seq, p.WireLen, len(tc.frame))
		}
	}
	if s := c.dec.Stats; s.Frames != s.TCP {
		t.Errorf("frames other than TCP passed the filter: %+v", s)
	}
	st, _ := src.Stats()
	t.Logf("%d tagged frames sent, %d passed the filter (kernel %+v)", len(cases)*5, c.frames, st)
}

// TestLiveNextDoesNotAllocate reads frames queued in the ring by a burst
// of injected traffic and counts the allocations of Next, Decode and
// ApplyVLAN per frame: none, also for frames whose tag the kernel stripped
// (read from the frame header, not from ancillary data).
func TestLiveNextDoesNotAllocate(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	in := newInjector(t, lab.Client)
	src := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort})
	const n = 2000
	dec := NewDecoder(DecoderConfig{})
	var p Packet
	read := func() {
		f, err := src.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if !dec.Decode(&f, &p) {
			t.Fatal("not a TCP segment")
		}
		src.ApplyVLAN(&p)
	}
	for _, tc := range []struct {
		name string
		tags [][2]uint16
	}{
		{"untagged", nil},
		{"vlan-100", [][2]uint16{dot1q(100)}},
		{"vlan-4000", [][2]uint16{dot1q(4000)}},
	} {
		// Queue n frames, then read them back without waiting.
		before, _ := src.Stats()
		for i := range n {
			in.send(t, taggedFrame(uint32(i), i%2 == 1, ipProtocolTCP, tc.tags...))
		}
		deadline := time.Now().Add(5 * time.Second)
		for st, _ := src.Stats(); st.Packets-before.Packets < n; st, _ = src.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: only %d of %d frames reached the socket", tc.name, st.Packets-before.Packets, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(2 * DefaultLiveBlockTimeout) // the last block is handed over
		allocs := testing.AllocsPerRun(n-1, read)
		t.Logf("%s: %v allocations per frame", tc.name, allocs)
		if allocs != 0 {
			t.Errorf("%s: %v allocations per frame, want 0", tc.name, allocs)
		}
		if tc.tags != nil && p.VLANCount != 1 {
			t.Errorf("%s: %d VLANs", tc.name, p.VLANCount)
		}
	}
}

// TestLiveBacklog queues frames in a ring of small blocks that nobody
// reads. Backlog counts them exactly, across blocks, once the kernel has
// handed over the last block. It drops by one with every Next, also on the
// Next that hands a block back, and is 0 when Next times out. Frames queued
// after that count from the block Next waits for. In a full ring every
// block counts (one whole turn), which is what the kernel delivered. Backlog
// does not allocate.
func TestLiveBacklog(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	in := newInjector(t, lab.Client)
	const (
		blockTimeout = 2 * time.Millisecond
		numBlocks    = 8
	)
	src := openLive(t, lab.Tap, LiveConfig{
		Interface: netlab.ClientPort,
		BlockSize: max(unix.Getpagesize(), ringFrameSize), NumBlocks: numBlocks,
		BlockTimeout: blockTimeout, PollTimeout: 20 * time.Millisecond,
	})
	dec := NewDecoder(DecoderConfig{})
	var p Packet
	var sent, read uint32 // frames injected and returned by Next; a frame's sequence number is its index
	queue := func(n int) {
		t.Helper()
		for range n {
			in.send(t, taggedFrame(sent, false, ipProtocolTCP))
			sent++
		}
	}
	// waitBacklog waits for Backlog to reach want, then a few block
	// timeouts more, and checks it is want exactly.
	waitBacklog := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for src.Backlog() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(5 * blockTimeout)
		if got := src.Backlog(); got != want {
			st, _ := src.Stats()
			t.Fatalf("%s: backlog %d, want %d (kernel %+v)", what, got, want, st)
		}
	}
	// next reads one frame: the next one sent (when none was dropped).
	next := func(what string, exact bool) {
		t.Helper()
		f, err := src.Next()
		if err != nil {
			t.Fatalf("%s: Next after %d frames: %v", what, read, err)
		}
		if !dec.Decode(&f, &p) {
			t.Fatalf("%s: frame %d is not a TCP segment", what, read)
		}
		if (exact && p.Seq != read) || p.Seq < read {
			t.Fatalf("%s: frame %d has sequence number %d", what, read, p.Seq)
		}
		read = p.Seq + 1
	}
	userBlocks := func() int {
		n := 0
		for b := range numBlocks {
			if atomic.LoadUint32(src.blockStatus(b))&tpStatusUser != 0 {
				n++
			}
		}
		return n
	}
	timesOut := func(what string) {
		t.Helper()
		if _, err := src.Next(); !errors.Is(err, ErrTimeout) {
			t.Fatalf("%s: Next returned %v, want ErrTimeout", what, err)
		}
		// Next handed the last block back and waits for the next one.
		if src.held || src.Backlog() != 0 {
			t.Fatalf("%s: after the timeout: block held %v, backlog %d", what, src.held, src.Backlog())
		}
	}

	if got := src.Backlog(); got != 0 {
		t.Fatalf("backlog %d before any traffic", got)
	}
	const n, k = 50, 20
	queue(n)
	waitBacklog("queued", n)
	blocks := userBlocks()
	if blocks < 2 {
		t.Errorf("%d frames fill %d blocks of %d bytes; the test wants several", n, blocks, src.blockSize)
	}
	for i := 1; i <= n; i++ {
		next("draining", true)
		if got := src.Backlog(); got != n-i {
			t.Fatalf("after %d of %d frames (block %d held %v, %d left in it): backlog %d, want %d",
				i, n, src.block, src.held, src.left, got, n-i)
		}
		if i == k {
			t.Logf("after %d of %d frames: backlog %d", k, n, n-k)
		}
	}
	timesOut("drained")

	// The reader's block is not held now: the count starts with it.
	const m = 30
	queue(m)
	waitBacklog("queued after a timeout", m)
	for i := 1; i <= k; i++ {
		next("after a timeout", true)
		if got := src.Backlog(); got != m-i {
			t.Fatalf("after %d of %d frames queued after a timeout: backlog %d, want %d", i, m, got, m-i)
		}
	}

	// Overflow the ring while holding a block: every block is the
	// reader's, the walk goes round once.
	before, err := src.Stats()
	if err != nil {
		t.Fatal(err)
	}
	const flood = 40 * numBlocks
	queue(flood)
	deadline := time.Now().Add(2 * time.Second)
	st := before
	for st.Packets-before.Packets < flood && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		st, _ = src.Stats()
	}
	time.Sleep(5 * blockTimeout)
	if st, err = src.Stats(); err != nil {
		t.Fatal(err)
	}
	if st.Packets-before.Packets != flood || st.Drops == 0 || userBlocks() != numBlocks {
		t.Fatalf("flooding %d frames: kernel %+v before, %+v after; %d of %d blocks handed over",
			flood, before, st, userBlocks(), numBlocks)
	}
	queued := int(st.Packets - st.Drops - uint64(n+k))
	if got := src.Backlog(); got != queued {
		t.Fatalf("full ring: backlog %d, kernel delivered %d frames not read (%+v)", got, queued, st)
	}
	var backlog int
	if allocs := testing.AllocsPerRun(100, func() { backlog = src.Backlog() }); allocs != 0 || backlog != queued {
		t.Errorf("Backlog: %v allocations, %d frames; want 0, %d", allocs, backlog, queued)
	}
	for i := 1; i <= queued; i++ {
		next("full ring", false)
		if got := src.Backlog(); got != queued-i {
			t.Fatalf("full ring, after %d of %d frames: backlog %d, want %d", i, queued, got, queued-i)
		}
	}
	timesOut("full ring drained")
	t.Logf("%d frames in %d blocks of %d bytes; full ring: %d frames queued (kernel %+v)",
		n, blocks, src.blockSize, queued, st)
}

// TestLiveFanout opens two sockets in one PACKET_FANOUT_HASH group and runs
// 20 connections through the tap: each connection, both directions, lands
// on one socket only, and both sockets get some.
func TestLiveFanout(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	const group = 4242 // fanout groups are per namespace; the tap's is the test's own
	var cs [2]*collector
	for i := range cs {
		cs[i] = collect(openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort, FanoutGroup: group}))
	}
	var conns []conn
	for i := range 20 {
		network := []string{"tcp4", "tcp6"}[i%2]
		cl, sv := transfer(t, lab.Client, lab.Server, network, "", 10_000)
		conns = append(conns, conn{cl, sv, 10_000})
	}
	all := func() []livePacket {
		var out []livePacket
		for _, c := range cs {
			c.mu.Lock()
			out = append(out, c.pkts...)
			c.mu.Unlock()
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, cn := range conns {
		for !cn.closed(all()) {
			if time.Now().After(deadline) {
				t.Fatalf("%v: FINs not captured", cn)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	var pkts [2][]livePacket
	for i, c := range cs {
		pkts[i] = c.finish(t)
	}
	var per [2]int
	for _, cn := range conns {
		a, b := len(cn.of(pkts[0])), len(cn.of(pkts[1]))
		switch {
		case a > 0 && b > 0:
			t.Errorf("%v: split, %d segments on socket 0, %d on socket 1", cn, a, b)
		case a > 0:
			per[0]++
			checkConn(t, cn, pkts[0])
		case b > 0:
			per[1]++
			checkConn(t, cn, pkts[1])
		default:
			t.Errorf("%v: not captured", cn)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("connections per socket %v: the group did not share the load", per)
	}
	t.Logf("connections per socket %v, segments per socket %d/%d", per, len(pkts[0]), len(pkts[1]))
}

// TestLiveLoopback captures on lo, where the kernel shows every packet
// twice (as the host sends it and as it receives it): each segment is
// reported once.
func TestLiveLoopback(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	src := openLive(t, lab.Client, LiveConfig{Interface: "lo"})
	if src.LinkType() != LinkTypeEthernet {
		t.Fatalf("link type %d, want Ethernet", src.LinkType())
	}
	c := collect(src)
	// A plain socket with the same filter but keeping outgoing frames
	// shows what the deduplication removes.
	var plain *afpacket.TPacket
	if err := lab.Client.Do(func() error {
		var err error
		plain, err = afpacket.NewTPacket(afpacket.OptInterface("lo"),
			afpacket.OptBlockTimeout(10*time.Millisecond), afpacket.OptPollTimeout(100*time.Millisecond))
		if err != nil {
			return err
		}
		prog, err := tcpFilter(LinkTypeEthernet, DefaultLiveSnaplen, false, nil)
		if err != nil {
			return err
		}
		raw, err := bpf.Assemble(prog)
		if err != nil {
			return err
		}
		return plain.SetBPF(raw)
	}); err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var conns []conn
	for _, laddr := range []string{"127.0.0.1:0", "[::1]:0"} {
		network := map[bool]string{true: "tcp6", false: "tcp4"}[strings.HasPrefix(laddr, "[")]
		cl, sv := transfer(t, lab.Client, lab.Client, network, laddr, 100_000)
		conns = append(conns, conn{cl, sv, 100_000})
	}
	c.waitFor(t, "both connections to close", func(p []livePacket) bool { return conns[0].closed(p) && conns[1].closed(p) })
	time.Sleep(50 * time.Millisecond)
	pkts := c.finish(t)
	for _, cn := range conns {
		checkConn(t, cn, pkts) // one SYN, one SYN-ACK, one FIN each way, no duplicate
	}
	st, _ := src.Stats()
	if st.Packets != uint64(c.frames) {
		t.Errorf("kernel passed %d frames, read %d", st.Packets, c.frames)
	}
	both := 0
	for {
		if _, _, err := plain.ZeroCopyReadPacketData(); err != nil {
			break
		}
		both++
	}
	if both != 2*len(pkts) {
		t.Errorf("a socket keeping outgoing frames saw %d, want twice %d", both, len(pkts))
	}
	t.Logf("%d segments in %d connections (%d frames with the outgoing copies); kernel %+v", len(pkts), len(conns), both, st)
}

// drain reads src until it has been quiet for two poll timeouts in a row
// and returns the number of frames read.
func drain(t testing.TB, src *LiveSource) int {
	t.Helper()
	frames := 0
	for quiet := 0; quiet < 2; {
		_, err := src.Next()
		switch {
		case errors.Is(err, ErrTimeout):
			quiet++
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			frames, quiet = frames+1, 0
		}
	}
	return frames
}

// TestLiveStats overflows a two-page ring that nobody reads during a 2 MB
// transfer, while a default ring on the same port is read as it fills:
// both count the same frames, the small one counts drops and queue freezes,
// and what each delivered (Packets - Drops) is what Next returns.
func TestLiveStats(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	page := unix.Getpagesize()
	small := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort, BlockSize: max(page, 4096), NumBlocks: 2, PollTimeout: 50 * time.Millisecond})
	big := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort, PollTimeout: 50 * time.Millisecond})
	c := collect(big)
	cl, sv := transfer(t, lab.Client, lab.Server, "tcp4", "", 2<<20)
	cn := conn{cl, sv, 2 << 20}
	c.waitFor(t, "the connection to close", cn.closed)
	time.Sleep(50 * time.Millisecond)
	c.finish(t)
	bigStats, err := big.Stats()
	if err != nil {
		t.Fatal(err)
	}
	before, err := small.Stats()
	if err != nil {
		t.Fatal(err)
	}
	read := drain(t, small)
	smallStats, err := small.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("default ring: %+v, read %d; 2-page ring: %+v, read %d", bigStats, c.frames, smallStats, read)
	if bigStats.Drops != 0 || bigStats.Packets != uint64(c.frames) {
		t.Errorf("default ring: %+v, read %d frames", bigStats, c.frames)
	}
	if smallStats != before {
		t.Errorf("counters moved while draining: %+v, then %+v", before, smallStats)
	}
	if smallStats.Packets != bigStats.Packets {
		t.Errorf("the rings counted %d and %d frames", smallStats.Packets, bigStats.Packets)
	}
	if smallStats.Drops == 0 || smallStats.QueueFreezes == 0 {
		t.Errorf("2-page ring: no drops or freezes: %+v", smallStats)
	}
	if uint64(read) != smallStats.Packets-smallStats.Drops {
		t.Errorf("2-page ring delivered %d frames, counters say %d", read, smallStats.Packets-smallStats.Drops)
	}
	if err := small.Close(); err != nil {
		t.Fatal(err)
	}
	if after, err := small.Stats(); err != nil || after != smallStats {
		t.Errorf("after Close: %+v, %v; want %+v", after, err, smallStats)
	}
}

// TestLiveShutdown stops a reader with a flag, as a capture worker does: a
// reader blocked in Next on a quiet link returns within the poll timeout,
// one busy with traffic at once; Close is then safe, and Next after Close
// reports io.EOF. Close also waits for a Next in progress.
func TestLiveShutdown(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	const poll = 50 * time.Millisecond
	reader := func(src *LiveSource, stop *atomic.Bool) (frames chan int) {
		frames = make(chan int, 1)
		go func() {
			n := 0
			for !stop.Load() {
				_, err := src.Next()
				if err == nil {
					n++
				} else if !errors.Is(err, ErrTimeout) {
					t.Errorf("Next: %v", err)
					break
				}
			}
			frames <- n
		}()
		return frames
	}
	for _, busy := range []bool{false, true} {
		src := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort, PollTimeout: poll})
		var stop atomic.Bool
		done := reader(src, &stop)
		var stopTraffic func()
		if busy {
			stopTraffic = stream(t, lab.Client, lab.Server)
		}
		time.Sleep(7 * poll / 2) // mid-poll on a quiet link
		start := time.Now()
		stop.Store(true)
		n := <-done
		took := time.Since(start)
		if stopTraffic != nil {
			stopTraffic()
		}
		if took > 2*poll {
			t.Errorf("busy %v: the reader took %v to stop, poll timeout %v", busy, took, poll)
		}
		if busy && n == 0 {
			t.Error("no frame read while traffic flowed")
		}
		// Closing takes an RCU grace period or two (packet_release
		// calls synchronize_net), not a poll timeout.
		start = time.Now()
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		closing := time.Since(start)
		if _, err := src.Next(); err != io.EOF {
			t.Errorf("Next after Close: %v, want io.EOF", err)
		}
		t.Logf("busy %v: stopped %v after the flag, %d frames read; Close took %v",
			busy, took.Round(time.Millisecond), n, closing.Round(time.Millisecond))
	}

	// The safety net: Close while a Next waits on a quiet link.
	src := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort, PollTimeout: poll})
	errs := make(chan error, 1)
	go func() {
		_, err := src.Next()
		errs <- err
	}()
	time.Sleep(poll / 5)
	if err := src.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Without the wait the Next would touch the unmapped ring and crash.
	select {
	case err := <-errs:
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("the Next that Close waited for returned %v", err)
		}
	case <-time.After(time.Second):
		t.Error("the Next in progress did not return")
	}
}

// stream sends data from client to server until the returned function is
// called; neither side allocates per write or read.
func stream(t testing.TB, client, server *netlab.Namespace) (stop func()) {
	t.Helper()
	ln, err := server.ListenTCP("tcp4", "", netlab.SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	c, err := client.DialTCP(context.Background(), "tcp4", ln.Addr().String(), netlab.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	var quit atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for !quit.Load() {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	return func() {
		quit.Store(true)
		c.Close()
		<-done
		if sc != nil {
			sc.Close()
		}
	}
}

// TestLiveLinkDown sets the capture interface down and up: the socket's
// error (ENETDOWN, which stays set until read) does not turn every later
// Next into a failure; Next times out while the link is down, captures
// again once it is up, and LinkDowns counts the event. Deleting the
// interface ends the source with an error.
func TestLiveLinkDown(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	const poll = 50 * time.Millisecond
	src := openLive(t, lab.Tap, LiveConfig{Interface: netlab.ClientPort, PollTimeout: poll})
	c := collect(src)
	ipCmd(t, lab.Tap, "link", "set", netlab.ClientPort, "down")
	time.Sleep(6 * poll)
	c.mu.Lock()
	timeouts, err := c.timeouts, c.err
	c.mu.Unlock()
	if err != nil || timeouts > 8 {
		t.Fatalf("link down: Next returned %v after %d timeouts in %v", err, timeouts, 6*poll)
	}
	ipCmd(t, lab.Tap, "link", "set", netlab.ClientPort, "up")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("ip", "-n", lab.Tap.Name, "-d", "-o", "link", "show", netlab.ClientPort).CombinedOutput()
		if strings.Contains(string(out), "state forwarding") && strings.Contains(string(out), "LOWER_UP") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge port not forwarding again: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cl, sv := transfer(t, lab.Client, lab.Server, "tcp4", "", 10_000)
	cn := conn{cl, sv, 10_000}
	c.waitFor(t, "the connection after the link came back", cn.closed)
	st, _ := src.Stats()
	if st.LinkDowns != 1 {
		t.Errorf("LinkDowns %d, want 1", st.LinkDowns)
	}
	ipCmd(t, lab.Tap, "link", "del", netlab.ClientPort)
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not fail after the interface was deleted")
	}
	if c.err == nil || errors.Is(c.err, ErrTimeout) || !strings.Contains(c.err.Error(), "removed") {
		t.Errorf("after deleting the interface: %v", c.err)
	}
	checkConn(t, cn, c.pkts)
	t.Logf("link down: %d timeouts in %v; kernel %+v; after deletion: %v", timeouts, 6*poll, st, c.err)
}

// TestLiveRawIP captures on a tun device, which has no link-layer header:
// the source reads it from the IP header on (SOCK_DGRAM) and yields
// LinkTypeRaw frames; outgoing SYNs over IPv4 and IPv6 and an incoming
// segment pass the filter, UDP and whatever ICMPv6 the host sends do not.
func TestLiveRawIP(t *testing.T) {
	lab := netlab.New(t, netlab.Options{})
	const dev = "tt0"
	var tun *os.File
	if err := lab.Client.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(dev)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		tun = os.NewFile(uintptr(fd), "/dev/net/tun")
		return nil
	}); err != nil {
		t.Skipf("no tun device: %v", err)
	}
	defer tun.Close()
	ipCmd(t, lab.Client, "addr", "add", "10.77.0.1/24", "dev", dev)
	ipCmd(t, lab.Client, "addr", "add", "fd00:77::1/64", "dev", dev, "nodad")
	ipCmd(t, lab.Client, "link", "set", dev, "up")
	src := openLive(t, lab.Client, LiveConfig{Interface: dev})
	if src.LinkType() != LinkTypeRaw {
		t.Fatalf("link type %d, want raw IP (%d)", src.LinkType(), LinkTypeRaw)
	}
	c := collect(src)
	for _, dst := range []string{"10.77.0.2:80", "[fd00:77::2]:80"} {
		network := map[bool]string{true: "tcp6", false: "tcp4"}[strings.HasPrefix(dst, "[")]
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		if _, err := lab.Client.DialTCP(ctx, network, dst, netlab.DialOptions{}); err == nil {
			t.Fatalf("dial %s through a tun nobody answers succeeded", dst)
		}
		cancel()
		udp := strings.Replace(network, "tcp", "udp", 1)
		if err := lab.Client.Do(func() error {
			c, err := net.Dial(udp, strings.Replace(dst, ":80", ":9", 1))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("not tcp"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Incoming: what the tun's reader writes arrives on the device.
	for _, pkt := range [][]byte{ipv4Packet(ipProtocolTCP, tcpSegment(FlagRST, nil, 0)), ipv4Packet(17, make([]byte, 16))} {
		if _, err := tun.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor(t, "two SYNs and a RST", func(p []livePacket) bool { return len(p) >= 3 })
	time.Sleep(50 * time.Millisecond)
	pkts := c.finish(t)
	var syns, rsts int
	for i := range pkts {
		p := &pkts[i]
		if p.linkType != LinkTypeRaw || p.IPOffset != 0 {
			t.Errorf("%s: link type %d, IP header at %d", p.key(), p.linkType, p.IPOffset)
		}
		switch {
		case p.Flags == FlagSYN && p.DstPort == 80:
			syns++
		case p.Flags == FlagRST && p.SrcPort == testSrcPort:
			rsts++
		}
	}
	if syns != 2 || rsts != 1 {
		t.Errorf("%d SYNs and %d RSTs, want 2 and 1", syns, rsts)
	}
	if s := c.dec.Stats; s.Frames != s.TCP {
		t.Errorf("frames other than TCP passed the filter: %+v", s)
	}
	t.Logf("%d TCP segments on %s", len(pkts), dev)
}

// filterVM assembles the filter for linkType (without the loopback
// prefix, whose packet-type load the Go VM does not implement).
func filterVM(t testing.TB, linkType LinkType, snaplen uint32) *bpf.VM {
	t.Helper()
	prog, err := tcpFilter(linkType, snaplen, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatalf("assemble: %v", err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return vm
}

// TestTCPFilter runs the kernel filter in x/net/bpf's VM over hand-built
// frames.
func TestTCPFilter(t *testing.T) {
	const snaplen = 96
	tcp := tcpSegment(FlagSYN, synOptions, 0)
	data := tcpSegment(FlagACK, nil, 1000)
	udp := make([]byte, 8+20)
	icmp := []byte{8, 0, 0, 0, 0, 1, 0, 1}
	ip4tcp, ip6tcp := ipv4Packet(ipProtocolTCP, tcp), ipv6Packet(ipProtocolTCP, nil, tcp)
	ip4udp, ip6udp := ipv4Packet(17, udp), ipv6Packet(17, nil, udp)
	ip4icmp, icmp6 := ipv4Packet(1, icmp), ipv6Packet(58, nil, icmp)
	arp := make([]byte, 28)
	tcpFragment := cat(ipv4Header(ipProtocolTCP, nil, 64, 0x00b9), make([]byte, 64)) // offset 1480, no more
	udpFragment := cat(ipv4Header(17, nil, 64, 0x00b9), make([]byte, 64))
	ext := func(next byte, extensions []byte, transport []byte) []byte {
		return ipv6Packet(next, extensions, transport)
	}
	tests := []struct {
		name   string
		link   LinkType
		frame  []byte
		accept bool
	}{
		{"ipv4 tcp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4tcp), true},
		{"ipv6 tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ip6tcp), true},
		{"ipv4 tcp data", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolTCP, data)), true},
		{"vlan ipv4 tcp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4tcp, dot1q(100)), true},
		{"vlan ipv6 tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ip6tcp, dot1q(100)), true},
		{"qinq ipv4 tcp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4tcp, dot1ad(200), dot1q(100)), true},
		{"qinq ipv6 tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ip6tcp, dot1ad(200), dot1q(100)), true},
		{"0x9100 qinq tcp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4tcp, [2]uint16{etherTypeQinQ9100, 5}, dot1q(6)), true},
		{"ipv4 tcp later fragment", LinkTypeEthernet, ethernet(etherTypeIPv4, tcpFragment), true},
		{"ipv6 hop-by-hop, dstopts tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6HopByHop, cat(ipv6Extension(ipv6DestOptions, 0), ipv6Extension(ipProtocolTCP, 2)), tcp)), true},
		{"ipv6 routing tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6Routing, ipv6Extension(ipProtocolTCP, 1), tcp)), true},
		{"ipv6 fragment tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6Fragment, ipv6FragmentHeader(ipProtocolTCP, 0, true), tcp)), true},
		{"ipv6 later fragment tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6Fragment, ipv6FragmentHeader(ipProtocolTCP, 1448, false), make([]byte, 64))), true},
		{"ipv6 ah tcp", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6AH, ipv6AuthHeader(ipProtocolTCP, 4), tcp)), true},
		{"mpls (not examined)", LinkTypeEthernet, ethernet(etherTypeMPLSUnicast, cat(mpls(100), ip4udp)), true},

		{"ipv4 udp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4udp), false},
		{"ipv6 udp", LinkTypeEthernet, ethernet(etherTypeIPv6, ip6udp), false},
		{"ipv4 icmp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4icmp), false},
		{"icmpv6", LinkTypeEthernet, ethernet(etherTypeIPv6, icmp6), false},
		{"arp", LinkTypeEthernet, ethernet(0x0806, arp), false},
		{"vlan arp", LinkTypeEthernet, ethernet(0x0806, arp, dot1q(100)), false},
		{"vlan udp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4udp, dot1q(100)), false},
		{"vlan ipv6 udp", LinkTypeEthernet, ethernet(etherTypeIPv6, ip6udp, dot1q(100)), false},
		{"qinq udp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4udp, dot1ad(200), dot1q(100)), false},
		{"qinq icmp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4icmp, dot1ad(200), dot1q(100)), false},
		{"three tags tcp", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4tcp, dot1ad(3), dot1q(2), dot1q(1)), false},
		{"ipv4 udp later fragment", LinkTypeEthernet, ethernet(etherTypeIPv4, udpFragment), false},
		{"ipv6 fragment udp", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6Fragment, ipv6FragmentHeader(17, 0, true), udp)), false},
		{"ipv6 hop-by-hop icmpv6", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6HopByHop, ipv6Extension(58, 0), icmp)), false},
		{"ipv6 no next header", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(59, nil, nil)), false},
		{"ipv4 header cut", LinkTypeEthernet, ethernet(etherTypeIPv4, ip4tcp[:8])[:22], false},
		{"ipv6 extension cut", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6HopByHop, ipv6Extension(ipProtocolTCP, 0), nil))[:14+40], false},
		{"lldp", LinkTypeEthernet, ethernet(0x88cc, make([]byte, 40)), false},
		{"runt", LinkTypeEthernet, []byte{1, 2, 3}, false},

		// Tunnels pass unexamined inside; other UDP does not.
		{"gre", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolGRE, cat(greHeader(0, 0, etherTypeIPv4), ip4tcp))), true},
		{"ipv6 gre", LinkTypeEthernet, ethernet(etherTypeIPv6, ipv6Packet(ipProtocolGRE, nil, cat(greHeader(0, 0, etherTypeIPv4), ip4tcp))), true},
		{"ipip", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolIPv4, ip4tcp)), true},
		{"6in4", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolIPv6, ip6tcp)), true},
		{"4in6 after hop-by-hop", LinkTypeEthernet, ethernet(etherTypeIPv6, ext(ipv6HopByHop, ipv6Extension(ipProtocolIPv4, 0), ip4tcp)), true},
		{"vxlan", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolUDP, udpHeader(40000, PortVXLAN, cat(vxlanHeader(1), ethernet(etherTypeIPv4, ip4tcp))))), true},
		{"vxlan from its port", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolUDP, udpHeader(PortVXLAN, 4790, nil))), true},
		{"vlan ipv4 options geneve", LinkTypeEthernet, ethernet(etherTypeIPv4, cat(ipv4Header(ipProtocolUDP, make([]byte, 8), 8, 0), udpHeader(1, PortGeneve, nil)), dot1q(9)), true},
		{"ipv6 gtp-u", LinkTypeEthernet, ethernet(etherTypeIPv6, ipv6Packet(ipProtocolUDP, nil, udpHeader(PortGTPU, PortGTPU, nil))), true},
		{"gre in udp", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolUDP, udpHeader(1, PortGREUDP, nil))), true},
		{"pppoe session", LinkTypeEthernet, ethernet(etherTypePPPoESession, make([]byte, 30)), true},
		{"fabricpath", LinkTypeEthernet, ethernet(etherTypeFabricPath, make([]byte, 30)), true},
		{"802.3 snap", LinkTypeEthernet, ethernet(46, cat([]byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}, ip4tcp)), true},
		{"802.3 stp", LinkTypeEthernet, ethernet(38, cat([]byte{0x42, 0x42, 3}, make([]byte, 35))), false},
		{"udp dns", LinkTypeEthernet, ethernet(etherTypeIPv4, ipv4Packet(ipProtocolUDP, udpHeader(5353, 53, nil))), false},
		{"ipv6 udp dns", LinkTypeEthernet, ethernet(etherTypeIPv6, ipv6Packet(ipProtocolUDP, nil, udpHeader(5353, 53, nil))), false},
		{"raw gre", LinkTypeRaw, ipv4Packet(ipProtocolGRE, cat(greHeader(0, 0, etherTypeIPv4), ip4tcp)), true},

		{"raw ipv4 tcp", LinkTypeRaw, ip4tcp, true},
		{"raw ipv6 tcp", LinkTypeRaw, ip6tcp, true},
		{"raw ipv6 fragment tcp", LinkTypeRaw, ext(ipv6Fragment, ipv6FragmentHeader(ipProtocolTCP, 0, true), tcp), true},
		{"raw ipv4 udp", LinkTypeRaw, ip4udp, false},
		{"raw icmpv6", LinkTypeRaw, icmp6, false},
		{"raw not ip", LinkTypeRaw, arp, false},
		{"raw empty", LinkTypeRaw, nil, false},
	}
	vms := map[LinkType]*bpf.VM{
		LinkTypeEthernet: filterVM(t, LinkTypeEthernet, snaplen),
		LinkTypeRaw:      filterVM(t, LinkTypeRaw, snaplen),
	}
	for _, tc := range tests {
		n, err := vms[tc.link].Run(tc.frame)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want := 0
		if tc.accept {
			want = snaplen
		}
		if n != want {
			t.Errorf("%s: filter returned %d, want %d", tc.name, n, want)
		}
	}
	for _, lt := range []LinkType{LinkTypeEthernet, LinkTypeRaw} {
		prog, _ := tcpFilter(lt, snaplen, false, nil)
		t.Logf("link type %d: %d instructions", lt, len(prog))
	}
}

// TestTCPFilterLoopback checks the loopback variant: the plain filter behind
// a prefix that drops PACKET_OUTGOING frames (the VM cannot run the
// packet-type load; TestLiveLoopback runs it in the kernel).
func TestTCPFilterLoopback(t *testing.T) {
	plain, err := tcpFilter(LinkTypeEthernet, 256, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := tcpFilter(LinkTypeEthernet, 256, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
	}
	if len(lo) != len(prefix)+len(plain) || !reflect.DeepEqual(lo[:len(prefix)], prefix) || !reflect.DeepEqual(lo[len(prefix):], plain) {
		t.Fatalf("loopback filter is not the plain one behind the packet-type test:\n%v", lo[:min(len(lo), 8)])
	}
	if _, err := bpf.Assemble(lo); err != nil {
		t.Fatal(err)
	}
	if _, err := tcpFilter(LinkTypeLinuxSLL, 256, false, nil); err == nil {
		t.Error("a filter for Linux SLL frames was built")
	}
	if _, err := tcpFilter(LinkTypeEthernet, 0, false, nil); err == nil {
		t.Error("a filter with snap length 0 was built")
	}
}

// TestTCPFilterAgreesWithDecoder runs the filter over the decoder's test
// frames of the link types a live socket yields: whatever the decoder
// turns into a TCP segment (or holds as a fragment of one) passes, and
// what it counts as not IP or not TCP is rejected.
func TestTCPFilterAgreesWithDecoder(t *testing.T) {
	vms := map[LinkType]*bpf.VM{
		LinkTypeEthernet: filterVM(t, LinkTypeEthernet, 256),
		LinkTypeRaw:      filterVM(t, LinkTypeRaw, 256),
	}
	// Documented differences.
	rejectedTCP := map[string]string{
		"three-tags": "the filter looks through two tags in the frame; on a live socket the kernel has stripped the outer of three",
	}
	acceptedOther := map[string]string{}
	checked := 0
	for _, c := range decodeCases() {
		link := c.link
		switch link {
		case LinkTypeRaw, LinkTypeRawOld, LinkTypeRawOld2, LinkTypeIPv4, LinkTypeIPv6:
			link = LinkTypeRaw
		case LinkTypeEthernet:
		default:
			continue
		}
		n, err := vms[link].Run(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checked++
		tcp := c.want.TCP > 0 || c.want.Fragments > 0
		other := c.want.NonIP > 0 || c.want.NonTCP > 0
		mpls := strings.Contains(c.name, "mpls") // the filter passes MPLS unexamined
		switch {
		case tcp && n == 0:
			if why, ok := rejectedTCP[c.name]; ok {
				t.Logf("%s: rejected (%s)", c.name, why)
				continue
			}
			t.Errorf("%s: the decoder finds TCP, the filter rejects it", c.name)
		case other && n != 0 && !(link == LinkTypeEthernet && mpls):
			if why, ok := acceptedOther[c.name]; ok {
				t.Logf("%s: accepted (%s)", c.name, why)
				continue
			}
			t.Errorf("%s: the decoder finds no TCP (%+v), the filter passes it", c.name, c.want)
		}
	}
	t.Logf("%d decoder cases checked", checked)
}

// TestOpenLiveConfig checks that bad settings are refused before any socket
// is opened, with a message that names the problem.
func TestOpenLiveConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  LiveConfig
		want string
	}{
		{LiveConfig{}, "no interface"},
		{LiveConfig{Interface: "eth9", Snaplen: -1}, "snap length"},
		{LiveConfig{Interface: "eth9", Snaplen: MaxRecordLen + 1}, "snap length"},
		{LiveConfig{Interface: "eth9", BlockSize: 1000}, "block size"},
		{LiveConfig{Interface: "eth9", NumBlocks: -2}, "block count"},
		{LiveConfig{Interface: "eth9", BlockTimeout: time.Microsecond}, "block timeout"},
		{LiveConfig{Interface: "eth9", PollTimeout: -1}, "poll timeout"},
		{LiveConfig{Interface: "eth9", BlockSize: 1 << 30, NumBlocks: 1 << 20}, "more than half of the memory"},
		{LiveConfig{Interface: "tcptap-none0"}, "no such interface"},
	} {
		src, err := OpenLive(tc.cfg)
		if err == nil {
			src.Close()
			t.Errorf("%+v: opened", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "capture ") {
			t.Errorf("%+v: %v, want a message about %q", tc.cfg, err, tc.want)
		}
	}
}

// BenchmarkLiveNext reads and decodes frames as a capture worker does.
// "stream": a TCP stream across the tap (data one way, ACKs the other);
// the time per frame is bounded by how fast the lab's veths carry it.
// "queued": frames injected into the ring beforehand, so the time is that
// of Next, Decode and ApplyVLAN alone.
func BenchmarkLiveNext(b *testing.B) {
	lab := netlab.New(b, netlab.Options{})
	dec := NewDecoder(DecoderConfig{})
	var p Packet
	b.Run("stream", func(b *testing.B) {
		src := openLive(b, lab.Tap, LiveConfig{Interface: netlab.ClientPort})
		stop := stream(b, lab.Client, lab.Server)
		defer stop()
		frames := 0
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			f, err := src.Next()
			if err != nil {
				if errors.Is(err, ErrTimeout) {
					continue
				}
				b.Fatal(err)
			}
			frames++
			if dec.Decode(&f, &p) {
				src.ApplyVLAN(&p)
			}
		}
		b.ReportMetric(float64(frames)/time.Since(start).Seconds(), "frames/s")
		st, _ := src.Stats()
		b.ReportMetric(float64(st.Drops), "drops")
	})
	b.Run("queued", func(b *testing.B) {
		src := openLive(b, lab.Tap, LiveConfig{Interface: netlab.ClientPort})
		in := newInjector(b, lab.Client)
		frame := taggedFrame(1, false, ipProtocolTCP)
		const batch = 10_000
		queued := 0
		b.ReportAllocs()
		for b.Loop() {
			if queued == 0 {
				b.StopTimer()
				before, _ := src.Stats()
				for range batch {
					in.send(b, frame)
				}
				for st, _ := src.Stats(); st.Packets-before.Packets < batch; st, _ = src.Stats() {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(2 * DefaultLiveBlockTimeout)
				queued = batch
				b.StartTimer()
			}
			f, err := src.Next()
			if err != nil {
				b.Fatal(err)
			}
			queued--
			if dec.Decode(&f, &p) {
				src.ApplyVLAN(&p)
			}
		}
	})
}
