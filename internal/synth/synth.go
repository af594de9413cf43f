// Package synth generates deterministic synthetic TCP captures for
// benchmarks and tests: a classic pcap (Ethernet, microsecond timestamps)
// of many interleaved connections with the mix of performance issue 8:
// mostly small segments, about 10 % IPv6, about 10 % VLAN-tagged, a few %
// retransmitted data segments, zero-window episodes with window probes,
// keepalives, and every kind of ending (FIN in either order, RST from either
// side, refused, unanswered SYN, retransmission, persist and keepalive
// timeouts, still open).
//
// The same Config always yields the same bytes: every connection draws from
// its own random stream seeded by (Seed, index), and packets of different
// connections are merged by (timestamp, connection index).
//
// The package depends on nothing else of tcptap, so any package's tests can
// use it.
package synth

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"github.com/tcptap/tcptap/capture"
)

// Payload selects what data segments carry.
type Payload uint8

// Payload modes.
const (
	// PayloadSmall: data segments of 1 to a few hundred bytes, captured
	// whole (the default: "mostly small segments").
	PayloadSmall Payload = iota
	// PayloadNone: the same segment sizes on the wire, but only the headers
	// are captured (as with a short snap length): the smallest file.
	PayloadNone
	// PayloadMSS: responses in full-sized (MSS) segments, captured whole.
	PayloadMSS
)

// ParsePayload parses "small", "none" or "mss".
func ParsePayload(s string) (Payload, error) {
	switch s {
	case "small", "":
		return PayloadSmall, nil
	case "none":
		return PayloadNone, nil
	case "mss":
		return PayloadMSS, nil
	}
	return 0, fmt.Errorf("payload %q: want none, small or mss", s)
}

func (p Payload) String() string {
	switch p {
	case PayloadSmall:
		return "small"
	case PayloadNone:
		return "none"
	case PayloadMSS:
		return "mss"
	}
	return fmt.Sprintf("Payload(%d)", uint8(p))
}

// Config describes a capture.
type Config struct {
	// Connections is the number of connections (at least 1).
	Connections int
	// Packets is the target number of packets; the generator lands within
	// a few % of it (short endings such as refused connections take fewer
	// packets than their share, which the other connections make up).
	// It must be at least 20 per connection.
	Packets int
	Seed    uint64
	Payload Payload
	// Duration is the capture's time span in packet time (0: 60 s).
	// Connections start in its first three quarters; still-open ones run
	// to its end.
	DurationMicros int64
	// VXLAN wraps every frame in VXLAN (UDP 4789, VNI 1 + the connection's
	// index mod 16) from 192.0.2.1 to 192.0.2.2, as a cloud's traffic
	// mirroring delivers it: the same connections, 50 bytes more a frame.
	VXLAN bool
}

// DefaultDuration is the default capture span in microseconds.
const DefaultDuration = 60_000_000

// Validate reports a configuration the generator cannot honour.
func (c Config) Validate() error {
	switch {
	case c.Connections < 1:
		return errors.New("connections: want at least 1")
	case c.Packets < 20*c.Connections:
		return fmt.Errorf("packets %d: want at least 20 per connection (%d)", c.Packets, 20*c.Connections)
	case c.Connections > 1<<24:
		return errors.New("connections: at most 16777216")
	case c.Payload > PayloadMSS:
		return fmt.Errorf("payload %d: unknown mode", c.Payload)
	case c.DurationMicros < 0 || (c.DurationMicros > 0 && c.DurationMicros < 30_000_000):
		return errors.New("duration: want 0 (default) or at least 30 s")
	}
	return nil
}

// Kind is how a generated connection behaves and ends.
type Kind uint8

// Connection kinds. Expected gives the reason code tcptap should assign with
// its default configuration (the client is the local side).
const (
	CloseClientFirst  Kind = iota // client FIN first, then server FIN: AN
	CloseServerFirst              // server FIN first: PN
	ResetByClient                 // client RST after data: SR
	ResetByServer                 // server RST after data: RR
	Refused                       // SYN answered by RST|ACK: RF
	SYNUnanswered                 // SYN retried with backoff, never answered: ST
	FINThenReset                  // client FIN, server keeps sending, client RST: AA
	RetransmitTimeout             // client data retransmitted with backoff, then silence: RT
	PersistTimeout                // server window 0, client probes, then silence or RST: PT
	KeepaliveTimeout              // unanswered keepalives, then the prober's RST: KT
	StillOpen                     // runs to the capture's end: OP
	NumKinds
)

var kindInfo = [NumKinds]struct {
	name, code string
	weight     int // per mille of connections
}{
	CloseClientFirst:  {"close-client-first", "AN", 390},
	CloseServerFirst:  {"close-server-first", "PN", 200},
	ResetByClient:     {"reset-by-client", "SR", 60},
	ResetByServer:     {"reset-by-server", "RR", 60},
	Refused:           {"refused", "RF", 60},
	SYNUnanswered:     {"syn-unanswered", "ST", 40},
	FINThenReset:      {"fin-then-reset", "AA", 30},
	RetransmitTimeout: {"retransmit-timeout", "RT", 30},
	PersistTimeout:    {"persist-timeout", "PT", 30},
	KeepaliveTimeout:  {"keepalive-timeout", "KT", 30},
	StillOpen:         {"still-open", "OP", 70},
}

func (k Kind) String() string {
	if k < NumKinds {
		return kindInfo[k].name
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Expected returns the reason code tcptap's classifier should give a
// connection of this kind with its default thresholds and the client as
// the local side.
func (k Kind) Expected() string {
	if k < NumKinds {
		return kindInfo[k].code
	}
	return ""
}

// Stats describe a generated capture.
type Stats struct {
	Packets     int
	Bytes       int64 // bytes written, pcap headers included
	Connections int
	ByKind      [NumKinds]int
	IPv6        int // connections over IPv6
	VLAN        int // connections with an 802.1Q tag
	// Packet counts of the features.
	Retransmissions int // data segments sent again (retransmission timeouts included)
	ZeroWindows     int // zero-window advertisements
	WindowProbes    int // probes of a zero window
	Keepalives      int // keepalive probes
	// Peak connections open at once (first packet seen, last not yet).
	MaxOpen int
	// Timestamps of the first and last packet, microseconds since the epoch.
	First, Last int64
}

// Expected returns the number of connections expected per reason code.
func (s *Stats) Expected() map[string]int {
	m := map[string]int{}
	for k := Kind(0); k < NumKinds; k++ {
		if s.ByKind[k] > 0 {
			m[k.Expected()] += s.ByKind[k]
		}
	}
	return m
}

// Epoch is the first connection's start, microseconds since the Unix epoch
// (2024-01-01T00:00:00Z).
const Epoch = 1_704_067_200_000_000

// Generate writes the capture cfg describes to w.
func Generate(w io.Writer, cfg Config) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	g := newGen(cfg)
	bw := bufio.NewWriterSize(w, 1<<20)
	var st Stats
	st.Connections = cfg.Connections
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // Ethernet
	if _, err := bw.Write(hdr[:]); err != nil {
		return st, err
	}
	st.Bytes = int64(len(hdr))
	frame := make([]byte, 0, 2048)
	var rec [16]byte
	open := 0
	for g.h.Len() > 0 {
		c := g.h.items[0]
		if c.pkts == nil {
			c.build(g)
			st.ByKind[c.kind]++
			if c.v6 {
				st.IPv6++
			}
			if c.vlan != 0 {
				st.VLAN++
			}
			st.Retransmissions += c.retrans
			st.ZeroWindows += c.zeroWins
			st.WindowProbes += c.probes
			st.Keepalives += c.keepalives
			open++
			st.MaxOpen = max(st.MaxOpen, open)
		}
		p := &c.pkts[c.next]
		var capLen, wireLen int
		frame, capLen, wireLen = c.frame(frame[:0], p, g.cfg.Payload)
		if g.cfg.VXLAN {
			frame, capLen, wireLen = wrapVXLAN(frame, capLen, wireLen, c.idx)
		}
		ts := Epoch + p.t
		if st.Packets == 0 {
			st.First = ts
		}
		st.Last = ts
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts/1e6))
		binary.LittleEndian.PutUint32(rec[4:], uint32(ts%1e6))
		binary.LittleEndian.PutUint32(rec[8:], uint32(capLen))
		binary.LittleEndian.PutUint32(rec[12:], uint32(wireLen))
		bw.Write(rec[:])
		if _, err := bw.Write(frame); err != nil {
			return st, err
		}
		st.Packets++
		st.Bytes += int64(len(rec) + len(frame))
		c.next++
		if c.next == len(c.pkts) {
			c.pkts = c.pkts[:0:0] // non-nil: built
			heap.Pop(&g.h)
			open--
		} else {
			c.at = c.pkts[c.next].t
			heap.Fix(&g.h, 0)
		}
	}
	return st, bw.Flush()
}

type gen struct {
	cfg      Config
	duration int64
	h        connHeap
}

func newGen(cfg Config) *gen {
	g := &gen{cfg: cfg, duration: cfg.DurationMicros}
	if g.duration == 0 {
		g.duration = DefaultDuration
	}
	// First pass: each connection's kind, start and packet weight, so the
	// packet target can be shared out among the connections that carry data.
	conns := make([]*conn, cfg.Connections)
	fixed, weights := 0.0, 0.0
	for i := range conns {
		c := &conn{idx: i, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)*0x9e3779b97f4a7c15+1))}
		r := c.rng.IntN(1000)
		for k := Kind(0); k < NumKinds; k++ {
			if r < kindInfo[k].weight {
				c.kind = k
				break
			}
			r -= kindInfo[k].weight
		}
		span := g.duration * 3 / 4
		switch c.kind {
		case SYNUnanswered, RetransmitTimeout, PersistTimeout, KeepaliveTimeout:
			span = g.duration / 2 // leave room for the silence that ends them
		}
		c.at = c.rng.Int64N(span)
		// Heavy-ish tail: most connections are short, a few carry a lot.
		c.weight = 0.2 + c.rng.ExpFloat64()
		switch c.kind {
		case Refused:
			fixed += 2
		case SYNUnanswered:
			fixed += 3
		default:
			weights += c.weight
		}
		conns[i] = c
	}
	avail := float64(cfg.Packets) - fixed
	for _, c := range conns {
		c.budget = max(14, int(math.Round(avail*c.weight/weights)))
	}
	g.h.items = conns
	heap.Init(&g.h)
	return g
}

// connHeap orders connections by their next packet's time, then index.
type connHeap struct{ items []*conn }

func (h *connHeap) Len() int { return len(h.items) }
func (h *connHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	return a.at < b.at || (a.at == b.at && a.idx < b.idx)
}
func (h *connHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *connHeap) Push(x any)    { h.items = append(h.items, x.(*conn)) }
func (h *connHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	return x
}

// BenchConfig is the capture the stage benchmarks share: 200k packets of
// 4,000 connections, the 2M/40k mix at a tenth of the size.
var BenchConfig = Config{Connections: 4000, Packets: 200_000, Seed: 1, Payload: PayloadSmall}

// Bytes returns the capture cfg describes, in memory.
func Bytes(cfg Config) ([]byte, Stats, error) {
	var buf bytes.Buffer
	buf.Grow(cfg.Packets * 120)
	st, err := Generate(&buf, cfg)
	return buf.Bytes(), st, err
}

// WriteFile writes the capture cfg describes to a new file at path.
func WriteFile(path string, cfg Config) (Stats, error) {
	f, err := os.Create(path)
	if err != nil {
		return Stats{}, err
	}
	st, err := Generate(f, cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return st, err
}

// vxlanOverhead is the outer Ethernet, IPv4, UDP and VXLAN headers.
const vxlanOverhead = 14 + 20 + 8 + 8

// wrapVXLAN returns frame inside VXLAN; the outer UDP source port and the
// VNI depend on the connection, as a VTEP's flow hash would.
func wrapVXLAN(frame []byte, capLen, wireLen, conn int) ([]byte, int, int) {
	var h [vxlanOverhead]byte
	copy(h[0:], []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00})
	ip := h[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+8+wireLen))
	ip[6] = 0x40 // DF
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	binary.BigEndian.PutUint16(ip[10:], capture.IPv4HeaderChecksum(ip))
	udp := h[34:42]
	binary.BigEndian.PutUint16(udp[0:], uint16(49152+conn%16384))
	binary.BigEndian.PutUint16(udp[2:], 4789)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+8+wireLen))
	vx := h[42:50]
	vx[0] = 0x08
	vni := uint32(1 + conn%16)
	vx[4], vx[5], vx[6] = byte(vni>>16), byte(vni>>8), byte(vni)
	out := append(frame[len(frame):], h[:]...) // after frame's bytes, in its spare capacity
	out = append(out, frame...)
	frame = append(frame[:0], out...)
	return frame, capLen + vxlanOverhead, wireLen + vxlanOverhead
}
