package capture

import "time"

// DecodeStats counts frames the decoder did not turn into a TCP segment, by
// cause. All fields are plain counters owned by the decoder's goroutine.
//
// Every frame is counted in Frames and in at most one of TCP, NonIP, NonTCP,
// UnsupportedLink, TruncatedLink, TruncatedIP, BadIPHeader, TruncatedTCP and
// BadTCPHeader. Fragments of TCP datagrams are counted in Fragments (IPv4)
// or IPv6Fragments instead (other fragments are NonTCP); the fragment that
// completes a datagram is also counted by the outcome of decoding the
// rebuilt segment, usually TCP. The fragment counters of each family
// balance: Fragments = fragments of completed datagrams + FragmentsDropped +
// fragments still waiting in the table, and likewise for IPv6.
type DecodeStats struct {
	Frames           uint64 // frames offered to Decode
	TCP              uint64 // TCP segments produced
	NonIP            uint64 // link payload is not IPv4/IPv6 (ARP, LLDP, ...)
	NonTCP           uint64 // IP but not TCP (UDP, ICMP, ...)
	UnsupportedLink  uint64 // link type tcptap does not decode
	TruncatedLink    uint64 // frame shorter than its link-layer header
	TruncatedIP      uint64 // IP header cut short by the capture
	BadIPHeader      uint64 // bad version, header length or total length
	TruncatedTCP     uint64 // TCP header cut short by the capture
	BadTCPHeader     uint64 // bad data offset
	BadTCPOption     uint64 // malformed options (segment still produced)
	Fragments        uint64 // IPv4 fragments of TCP datagrams received
	FragmentsDone    uint64 // datagrams completed from fragments
	FragmentsDropped uint64 // fragments dropped: table full, timeout, overlap, bad
	IPv6Fragments    uint64 // IPv6 fragments of TCP datagrams received

	// IPv6 datagrams completed from fragments and IPv6 fragments dropped,
	// as the IPv4 ones.
	IPv6FragmentsDone    uint64
	IPv6FragmentsDropped uint64
	// TruncatedTCPOptions: the capture cut the TCP options (segment still
	// produced from the fixed header, Packet.OptionsTruncated set).
	TruncatedTCPOptions uint64
}

// Add adds o's counts to s, to total the decoders of several workers.
func (s *DecodeStats) Add(o *DecodeStats) {
	s.Frames += o.Frames
	s.TCP += o.TCP
	s.NonIP += o.NonIP
	s.NonTCP += o.NonTCP
	s.UnsupportedLink += o.UnsupportedLink
	s.TruncatedLink += o.TruncatedLink
	s.TruncatedIP += o.TruncatedIP
	s.BadIPHeader += o.BadIPHeader
	s.TruncatedTCP += o.TruncatedTCP
	s.BadTCPHeader += o.BadTCPHeader
	s.BadTCPOption += o.BadTCPOption
	s.TruncatedTCPOptions += o.TruncatedTCPOptions
	s.Fragments += o.Fragments
	s.FragmentsDone += o.FragmentsDone
	s.FragmentsDropped += o.FragmentsDropped
	s.IPv6Fragments += o.IPv6Fragments
	s.IPv6FragmentsDone += o.IPv6FragmentsDone
	s.IPv6FragmentsDropped += o.IPv6FragmentsDropped
}

// Defaults for DecoderConfig fields left at zero.
const (
	// DefaultMaxFragmentDatagrams is how many IP datagrams (IPv4 and IPv6
	// together) are reassembled at once by default.
	DefaultMaxFragmentDatagrams = 256
	// DefaultFragmentTimeout is how long a datagram waits for its missing
	// fragments: Linux's net.ipv4.ipfrag_time. IPv6 datagrams wait as
	// long (Linux's net.ipv6.ip6frag_time is 60 s): one bound for one table.
	DefaultFragmentTimeout = 30 * time.Second
	// maxFragmentDatagramsLimit caps MaxFragmentDatagrams so table indices
	// fit in int32 and a typo cannot ask for gigabytes (each datagram slot
	// is about 290 bytes).
	maxFragmentDatagramsLimit = 1 << 20
)

// DecoderConfig sizes a Decoder's fragment table (IPv4 and IPv6). The zero
// value gives the defaults.
type DecoderConfig struct {
	// MaxFragmentDatagrams bounds the IP datagrams being reassembled at
	// once. When the table is full the oldest datagram is dropped to make
	// room. Zero or negative means DefaultMaxFragmentDatagrams.
	MaxFragmentDatagrams int
	// FragmentTimeout is how long, in packet time, a datagram may wait for
	// its missing fragments after its first fragment arrived. Zero or
	// negative means DefaultFragmentTimeout.
	FragmentTimeout time.Duration
}

// withDefaults returns c with zero fields replaced by the defaults.
func (c DecoderConfig) withDefaults() DecoderConfig {
	if c.MaxFragmentDatagrams <= 0 {
		c.MaxFragmentDatagrams = DefaultMaxFragmentDatagrams
	}
	c.MaxFragmentDatagrams = min(c.MaxFragmentDatagrams, maxFragmentDatagramsLimit)
	if c.FragmentTimeout <= 0 {
		c.FragmentTimeout = DefaultFragmentTimeout
	}
	return c
}

// Decoder turns frames into Packet summaries. It is not safe for concurrent
// use; each capture goroutine owns one. The zero value is usable and has the
// default configuration.
type Decoder struct {
	Stats DecodeStats

	config DecoderConfig
	frags  fragmentTable // allocated on the first fragment
}

// NewDecoder returns a decoder with an empty fragment table sized by cfg.
// The table's storage is allocated here, so reassembly does not allocate
// per fragment.
func NewDecoder(cfg DecoderConfig) *Decoder {
	d := &Decoder{config: cfg.withDefaults()}
	d.frags.init(d.config)
	return d
}

// outcome is what decoding one frame led to; Decode turns it into a counter.
type outcome uint8

const (
	outcomeTCP outcome = iota
	outcomeNonIP
	outcomeNonTCP
	outcomeUnsupportedLink
	outcomeTruncatedLink
	outcomeTruncatedIP
	outcomeBadIPHeader
	outcomeTruncatedTCP
	outcomeBadTCPHeader
	// outcomeCounted: the frame was counted where it was handled (a
	// fragment held or dropped).
	outcomeCounted
)

// Decode decodes f into p. It reports whether f carried a TCP segment (or
// completed a fragmented one); otherwise the cause is counted in d.Stats.
// It never keeps a reference to f.Data and does not allocate per call.
//
// p is zeroed first, so no field of an earlier packet survives. When Decode
// returns false the contents of p are unspecified.
func (d *Decoder) Decode(f *Frame, p *Packet) bool {
	*p = Packet{
		Timestamp: f.Timestamp,
		Interface: f.Interface,
		WireLen:   f.WireLen,
		CapLen:    uint32(len(f.Data)),
	}
	d.Stats.Frames++

	var o outcome
	switch f.LinkType {
	case LinkTypeEthernet:
		o = d.decodeEthernet(f.Data, p, false)
	case LinkTypeLinuxSLL:
		o = d.decodeLinuxSLL(f.Data, p)
	case LinkTypeLinuxSLL2:
		o = d.decodeLinuxSLL2(f.Data, p)
	case LinkTypeNull:
		o = d.decodeNull(f.Data, p)
	case LinkTypeLoop:
		o = d.decodeLoop(f.Data, p)
	case LinkTypeRaw, LinkTypeRawOld, LinkTypeRawOld2:
		o = d.decodeIP(f.Data, p)
	case LinkTypeIPv4:
		o = d.decodeIPv4(f.Data, p)
	case LinkTypeIPv6:
		o = d.decodeIPv6(f.Data, p)
	default:
		o = outcomeUnsupportedLink
	}
	if p.Fragmented {
		p.IPOffset = 0 // the headers came from several frames
	}
	return d.count(o)
}

// count records o in d.Stats and reports whether it produced a segment.
func (d *Decoder) count(o outcome) bool {
	s := &d.Stats
	switch o {
	case outcomeTCP:
		s.TCP++
		return true
	case outcomeNonIP:
		s.NonIP++
	case outcomeNonTCP:
		s.NonTCP++
	case outcomeUnsupportedLink:
		s.UnsupportedLink++
	case outcomeTruncatedLink:
		s.TruncatedLink++
	case outcomeTruncatedIP:
		s.TruncatedIP++
	case outcomeBadIPHeader:
		s.BadIPHeader++
	case outcomeTruncatedTCP:
		s.TruncatedTCP++
	case outcomeBadTCPHeader:
		s.BadTCPHeader++
	}
	return false
}

// decodeIP decodes an IP packet whose version is only known from its first
// nibble (raw IP link types).
func (d *Decoder) decodeIP(data []byte, p *Packet) outcome {
	if len(data) == 0 {
		return outcomeTruncatedIP
	}
	switch data[0] >> 4 {
	case 4:
		return d.decodeIPv4(data, p)
	case 6:
		return d.decodeIPv6(data, p)
	}
	return outcomeBadIPHeader
}

// be16 and be32 read big-endian integers; callers have checked the length.
func be16(b []byte) uint16 {
	_ = b[1]
	return uint16(b[0])<<8 | uint16(b[1])
}

func be32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// onWireLen is how many bytes of data, a suffix of the frame p was decoded
// from, were on the wire: the captured bytes plus what the snap length cut.
// A zero WireLen means the source did not say; nothing is capped then.
func onWireLen(data []byte, p *Packet) int {
	switch {
	case p.WireLen == 0:
		return int(^uint(0) >> 1)
	case p.WireLen > p.CapLen:
		return len(data) + int(p.WireLen-p.CapLen)
	}
	return len(data)
}
