package synth

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// TCP flag bits as in the header.
const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fPSH = 0x08
	fACK = 0x10
)

// Directions.
const (
	c2s = 0
	s2c = 1
)

// pkt is one segment of a connection, before encoding.
type pkt struct {
	t     int64 // microseconds since Epoch
	seq   uint32
	ack   uint32
	plen  uint16
	win   uint16
	dir   uint8
	flags uint8
}

type conn struct {
	idx    int
	rng    *rand.Rand
	kind   Kind
	at     int64 // next packet's time (start time before building)
	weight float64
	budget int

	pkts []pkt
	next int

	// Set up by build.
	v6         bool
	vlan       uint16
	cli, srv   [16]byte
	cport      uint16
	sport      uint16
	rtt        int64 // microseconds
	mss        uint16
	nxt        [2]uint32 // next sequence number per direction
	win        [2]uint16 // raw window per direction once established
	ipid       [2]uint16
	t          int64
	end        int64 // still open: when to stop
	retrans    int
	zeroWins   int
	probes     int
	keepalives int
}

// closeCosts are the packets each kind's ending takes.
var closeCosts = [NumKinds]int{
	CloseClientFirst: 4, CloseServerFirst: 4, ResetByClient: 1, ResetByServer: 1,
	FINThenReset: 5, RetransmitTimeout: 5, PersistTimeout: 7, KeepaliveTimeout: 4,
}

var serverPorts = [...]uint16{443, 443, 443, 443, 80, 80, 8080, 22, 5432, 3306, 25, 993}

const (
	second = 1_000_000
	milli  = 1_000
)

// build generates the connection's packets. It draws from the connection's
// own random stream only, in a fixed order.
func (c *conn) build(g *gen) {
	r := c.rng
	c.v6 = r.IntN(10) == 0
	if r.IntN(10) == 0 {
		c.vlan = uint16(2 + r.IntN(4000))
	}
	s := r.IntN(64)
	if c.v6 {
		c.cli = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0c}
		binary.BigEndian.PutUint32(c.cli[12:], uint32(c.idx)+1)
		c.srv = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x05}
		c.srv[15] = byte(s + 1)
		c.mss = 1440
	} else {
		c.cli = [16]byte{10, 1, byte(c.idx >> 8), byte(c.idx)}
		c.srv = [16]byte{198, 18, 0, byte(s + 1)}
		c.mss = 1460
	}
	c.cport = uint16(32768 + (c.idx>>16)&0x7fff)
	c.sport = serverPorts[r.IntN(len(serverPorts))]
	// Round-trip time: log-uniform from 200 µs to 40 ms.
	c.rtt = int64(200 * math.Exp(r.Float64()*math.Log(200)))
	c.nxt = [2]uint32{r.Uint32(), r.Uint32()}
	c.win = [2]uint16{501 + uint16(r.IntN(20)), 502 + uint16(r.IntN(20))}
	c.ipid = [2]uint16{uint16(r.Uint32()), uint16(r.Uint32())}
	c.t = c.at
	c.pkts = make([]pkt, 0, c.budget+8)

	switch c.kind {
	case Refused:
		c.syn()
		c.wait(c.rtt)
		c.emit(s2c, fRST|fACK, 0, 0, 0)
		c.pkts[len(c.pkts)-1].seq = 0
		return
	case SYNUnanswered:
		isn := c.nxt[c2s]
		for i, gap := range [...]int64{0, second, 2 * second} {
			c.wait(gap)
			c.nxt[c2s] = isn
			c.syn()
			if i > 0 {
				c.retrans++
			}
		}
		return
	}

	c.handshake()
	closeCost := closeCosts[c.kind]
	roundMax := 6
	if g.cfg.Payload == PayloadMSS {
		roundMax = 13
	}
	think := int64(20 * milli)
	if c.kind == StillOpen {
		// Spread the rounds over the rest of the capture.
		rounds := max(1, (c.budget-3)/(roundMax/2+1))
		c.end = g.duration - 1
		think = max(milli, (c.end-c.t)/int64(rounds))
	}
	zeroDone, kaDone := false, false
	for first := true; first || len(c.pkts)+roundMax/2+closeCost <= c.budget; first = false {
		if c.kind == StillOpen && c.t+think >= c.end {
			break
		}
		c.wait(c.jitter(think))
		switch {
		case !kaDone && !first && r.IntN(40) == 0:
			kaDone = true
			c.keepaliveEpisode()
		case !zeroDone && !first && r.IntN(30) == 0:
			zeroDone = true
			c.round(g.cfg.Payload, true)
			continue
		}
		c.round(g.cfg.Payload, false)
	}
	c.ending()
}

// jitter returns d scaled by a factor in [0.5, 1.5).
func (c *conn) jitter(d int64) int64 { return d/2 + c.rng.Int64N(d+1) }

func (c *conn) wait(d int64) { c.t += d }

// host is the delay of an end host answering at once.
func (c *conn) host() int64 { return 20 + c.rng.Int64N(150) }

// emit appends a segment from dir at the current time; its ack is the
// other direction's next sequence number.
func (c *conn) emit(dir uint8, flags uint8, plen int, win uint16, seqBack uint32) {
	p := pkt{t: c.t, dir: dir, flags: flags, seq: c.nxt[dir] - seqBack, plen: uint16(plen), win: win}
	if flags&fACK != 0 {
		p.ack = c.nxt[dir^1]
	}
	c.pkts = append(c.pkts, p)
	if seqBack == 0 {
		c.nxt[dir] += uint32(plen)
		if flags&(fSYN|fFIN) != 0 {
			c.nxt[dir]++
		}
	}
}

func (c *conn) syn() {
	win := uint16(64240)
	if c.v6 {
		win = 64800
	}
	c.emit(c2s, fSYN, 0, win, 0)
}

func (c *conn) handshake() {
	c.syn()
	c.wait(c.rtt)
	win := uint16(65160)
	if c.v6 {
		win = 64800
	}
	c.emit(s2c, fSYN|fACK, 0, win, 0)
	c.wait(c.host())
	c.emit(c2s, fACK, 0, c.win[c2s], 0)
}

// data sends one data segment from dir, sometimes lost after the tap and
// retransmitted once after a retransmission timeout.
func (c *conn) data(dir uint8, n int) {
	c.emit(dir, fPSH|fACK, n, c.win[dir], 0)
	if c.rng.IntN(100) < 3 {
		c.wait(c.rto())
		c.pkts = append(c.pkts, c.pkts[len(c.pkts)-1])
		c.pkts[len(c.pkts)-1].t = c.t
		c.retrans++
	}
}

func (c *conn) rto() int64 { return max(200*milli, 3*c.rtt) }

// segSize returns a response segment's size.
func (c *conn) segSize(mode Payload) int {
	if mode == PayloadMSS {
		return int(c.mss)
	}
	// Mostly small: a few dozen to a few hundred bytes.
	return 1 + c.rng.IntN(64) + c.rng.IntN(4)*c.rng.IntN(200)
}

// round is one request and its response. With zero, the client's receive
// window fills after the response: it advertises 0, the server probes it,
// and the client opens it again.
func (c *conn) round(mode Payload, zero bool) {
	r := c.rng
	c.data(c2s, 20+r.IntN(300))
	c.wait(c.rtt)
	k := 1 + r.IntN(3)
	if mode == PayloadMSS {
		k = 1 + r.IntN(8)
	}
	for i := 0; i < k; i++ {
		if i > 0 {
			c.wait(5 + r.Int64N(30))
		}
		n := c.segSize(mode)
		if mode == PayloadMSS && i == k-1 {
			n = 1 + r.IntN(int(c.mss))
		}
		c.data(s2c, n)
		if i%2 == 1 && i < k-1 {
			c.wait(c.host())
			c.emit(c2s, fACK, 0, c.win[c2s], 0)
		}
	}
	c.wait(c.host())
	if !zero {
		c.emit(c2s, fACK, 0, c.win[c2s], 0)
		return
	}
	c.emit(c2s, fACK, 0, 0, 0)
	c.zeroWins++
	n := 1 + r.IntN(3)
	gap := c.rto()
	for i := 0; i < n; i++ {
		c.wait(gap)
		gap *= 2
		c.emit(s2c, fACK, 0, c.win[s2c], 1) // Linux probe: no data, snd_una-1
		c.probes++
		c.wait(c.host())
		c.emit(c2s, fACK, 0, 0, 0)
		c.zeroWins++
	}
	c.wait(c.jitter(50 * milli))
	c.emit(c2s, fACK, 0, c.win[c2s], 0) // window update
}

// keepaliveEpisode: the connection idles, the client probes, the server answers.
func (c *conn) keepaliveEpisode() {
	n := 1 + c.rng.IntN(2)
	for i := 0; i < n; i++ {
		c.wait(second + c.rng.Int64N(second))
		c.emit(c2s, fACK, 0, c.win[c2s], 1)
		c.keepalives++
		c.wait(c.rtt)
		c.emit(s2c, fACK, 0, c.win[s2c], 0)
	}
}

func (c *conn) ending() {
	r := c.rng
	switch c.kind {
	case CloseClientFirst:
		c.wait(c.jitter(10 * milli))
		c.emit(c2s, fFIN|fACK, 0, c.win[c2s], 0)
		c.wait(c.rtt)
		if r.IntN(2) == 0 {
			c.emit(s2c, fFIN|fACK, 0, c.win[s2c], 0)
		} else {
			c.emit(s2c, fACK, 0, c.win[s2c], 0)
			c.wait(c.host())
			c.emit(s2c, fFIN|fACK, 0, c.win[s2c], 0)
		}
		c.wait(c.host())
		c.emit(c2s, fACK, 0, c.win[c2s], 0)
	case CloseServerFirst:
		c.wait(c.jitter(10 * milli))
		c.emit(s2c, fFIN|fACK, 0, c.win[s2c], 0)
		c.wait(c.host())
		if r.IntN(2) == 0 {
			c.emit(c2s, fFIN|fACK, 0, c.win[c2s], 0)
		} else {
			c.emit(c2s, fACK, 0, c.win[c2s], 0)
			c.wait(c.host())
			c.emit(c2s, fFIN|fACK, 0, c.win[c2s], 0)
		}
		c.wait(c.rtt)
		c.emit(s2c, fACK, 0, c.win[s2c], 0)
	case ResetByClient:
		c.wait(c.jitter(10 * milli))
		c.emit(c2s, fRST|fACK, 0, 0, 0)
	case ResetByServer:
		c.wait(c.rtt)
		flags := uint8(fRST | fACK)
		if r.IntN(2) == 0 {
			flags = fRST
		}
		c.emit(s2c, flags, 0, 0, 0)
	case FINThenReset:
		c.wait(c.jitter(10 * milli))
		c.emit(c2s, fFIN|fACK, 0, c.win[c2s], 0)
		c.wait(c.rtt)
		c.emit(s2c, fACK, 0, c.win[s2c], 0)
		c.wait(c.host())
		c.emit(s2c, fPSH|fACK, 1+r.IntN(200), c.win[s2c], 0)
		c.wait(c.host())
		c.emit(c2s, fRST, 0, 0, 0)
	case RetransmitTimeout:
		c.wait(c.jitter(20 * milli))
		n := 20 + r.IntN(300)
		c.emit(c2s, fPSH|fACK, n, c.win[c2s], 0)
		seq := c.nxt[c2s] - uint32(n)
		gap := c.rto()
		for i := 0; i < 4; i++ {
			c.wait(gap)
			gap *= 2
			p := c.pkts[len(c.pkts)-1]
			p.t, p.seq = c.t, seq
			c.pkts = append(c.pkts, p)
			c.retrans++
		}
	case PersistTimeout:
		c.wait(c.jitter(20 * milli))
		c.emit(c2s, fPSH|fACK, 20+r.IntN(300), c.win[c2s], 0)
		c.wait(c.rtt)
		c.emit(s2c, fACK, 0, 0, 0)
		c.zeroWins++
		gap := c.rto()
		for i := 0; i < 4; i++ {
			c.wait(gap)
			gap *= 2
			c.emit(c2s, fACK, 0, c.win[c2s], 1)
			c.probes++
		}
		if r.IntN(2) == 0 {
			c.wait(gap)
			c.emit(c2s, fRST|fACK, 0, 0, 0)
		}
	case KeepaliveTimeout:
		for i := 0; i < 3; i++ {
			c.wait(second)
			c.emit(c2s, fACK, 0, c.win[c2s], 1)
			c.keepalives++
		}
		c.wait(second)
		c.emit(c2s, fRST|fACK, 0, 0, 0)
	case StillOpen:
	}
}

var zeros [1 << 16]byte

var (
	macClient = [6]byte{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	macServer = [6]byte{0x02, 0x00, 0x5e, 0x00, 0x00, 0x02}
)

// frame encodes p into b and returns the frame, its captured length and
// its length on the wire.
func (c *conn) frame(b []byte, p *pkt, mode Payload) ([]byte, int, int) {
	src, dst := &c.cli, &c.srv
	sport, dport := c.cport, c.sport
	smac, dmac := macClient, macServer
	if p.dir == s2c {
		src, dst = dst, src
		sport, dport = dport, sport
		smac, dmac = dmac, smac
	}
	b = append(b, dmac[:]...)
	b = append(b, smac[:]...)
	if c.vlan != 0 {
		b = append(b, 0x81, 0x00, byte(c.vlan>>8), byte(c.vlan))
	}
	tcpHdr := 20
	if p.flags&fSYN != 0 {
		tcpHdr = 32
	}
	tcpLen := tcpHdr + int(p.plen)
	if c.v6 {
		b = append(b, 0x86, 0xdd)
		b = append(b, 0x60, 0, 0, 0, byte(tcpLen>>8), byte(tcpLen), 6, 64)
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
	} else {
		b = append(b, 0x08, 0x00)
		ipStart := len(b)
		tot := 20 + tcpLen
		id := c.ipid[p.dir]
		c.ipid[p.dir]++
		b = append(b, 0x45, 0, byte(tot>>8), byte(tot), byte(id>>8), byte(id), 0x40, 0, 64, 6, 0, 0)
		b = append(b, src[:4]...)
		b = append(b, dst[:4]...)
		cs := ^fold(sum(b[ipStart:ipStart+20], 0))
		binary.BigEndian.PutUint16(b[ipStart+10:], cs)
	}
	tcpStart := len(b)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint32(b, p.seq)
	b = binary.BigEndian.AppendUint32(b, p.ack)
	b = append(b, byte(tcpHdr/4)<<4, p.flags)
	b = binary.BigEndian.AppendUint16(b, p.win)
	b = append(b, 0, 0, 0, 0) // checksum, urgent pointer
	if p.flags&fSYN != 0 {
		// MSS, NOP, window scale 7, SACK permitted, NOP, NOP.
		b = append(b, 2, 4, byte(c.mss>>8), byte(c.mss), 1, 3, 3, 7, 4, 2, 1, 1)
	}
	// Checksum over the pseudo-header and the header: the payload is zeros.
	var ps uint32
	if c.v6 {
		ps = sum(src[:], 0)
		ps = sum(dst[:], ps)
	} else {
		ps = sum(src[:4], 0)
		ps = sum(dst[:4], ps)
	}
	ps += 6 + uint32(tcpLen)
	binary.BigEndian.PutUint16(b[tcpStart+16:], ^fold(sum(b[tcpStart:], ps)))
	wire := len(b) + int(p.plen)
	if mode != PayloadNone {
		b = append(b, zeros[:p.plen]...)
	}
	return b, len(b), wire
}

func sum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
