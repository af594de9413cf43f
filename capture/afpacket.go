//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrTimeout is returned by [LiveSource.Next] when no frame arrived within
// the poll timeout. It is routine, not a failure: the caller checks whether
// it should stop, advances its timers and calls Next again.
var ErrTimeout = errors.New("no packet within the poll timeout")

// Defaults for LiveConfig fields left at zero.
const (
	// DefaultLiveSnaplen is the bytes kept of each frame. tcptap needs the
	// headers only (payload lengths come from the IP header): 256 bytes
	// hold Ethernet, two VLAN tags, IPv4 with options or IPv6 with a few
	// extension headers, and a TCP header with the longest options (14 + 8
	// + 60 + 60 = 142 for IPv4). With TPACKET_V3 frames are packed into
	// the ring blocks at their captured length, so the snap length decides
	// how much traffic a ring absorbs: a 64 MiB ring holds about 190,000
	// full-sized segments at 256 bytes, 30,000 at 2048.
	DefaultLiveSnaplen = 256
	// DefaultLiveBlockSize is the size of one ring block, 1 MiB. It must
	// be a multiple of the page size. Moderate blocks in numbers are
	// easier for the kernel to allocate than a few big ones.
	DefaultLiveBlockSize = 1 << 20
	// DefaultLiveNumBlocks gives a 64 MiB ring per socket.
	DefaultLiveNumBlocks = 64
	// DefaultLiveBlockTimeout is how long the kernel fills a block before
	// handing it over part-full (tp_retire_blk_tov): the latency of a
	// quiet link.
	DefaultLiveBlockTimeout = 10 * time.Millisecond
	// DefaultLivePollTimeout is how long Next waits for a block before
	// returning ErrTimeout.
	DefaultLivePollTimeout = 100 * time.Millisecond
)

// LiveConfig configures one live capture socket. The zero value of every
// field but Interface gives its default.
type LiveConfig struct {
	// Interface is the capture interface, e.g. "eth1". Interfaces with an
	// Ethernet header (Ethernet, veth, bridges, bonds, loopback) yield
	// LinkTypeEthernet frames; others (tun, IPIP, GRE, WireGuard) are read
	// from the IP header on (SOCK_DGRAM) and yield LinkTypeRaw.
	Interface string
	// Snaplen is the bytes kept of each frame; longer frames are cut by the
	// kernel filter. Default DefaultLiveSnaplen, at most MaxRecordLen.
	Snaplen int
	// BlockSize is the TPACKET_V3 block size, a multiple of the page size.
	// Default DefaultLiveBlockSize.
	BlockSize int
	// NumBlocks is the number of blocks in the ring; the ring takes
	// BlockSize*NumBlocks bytes of kernel memory (mapped into the
	// process). Default DefaultLiveNumBlocks.
	NumBlocks int
	// BlockTimeout is the V3 block retire timeout, at least 1 ms (the
	// kernel counts milliseconds). Default DefaultLiveBlockTimeout.
	BlockTimeout time.Duration
	// PollTimeout bounds how long Next blocks on a quiet link, at least
	// 1 ms (gopacket restarts a poll a signal interrupted, so rarely a
	// little longer). Default DefaultLivePollTimeout.
	PollTimeout time.Duration
	// Promiscuous puts the interface in promiscuous mode for as long as the
	// socket is open (needed on a mirror port whose frames are addressed
	// to other hosts).
	Promiscuous bool
	// FanoutGroup, when not 0, joins the socket to that PACKET_FANOUT group
	// in PACKET_FANOUT_HASH mode with PACKET_FANOUT_FLAG_DEFRAG: the kernel
	// hands each frame to one socket of the group by a symmetric hash of
	// its addresses and ports, so both directions of a connection reach
	// the same socket, and IPv4 fragments are reassembled first so they
	// follow their connection (each socket then sees the whole datagram).
	// Group IDs are shared by every process of the network namespace and
	// a group serves one interface: use one ID per interface, derived from
	// something unique such as the process ID.
	FanoutGroup uint16
}

// withDefaults checks c and fills in the defaults.
func (c LiveConfig) withDefaults() (LiveConfig, error) {
	if c.Interface == "" {
		return c, errors.New("no interface given")
	}
	if c.Snaplen == 0 {
		c.Snaplen = DefaultLiveSnaplen
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultLiveBlockSize
	}
	if c.NumBlocks == 0 {
		c.NumBlocks = DefaultLiveNumBlocks
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = DefaultLiveBlockTimeout
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = DefaultLivePollTimeout
	}
	page := unix.Getpagesize()
	switch {
	case c.Snaplen < 0 || c.Snaplen > MaxRecordLen:
		return c, fmt.Errorf("snap length %d out of range (1 to %d bytes)", c.Snaplen, MaxRecordLen)
	case c.BlockSize < 0 || c.BlockSize%page != 0 || c.BlockSize%afpacket.DefaultFrameSize != 0:
		return c, fmt.Errorf("ring block size %d is not a positive multiple of the page size %d", c.BlockSize, max(page, afpacket.DefaultFrameSize))
	case c.NumBlocks < 0:
		return c, fmt.Errorf("ring block count %d is negative", c.NumBlocks)
	case c.BlockTimeout < time.Millisecond:
		return c, fmt.Errorf("block timeout %v is shorter than 1ms", c.BlockTimeout)
	case c.PollTimeout < time.Millisecond:
		return c, fmt.Errorf("poll timeout %v is shorter than 1ms", c.PollTimeout)
	case c.BlockSize > math.MaxInt32:
		return c, fmt.Errorf("ring block size %d is more than the kernel takes (%d)", c.BlockSize, math.MaxInt32)
	}
	// The kernel allocates the ring without a limit of its own: a typo in
	// the ring size would end in the OOM killer.
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		ram := uint64(si.Totalram) * uint64(si.Unit)
		if ring := uint64(c.BlockSize) * uint64(c.NumBlocks); ring > ram/2 {
			return c, fmt.Errorf("a ring of %d blocks of %d bytes (%d MiB) is more than half of the memory (%d MiB)", c.NumBlocks, c.BlockSize, ring>>20, ram>>20)
		}
	}
	return c, nil
}

// LiveStats are a socket's kernel counters (PACKET_STATISTICS) since it was
// opened.
type LiveStats struct {
	// Packets counts frames that passed the filter, Drops included.
	Packets uint64
	// Drops counts frames lost because the ring was full: the reader is
	// too slow or the ring too small.
	Drops uint64
	// QueueFreezes counts the times the ring filled up (TPACKET_V3
	// freeze_q_cnt).
	QueueFreezes uint64
	// LinkDowns counts the times Next found that the interface had been
	// set down. The kernel detaches the socket until the interface is up
	// again; Next meanwhile returns ErrTimeout.
	LinkDowns uint64
}

// LiveSource reads one AF_PACKET socket with a TPACKET_V3 ring
// (gopacket's afpacket), zero-copy. It is a Source whose Next returns
// ErrTimeout when the link is quiet.
//
// One goroutine reads it (Next, LastVLAN, ApplyVLAN). Stats may be called
// from any goroutine. Close must be called only after the reader has
// returned from its last Next and is done with that frame: closing unmaps
// the ring, and with gopacket closing under a reader crashes the process
// (REFERENCE §4). Stop the reader with a flag it checks between calls;
// with the poll timeout it notices within one PollTimeout even when no
// traffic flows. As a safety net Close waits for a Next in progress.
type LiveSource struct {
	tp       *afpacket.TPacket
	name     string
	linkType LinkType

	mu      sync.Mutex // held by Next and Close
	vlan    uint16     // tag stripped from the last frame (reader-owned)
	hasVLAN bool
	fd      int  // the socket, for its error state; -1 if unknown
	down    bool // the interface went down and no frame came since

	statsMu sync.Mutex // guards below; Close holds it as well as mu
	closed  bool       // set by Close under both locks; read under either
	last    [3]uint32  // gopacket's running counters at the last read
	stats   LiveStats
}

var _ Source = (*LiveSource)(nil)

// OpenLive opens a TPACKET_V3 capture socket on cfg.Interface, attaches the
// TCP filter, joins the fanout group and turns promiscuous mode on, as cfg
// says. The socket lives in the network namespace of the calling thread.
//
// The socket is created unbound (protocol 0, so no frame reaches it), the
// ring and the filter are set up, and only then is it bound to the
// interface: every frame it sees has passed the filter and is counted.
// Until it has joined its fanout group, an instant later, it sees every
// flow of the interface.
//
// On a loopback interface frames the host sends are filtered out, so each
// packet is seen once, as it is received.
func OpenLive(cfg LiveConfig) (*LiveSource, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("capture %s: %w", cfg.Interface, err)
	}
	wrap := func(what string, err error) error {
		return fmt.Errorf("capture %s: %s: %w", cfg.Interface, what, err)
	}
	ifi, err := interfaceInfo(cfg.Interface)
	if err != nil {
		return nil, wrap("interface", err)
	}
	linkType, sockType := LinkTypeRaw, afpacket.SocketDgram
	if ifi.hatype == unix.ARPHRD_ETHER || ifi.hatype == unix.ARPHRD_LOOPBACK {
		linkType, sockType = LinkTypeEthernet, afpacket.SocketRaw
	}
	prog, err := tcpFilter(linkType, uint32(cfg.Snaplen), ifi.loopback)
	if err != nil {
		return nil, wrap("filter", err)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, wrap("filter", err)
	}
	open := func(protocol uint16) (*afpacket.TPacket, error) {
		tp, err := afpacket.NewTPacket(
			afpacket.OptInterface(cfg.Interface),
			afpacket.OptProtocol(protocol),
			afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
			afpacket.OptSocketType(sockType),
			afpacket.OptBlockSize(cfg.BlockSize),
			afpacket.OptNumBlocks(cfg.NumBlocks),
			afpacket.OptBlockTimeout(cfg.BlockTimeout),
			afpacket.OptPollTimeout(cfg.PollTimeout),
		)
		switch {
		case err == nil:
			return tp, nil
		case errors.Is(err, unix.EPERM):
			err = fmt.Errorf("%w (live capture needs CAP_NET_RAW)", err)
		case strings.Contains(err.Error(), "packet_rx_ring"):
			err = fmt.Errorf("%w (a ring of %d blocks of %d bytes: use smaller blocks, or fewer)", err, cfg.NumBlocks, cfg.BlockSize)
		}
		return nil, wrap("opening TPACKET_V3 socket", err)
	}
	tp, err := open(0)
	if err != nil {
		return nil, err
	}
	s := &LiveSource{tp: tp, name: cfg.Interface, linkType: linkType, fd: tpacketFD(tp)}
	if s.fd < 0 {
		// We cannot bind it ourselves: let gopacket bind at creation,
		// before the filter is attached.
		tp.Close()
		if tp, err = open(unix.ETH_P_ALL); err != nil {
			return nil, err
		}
		s.tp = tp
	}
	fail := func(what string, err error) (*LiveSource, error) {
		tp.Close()
		return nil, wrap(what, err)
	}
	if err := tp.SetBPF(raw); err != nil {
		return fail("attaching filter", err)
	}
	if s.fd >= 0 {
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.index}
		if err := unix.Bind(s.fd, sa); err != nil {
			return fail("binding", err)
		}
	}
	if cfg.FanoutGroup != 0 {
		if err := tp.SetFanout(afpacket.FanoutHashWithDefrag, cfg.FanoutGroup); err != nil {
			return fail(fmt.Sprintf("joining fanout group %d (is it used with other settings, on another interface or by another process?)", cfg.FanoutGroup), err)
		}
	}
	if cfg.Promiscuous {
		if err := tp.SetPromiscuous(true); err != nil {
			return fail("promiscuous mode", err)
		}
	}
	return s, nil
}

// htons converts v to network byte order, as sockaddr_ll wants its
// protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// ifaceInfo is what OpenLive needs to know about an interface.
type ifaceInfo struct {
	index    int
	hatype   uint16 // ARPHRD_*
	loopback bool
}

// interfaceInfo looks the interface up with ioctls in the calling thread's
// network namespace.
func interfaceInfo(name string) (ifaceInfo, error) {
	var info ifaceInfo
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return info, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return info, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return info, errors.New("no such interface")
		}
		return info, fmt.Errorf("SIOCGIFINDEX: %w", err)
	}
	info.index = int(ifr.Uint32())
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return info, fmt.Errorf("SIOCGIFHWADDR: %w", err)
	}
	info.hatype = ifr.Uint16() // ifr_hwaddr.sa_family
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return info, fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	info.loopback = ifr.Uint16()&unix.IFF_LOOPBACK != 0
	return info, nil
}

// tpacketFD returns the file descriptor of tp, or -1. gopacket keeps it in
// an unexported field and offers no accessor; reflection reads it (and a
// test fails if a gopacket upgrade renames it). LiveSource needs it to bind
// the socket after its filter is attached and to clear the socket's
// pending error after the interface went down; without it both fall back
// to gopacket's behaviour.
func tpacketFD(tp *afpacket.TPacket) int {
	v := reflect.ValueOf(tp).Elem().FieldByName("fd")
	if !v.IsValid() || v.Kind() != reflect.Int {
		return -1
	}
	return int(v.Int())
}

// pollError handles poll's POLLERR. When the interface goes down, the
// kernel detaches the socket and sets its error to ENETDOWN; poll reports
// POLLERR until someone reads the error, which gopacket never does, so
// every later Next would fail at once, even after the interface is back up
// (when the kernel attaches the socket again). pollError reads (and so
// clears) the error: ENETDOWN on an interface that still exists is counted
// in LinkDowns and nil is returned, for Next to wait again. A removed
// interface is final: its socket never sees a frame again.
func (s *LiveSource) pollError() error {
	if s.fd < 0 {
		return afpacket.ErrPoll
	}
	soErr, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return fmt.Errorf("%w: SO_ERROR: %w", afpacket.ErrPoll, err)
	}
	if s.removed() {
		return errInterfaceRemoved
	}
	switch unix.Errno(soErr) {
	case unix.ENETDOWN:
		s.down = true
		s.statsMu.Lock()
		s.stats.LinkDowns++
		s.statsMu.Unlock()
		return nil
	case 0:
		return afpacket.ErrPoll
	}
	return fmt.Errorf("%w: %w", afpacket.ErrPoll, unix.Errno(soErr))
}

// errInterfaceRemoved is the error of a source whose interface is gone.
var errInterfaceRemoved = errors.New("the interface was removed; reopen the capture once it is back")

// removed reports whether the socket's interface was deleted: the kernel
// then binds the socket to interface index -1. A deleted interface is first
// set down, so Next asks only while the interface is down.
func (s *LiveSource) removed() bool {
	sa, err := unix.Getsockname(s.fd)
	ll, ok := sa.(*unix.SockaddrLinklayer)
	return err == nil && ok && ll.Ifindex <= 0
}

// LinkType returns the link type of the frames Next returns.
func (s *LiveSource) LinkType() LinkType { return s.linkType }

// Next returns the next frame. Frame.Data points into the ring and is valid
// only until the next call to Next (or Close). When no frame arrives within
// the poll timeout it returns ErrTimeout; after Close it returns io.EOF.
// Frame.Interface is 0: the caller knows which interface the source reads.
//
// When the kernel stripped a VLAN tag off the frame (the receive path does
// so with an outermost 802.1Q or 802.1ad tag, in software if the NIC did
// not), Frame.WireLen counts it and LastVLAN reports it. Next does not
// allocate, except that gopacket v1.7.7 allocates the ancillary data of a
// frame with a stripped tag (1 allocation for VLAN IDs below 256, 2 above).
func (s *LiveSource) Next() (Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hasVLAN = false
	if s.closed {
		return Frame{}, io.EOF
	}
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	for err != nil {
		if err == afpacket.ErrTimeout {
			if s.down && s.removed() {
				return Frame{}, fmt.Errorf("capture %s: %w", s.name, errInterfaceRemoved)
			}
			return Frame{}, ErrTimeout
		}
		if err == afpacket.ErrPoll {
			if err = s.pollError(); err == nil {
				data, ci, err = s.tp.ZeroCopyReadPacketData()
				continue
			}
		}
		return Frame{}, fmt.Errorf("capture %s: %w", s.name, err)
	}
	s.down = false
	f := Frame{
		Data:      data,
		Timestamp: ci.Timestamp.UnixNano(),
		WireLen:   uint32(ci.Length),
		LinkType:  s.linkType,
	}
	for _, a := range ci.AncillaryData {
		if v, ok := a.(afpacket.AncillaryVLAN); ok {
			s.vlan, s.hasVLAN = uint16(v.VLAN), true
			f.WireLen += vlanTagLen
		}
	}
	return f, nil
}

// LastVLAN returns the VLAN ID of the tag the kernel stripped from the
// frame the last Next returned, if it did. That tag was the frame's
// outermost: tags still in Frame.Data are inner ones. Only the reader may
// call it.
func (s *LiveSource) LastVLAN() (uint16, bool) { return s.vlan, s.hasVLAN }

// ApplyVLAN puts the tag the kernel stripped from the last frame back into
// p, the packet decoded from that frame, as its outermost VLAN: IDs decoded
// from the frame move one place in (with two already there the innermost
// is dropped, as the decoder keeps the two outermost). It does nothing
// when no tag was stripped. Only the reader may call it.
func (s *LiveSource) ApplyVLAN(p *Packet) {
	if !s.hasVLAN {
		return
	}
	p.VLAN[1] = p.VLAN[0]
	p.VLAN[0] = s.vlan
	if int(p.VLANCount) < len(p.VLAN) {
		p.VLANCount++
	}
}

// Stats returns the socket's kernel counters since it was opened. The
// kernel resets its counters on every read and gopacket keeps 32-bit
// totals, so Stats must be called at least once per 2^32 frames (e.g. on
// every poll timeout or scrape) for Packets to stay exact. It is safe from
// any goroutine, also after Close (it then returns the final counts).
func (s *LiveSource) Stats() (LiveStats, error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.closed {
		return s.stats, nil
	}
	return s.readStats()
}

// readStats adds what the kernel counted since the last read; statsMu is
// held.
func (s *LiveSource) readStats() (LiveStats, error) {
	_, v3, err := s.tp.SocketStats()
	if err != nil {
		return s.stats, fmt.Errorf("capture %s: socket statistics: %w", s.name, err)
	}
	cur := [3]uint32{uint32(v3.Packets()), uint32(v3.Drops()), uint32(v3.QueueFreezes())}
	s.stats.Packets += uint64(cur[0] - s.last[0])
	s.stats.Drops += uint64(cur[1] - s.last[1])
	s.stats.QueueFreezes += uint64(cur[2] - s.last[2])
	s.last = cur
	return s.stats, nil
}

// Close reads the final counters and closes the socket. Call it only after
// the reader stopped (see LiveSource); it waits for a Next in progress,
// at most one poll timeout. Closing twice is harmless.
func (s *LiveSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.closed {
		return nil
	}
	_, err := s.readStats()
	s.closed = true
	s.tp.Close()
	return err
}
