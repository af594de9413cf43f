//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

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
	// 50 ms: a worker on a quiet link publishes its counters, ages its
	// connections and answers queries at least that often.
	DefaultLivePollTimeout = 50 * time.Millisecond
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
	// PollTimeout bounds how long Next waits on a quiet link, at least
	// 1 ms. Default DefaultLivePollTimeout.
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
	// UDPTunnelPorts are the UDP tunnels the kernel filter passes (nil:
	// DefaultUDPTunnelPorts); give the Decoder the same list.
	UDPTunnelPorts []UDPTunnelPort
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
	case c.BlockSize < 0 || c.BlockSize%page != 0 || c.BlockSize%ringFrameSize != 0:
		return c, fmt.Errorf("ring block size %d is not a positive multiple of the page size %d", c.BlockSize, max(page, ringFrameSize))
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

// ringFrameSize is the frame size of the ring request. TPACKET_V3 packs
// frames into its blocks at their own length and ignores it, but the kernel
// wants block_size to be a multiple of it and frame_nr to match.
const ringFrameSize = 4096

// The tpacket3 status bits tcptap reads (<linux/if_packet.h>).
const (
	tpStatusKernel    = unix.TP_STATUS_KERNEL
	tpStatusUser      = unix.TP_STATUS_USER
	tpStatusVLANValid = unix.TP_STATUS_VLAN_VALID
)

// Sizes of the kernel's ring structures: a block starts with a
// tpacket_block_desc whose header is a tpacket_hdr_v1; every frame in it
// starts with a tpacket3_hdr.
const (
	blockDescHdrOffset = unsafe.Offsetof(unix.TpacketBlockDesc{}.Hdr)
	tpacket3HdrLen     = unsafe.Sizeof(unix.Tpacket3Hdr{})
)

// LiveSource reads one AF_PACKET socket with a TPACKET_V3 receive ring,
// zero-copy: the frames Next returns point into the ring shared with the
// kernel. It is a Source whose Next returns ErrTimeout when the link is
// quiet.
//
// The ring is read directly, without gopacket's afpacket: a block is taken
// when the kernel marks it TP_STATUS_USER and handed back (TP_STATUS_KERNEL)
// once every frame in it has been returned, on the Next after the last.
// Waiting for a block goes through the Go runtime's poller (the socket is
// non-blocking and registered with epoll), so a waiting worker parks its
// goroutine instead of blocking a thread in poll(2), which the runtime
// answers by handing the thread's P to another thread and by waking its
// monitor thread. With the raw getsockopt of readStats this cut the
// daemon's CPU per packet by a fifth (tcpreplay into a veth, 1 worker at
// 200-280k packets/s: 1.02 µs instead of 1.29 with gopacket's reader).
// Reading the frame header directly also gives the stripped VLAN tag
// without allocating.
//
// One goroutine reads it (Next, LastVLAN, ApplyVLAN). Stats may be called
// from any goroutine. Close must be called only after the reader has
// returned from its last Next and is done with that frame: closing unmaps
// the ring under the frame. Stop the reader with a flag it checks between
// calls; with the poll timeout it notices within one PollTimeout even when
// no traffic flows. As a safety net Close waits for a Next in progress.
type LiveSource struct {
	name        string
	linkType    LinkType
	fd          int
	file        *os.File        // fd, registered with the runtime poller
	conn        syscall.RawConn // file's, to wait for a block
	ring        []byte          // the mapped ring, numBlocks blocks of blockSize bytes
	blockSize   int
	numBlocks   int
	pollTimeout time.Duration

	mu sync.Mutex // held by Next and Close
	// The reader's place in the ring: block is the index of the block it
	// reads or waits for; when held, the kernel gave it that block and
	// left frames remain in it, the next at offset frame of the ring.
	block   int
	held    bool
	left    uint32
	frame   int
	vlan    uint16 // tag stripped from the last frame (reader-owned)
	hasVLAN bool
	down    bool                  // the interface went down and no frame came since
	ready   func(fd uintptr) bool // conn.Read's callback, made once
	woken   int                   // times ready was called in the current wait
	waitErr error                 // what ready found besides a block

	// wake asks a waiting Next to return ErrTimeout at once (Wake).
	wake atomic.Bool

	statsMu sync.Mutex // guards below; Close holds it as well as mu
	closed  bool       // set by Close under both locks; read under either
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
	linkType, sockType := LinkTypeRaw, unix.SOCK_DGRAM
	if ifi.hatype == unix.ARPHRD_ETHER || ifi.hatype == unix.ARPHRD_LOOPBACK {
		linkType, sockType = LinkTypeEthernet, unix.SOCK_RAW
	}
	prog, err := tcpFilter(linkType, uint32(cfg.Snaplen), ifi.loopback, cfg.UDPTunnelPorts)
	if err != nil {
		return nil, wrap("filter", err)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, wrap("filter", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, sockType|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			err = fmt.Errorf("%w (live capture needs CAP_NET_RAW)", err)
		}
		return nil, wrap("opening AF_PACKET socket", err)
	}
	s := &LiveSource{
		name: cfg.Interface, linkType: linkType, fd: fd,
		blockSize: cfg.BlockSize, numBlocks: cfg.NumBlocks, pollTimeout: cfg.PollTimeout,
	}
	fail := func(what string, err error) (*LiveSource, error) {
		s.release()
		return nil, wrap(what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("TPACKET_V3", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(cfg.BlockSize),
		Block_nr:       uint32(cfg.NumBlocks),
		Frame_size:     ringFrameSize,
		Frame_nr:       uint32(cfg.BlockSize / ringFrameSize * cfg.NumBlocks),
		Retire_blk_tov: uint32(cfg.BlockTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail(fmt.Sprintf("receive ring of %d blocks of %d bytes (use smaller blocks, or fewer)", cfg.NumBlocks, cfg.BlockSize), err)
	}
	// MAP_POPULATE maps the whole ring now rather than page by page on
	// the reader's first pass.
	if s.ring, err = unix.Mmap(fd, 0, cfg.BlockSize*cfg.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail("mapping the ring", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		return fail("attaching filter", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.index}); err != nil {
		return fail("binding", err)
	}
	if cfg.FanoutGroup != 0 {
		arg := int(cfg.FanoutGroup) | (unix.PACKET_FANOUT_HASH|unix.PACKET_FANOUT_FLAG_DEFRAG)<<16
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
			return fail(fmt.Sprintf("joining fanout group %d (is it used with other settings, on another interface or by another process?)", cfg.FanoutGroup), err)
		}
	}
	if cfg.Promiscuous {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("promiscuous mode", err)
		}
	}
	// The socket is non-blocking, so os.NewFile registers it with the
	// runtime poller; from here on the File owns the descriptor.
	s.file = os.NewFile(uintptr(fd), "packet:"+cfg.Interface)
	if s.conn, err = s.file.SyscallConn(); err != nil {
		return fail("poller", err)
	}
	if err := s.file.SetReadDeadline(time.Time{}); err != nil {
		return fail("poller (the runtime cannot poll this socket)", err)
	}
	s.ready = s.blockReady
	return s, nil
}

// release unmaps the ring and closes the socket of a source being opened
// or closed.
func (s *LiveSource) release() {
	if s.ring != nil {
		unix.Munmap(s.ring)
		s.ring = nil
	}
	if s.file != nil {
		s.file.Close()
	} else {
		unix.Close(s.fd)
	}
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

// blockStatus returns the address of the status word of block b, which the
// kernel and the reader hand the block over with.
func (s *LiveSource) blockStatus(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&s.ring[b*s.blockSize+int(blockDescHdrOffset)]))
}

// blockHeader returns block b's tpacket_hdr_v1.
func (s *LiveSource) blockHeader(b int) *unix.TpacketHdrV1 {
	return (*unix.TpacketHdrV1)(unsafe.Pointer(&s.ring[b*s.blockSize+int(blockDescHdrOffset)]))
}

// blockReady is the callback of the wait for the current block: it reports
// whether the kernel has handed the block over or the socket has an error
// to report (left in waitErr). The poller calls it once before waiting and
// again after every wakeup; a wakeup without a block is what an error
// (such as the interface going down) looks like, so only then is the
// socket's error read.
func (s *LiveSource) blockReady(uintptr) bool {
	if atomic.LoadUint32(s.blockStatus(s.block))&tpStatusUser != 0 {
		return true
	}
	s.woken++
	if s.woken > 1 {
		s.waitErr = s.socketError()
		return s.waitErr != nil
	}
	return false
}

// errLinkDown is socketError's report that the interface went down (and
// still exists): the wait goes on.
var errLinkDown = errors.New("interface down")

// socketError reads (and so clears) the socket's pending error. When the
// interface goes down, the kernel detaches the socket and sets its error to
// ENETDOWN, which would wake every later wait at once; reading it lets the
// wait sleep until the interface is back up (the kernel then attaches the
// socket again) or the poll timeout. ENETDOWN on an interface that still
// exists is counted in LinkDowns and reported as errLinkDown; a removed
// interface is final: its socket never sees a frame again.
func (s *LiveSource) socketError() error {
	soErr, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		return fmt.Errorf("SO_ERROR: %w", err)
	case soErr == 0:
		return nil
	case s.removed():
		return errInterfaceRemoved
	case unix.Errno(soErr) == unix.ENETDOWN:
		s.down = true
		s.statsMu.Lock()
		s.stats.LinkDowns++
		s.statsMu.Unlock()
		return errLinkDown
	}
	return unix.Errno(soErr)
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

// wait waits, at most until deadline, for the kernel to hand over the
// current block. It returns ErrTimeout when the deadline passes first.
func (s *LiveSource) wait(deadline time.Time) error {
	if err := s.file.SetReadDeadline(deadline); err != nil {
		return err
	}
	// After the deadline is set, so that a Wake either is seen here or
	// moves the deadline this wait sleeps on.
	if s.wake.Swap(false) {
		return ErrTimeout
	}
	for {
		s.woken, s.waitErr = 0, nil
		err := s.conn.Read(s.ready)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if s.down && s.removed() {
				return errInterfaceRemoved
			}
			return ErrTimeout
		case err != nil:
			return err
		case s.waitErr == errLinkDown:
			continue // sleep on until the deadline or a block
		case s.waitErr != nil:
			return s.waitErr
		}
		return nil
	}
}

// Wake makes a Next that waits for a block (or the next one to) return
// ErrTimeout at once, so that its reader turns to other work — a query —
// without waiting for the poll timeout. Any goroutine may call it.
func (s *LiveSource) Wake() {
	s.wake.Store(true)
	s.file.SetReadDeadline(time.Now()) // an error means the socket is closed: nothing waits
}

// ClearWake drops a Wake not yet seen by a wait: its reader calls it when
// it turns to the work the wake was for anyway, so that the next wait
// sleeps until a frame or its deadline rather than return at once.
func (s *LiveSource) ClearWake() { s.wake.Store(false) }

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
// allocate.
func (s *LiveSource) Next() (Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hasVLAN = false
	if s.closed {
		return Frame{}, io.EOF
	}
	var deadline time.Time
	for s.left == 0 {
		if s.held {
			// Every frame of the block has been returned and the
			// caller is done with the last one: hand it back.
			atomic.StoreUint32(s.blockStatus(s.block), tpStatusKernel)
			s.held = false
			s.block = (s.block + 1) % s.numBlocks
		}
		if atomic.LoadUint32(s.blockStatus(s.block))&tpStatusUser == 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(s.pollTimeout)
			}
			if err := s.wait(deadline); err != nil {
				if err == ErrTimeout {
					return Frame{}, ErrTimeout
				}
				return Frame{}, fmt.Errorf("capture %s: %w", s.name, err)
			}
			continue
		}
		// The kernel can hand over an empty block (the retire timer
		// with a frozen queue); the loop then gives it back at once.
		bh := s.blockHeader(s.block)
		s.held, s.left = true, bh.Num_pkts
		s.frame = s.block*s.blockSize + int(bh.Offset_to_first_pkt)
	}
	s.down = false
	end := (s.block + 1) * s.blockSize
	if s.frame < 0 || s.frame+int(tpacket3HdrLen) > end {
		return Frame{}, fmt.Errorf("capture %s: frame header at %d outside its block (ring corrupt)", s.name, s.frame)
	}
	h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&s.ring[s.frame]))
	data := s.frame + int(h.Mac)
	if data+int(h.Snaplen) > end {
		return Frame{}, fmt.Errorf("capture %s: frame of %d bytes at %d outside its block (ring corrupt)", s.name, h.Snaplen, data)
	}
	f := Frame{
		Data:      s.ring[data : data+int(h.Snaplen) : data+int(h.Snaplen)],
		Timestamp: int64(h.Sec)*1e9 + int64(h.Nsec),
		WireLen:   h.Len,
		LinkType:  s.linkType,
	}
	if h.Status&tpStatusVLANValid != 0 {
		s.vlan, s.hasVLAN = uint16(h.Hv1.Vlan_tci&0xfff), true
		f.WireLen += vlanTagLen
	}
	s.left--
	s.frame += int(h.Next_offset)
	return f, nil
}

// Backlog returns the frames the kernel has put in the ring that Next has not
// returned yet: those left in the block Next is reading plus every frame of
// the blocks the kernel has handed over after it. It is the queue a live
// worker has (once it fills the ring, the kernel drops new frames) and
// feeds the metric tcptap_worker_queue_depth.
//
// Only blocks the kernel has handed over count: frames in the block it is
// still filling appear once it retires that block, when it is full or its
// retire timer (BlockTimeout) expires. So a backlog of 0 means that Next
// would wait, give or take one block timeout of traffic.
//
// It walks the ring's block headers from the reader's block to the first
// one the kernel still owns (at most one turn): a few loads per block, no
// system call, no allocation. Only the goroutine that calls Next may call
// it; after Close it returns 0.
func (s *LiveSource) Backlog() int {
	if s.ring == nil {
		return 0
	}
	n, b, blocks := 0, s.block, s.numBlocks
	if s.held {
		// Next holds block b (the kernel handed it over and the
		// reader has not given it back yet, even when left is 0):
		// left is its num_pkts less the frames already returned.
		n, b, blocks = int(s.left), (b+1)%s.numBlocks, blocks-1
	}
	// Otherwise b is the block Next waits for next: it starts the walk
	// whole. That is also the state just after a block was handed back.
	for range blocks {
		if atomic.LoadUint32(s.blockStatus(b))&tpStatusUser == 0 {
			break
		}
		// The kernel writes num_pkts before the status that hands the
		// block over, and leaves both alone until it gets it back.
		n += int(s.blockHeader(b).Num_pkts)
		b = (b + 1) % s.numBlocks
	}
	return n
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
	// The tag of a tunnelled segment's frame is the transport network's,
	// like the tags the decoder clears on entering the tunnel.
	if !s.hasVLAN || p.Tunnel.Depth != 0 {
		return
	}
	p.VLAN[1] = p.VLAN[0]
	p.VLAN[0] = s.vlan
	if int(p.VLANCount) < len(p.VLAN) {
		p.VLANCount++
	}
}

// Stats returns the socket's kernel counters since it was opened. The
// kernel resets its counters on every read (PACKET_STATISTICS) and counts
// in 32 bits, so Stats must be called at least once per 2^32 frames (e.g.
// on every poll timeout or scrape) for Packets to stay exact. It is safe
// from any goroutine, also after Close (it then returns the final counts).
func (s *LiveSource) Stats() (LiveStats, error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.closed {
		return s.stats, nil
	}
	return s.readStats()
}

// readStats adds what the kernel counted since the last read; statsMu is
// held. The kernel's packet count includes its drops.
//
// The getsockopt is a raw system call, which never blocks here: a worker
// reads the counters every thousand frames or so, and through the runtime's
// system call entry each read after an idle spell would wake the runtime's
// monitor thread (sysmon) into a millisecond of 20 µs polling.
func (s *LiveSource) readStats() (LiveStats, error) {
	var st unix.TpacketStatsV3
	size := uint32(unsafe.Sizeof(st))
	_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return s.stats, fmt.Errorf("capture %s: socket statistics: %w", s.name, errno)
	}
	s.stats.Packets += uint64(st.Packets)
	s.stats.Drops += uint64(st.Drops)
	s.stats.QueueFreezes += uint64(st.Freeze_q_cnt)
	return s.stats, nil
}

// Close reads the final counters, unmaps the ring and closes the socket.
// Call it only after the reader stopped (see LiveSource); it waits for a
// Next in progress, at most one poll timeout. Closing twice is harmless.
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
	s.release()
	return err
}
