package capture

import "math/bits"

// IPv4 and IPv6 fragment reassembly, reduced to what a summary needs: the
// first tcpMaxHeaderLen bytes of the transport header, which bytes of the
// datagram have arrived, and its total length. The payload itself is never
// kept. Both families share one table (and its bound).
//
// The rules follow Linux's ip_fragment.c and ipv6/reassembly.c (both built
// on inet_fragment.c), so a datagram is rebuilt here when the receiving host
// would rebuild it:
//   - a datagram is keyed by family, source, destination, protocol (IPv6:
//     the fragment header's next header) and identification (16 bits in
//     IPv4, 32 in IPv6), plus the VLAN tags and capture interface so copies
//     seen in different places are not mixed;
//   - it expires FragmentTimeout (ipfrag_time, 30 s) after its first
//     fragment, in packet time;
//   - a fragment wholly inside bytes already received is a duplicate and is
//     dropped alone; one that partly overlaps them poisons the datagram
//     (RFC 5722 reasoning, Linux since 4.19), which is dropped;
//   - the last fragment fixes the length: a second, different one, or data
//     beyond it, drops the datagram, as do empty fragments and datagrams
//     over 65535 bytes (IPv6: a payload over 65535 bytes);
//   - a non-last fragment's length is rounded down to a multiple of 8 in
//     IPv4; in IPv6 such a fragment is dropped alone (Linux answers it with
//     a parameter problem).
//
// Only datagrams whose fragmentable part starts with the TCP header are
// reassembled: other protocols are not TCP, and IPv6 extension headers
// after the fragment header (rare) are counted as not TCP too.
//
// Storage is allocated once: a slot array, a hash index over it and free and
// age lists threaded through the slots by index.

const (
	// maxFragmentIntervals bounds the disjoint byte ranges tracked per
	// datagram; a datagram needing more is dropped. Fragments arriving in
	// order use one range.
	maxFragmentIntervals = 16
	ipv4MaxDatagramLen   = 65535
	noSlot               = -1
)

// fragmentKey identifies the datagram a fragment belongs to.
type fragmentKey struct {
	src, dst  Addr
	id        uint32
	family    Family
	protocol  uint8
	vlanCount uint8
	vlan      [2]uint16
	iface     uint16
}

// byteRange is a half-open range [start, end) of transport-layer bytes.
type byteRange struct{ start, end uint32 }

// fragmentDatagram is one datagram being reassembled.
type fragmentDatagram struct {
	key       fragmentKey
	firstSeen int64 // packet time of the first fragment, for the timeout

	// length is the transport length: exact once haveLast, otherwise the
	// furthest end seen so far (Linux's q.len).
	length    uint32
	haveLast  bool
	fragments uint32 // fragments held, counted as dropped if it dies

	// From the offset-0 fragment: the rebuilt packet's IP fields, as Linux
	// takes them from the first fragment. ipHdrLen is the header before
	// the fragmentable part (IPv6: without the fragment header).
	ttl      uint8
	ipHdrLen uint16

	ranges  [maxFragmentIntervals]byteRange // sorted, disjoint, not adjacent
	nRanges uint8

	header         [tcpMaxHeaderLen]byte
	headerCaptured uint64 // bit i set: header[i] was captured

	hashNext     int32 // next slot in the hash bucket, or in the free list
	older, newer int32 // age list, oldest first
}

// fragmentTable holds the datagrams being reassembled.
type fragmentTable struct {
	timeout        int64 // nanoseconds of packet time
	slots          []fragmentDatagram
	buckets        []int32 // hash index: first slot of each chain
	bucketMask     uint32
	free           int32 // free slots, chained by hashNext
	oldest, newest int32
	inUse          int
}

// init allocates the table's storage for cfg (defaults applied).
func (t *fragmentTable) init(cfg DecoderConfig) {
	cfg = cfg.withDefaults()
	n := cfg.MaxFragmentDatagrams
	t.timeout = int64(cfg.FragmentTimeout)
	t.slots = make([]fragmentDatagram, n)
	nBuckets := 1 << bits.Len(uint(2*n-1)) // a power of two >= 2n: short chains
	t.buckets = make([]int32, nBuckets)
	t.bucketMask = uint32(nBuckets - 1)
	for i := range t.buckets {
		t.buckets[i] = noSlot
	}
	for i := range t.slots {
		t.slots[i].hashNext = int32(i + 1)
	}
	t.slots[n-1].hashNext = noSlot
	t.free = 0
	t.oldest, t.newest = noSlot, noSlot
	t.inUse = 0
}

// hash spreads a key over the buckets. It is not keyed: crafted collisions
// only lengthen one chain, which is bounded by the table size.
func (k *fragmentKey) hash() uint32 {
	h := uint64(be32(k.src[:]))<<32 | uint64(be32(k.dst[:]))
	if k.family == IPv6 {
		for i := 4; i < 16; i += 4 {
			h = (h ^ uint64(be32(k.src[i:]))<<32 ^ uint64(be32(k.dst[i:]))) * 0x9e3779b97f4a7c15
		}
	}
	h ^= (uint64(k.id)<<24 | uint64(k.family)<<16 | uint64(k.protocol)<<8 | uint64(k.vlanCount)) * 0x9e3779b97f4a7c15
	h ^= (uint64(k.vlan[0])<<32 | uint64(k.vlan[1])<<16 | uint64(k.iface)) * 0xc2b2ae3d27d4eb4f
	h *= 0xff51afd7ed558ccd
	return uint32(h >> 32)
}

func (t *fragmentTable) lookup(k *fragmentKey, bucket uint32) int32 {
	for i := t.buckets[bucket]; i != noSlot; i = t.slots[i].hashNext {
		if t.slots[i].key == *k {
			return i
		}
	}
	return noSlot
}

// insert takes a free slot (evicting the oldest datagram if there is none)
// for a new datagram and links it in as the newest.
func (t *fragmentTable) insert(k *fragmentKey, bucket uint32, now int64, stats *DecodeStats) int32 {
	if t.free == noSlot {
		t.drop(t.oldest, stats)
	}
	i := t.free
	s := &t.slots[i]
	t.free = s.hashNext
	*s = fragmentDatagram{key: *k, firstSeen: now, older: t.newest, newer: noSlot}
	s.hashNext = t.buckets[bucket]
	t.buckets[bucket] = i
	if t.newest != noSlot {
		t.slots[t.newest].newer = i
	} else {
		t.oldest = i
	}
	t.newest = i
	t.inUse++
	return i
}

// release unlinks slot i and returns it to the free list.
func (t *fragmentTable) release(i int32) {
	s := &t.slots[i]
	bucket := s.key.hash() & t.bucketMask
	if t.buckets[bucket] == i {
		t.buckets[bucket] = s.hashNext
	} else {
		for j := t.buckets[bucket]; j != noSlot; j = t.slots[j].hashNext {
			if t.slots[j].hashNext == i {
				t.slots[j].hashNext = s.hashNext
				break
			}
		}
	}
	if s.older != noSlot {
		t.slots[s.older].newer = s.newer
	} else {
		t.oldest = s.newer
	}
	if s.newer != noSlot {
		t.slots[s.newer].older = s.older
	} else {
		t.newest = s.older
	}
	s.hashNext = t.free
	t.free = i
	t.inUse--
}

// drop discards datagram i, counting its fragments as dropped.
func (t *fragmentTable) drop(i int32, stats *DecodeStats) {
	stats.dropFragments(t.slots[i].key.family, uint64(t.slots[i].fragments))
	t.release(i)
}

// dropFragments counts n fragments of the family as dropped.
func (s *DecodeStats) dropFragments(f Family, n uint64) {
	if f == IPv6 {
		s.IPv6FragmentsDropped += n
	} else {
		s.FragmentsDropped += n
	}
}

// expire drops the datagrams whose first fragment is older than the
// timeout. Datagrams are created in packet-time order (give or take
// sources that interleave), so only the oldest end needs looking at.
func (t *fragmentTable) expire(now int64, stats *DecodeStats) {
	for t.oldest != noSlot && now-t.slots[t.oldest].firstSeen > t.timeout {
		t.drop(t.oldest, stats)
	}
}

// addIPv4Fragment adds a fragment of an IPv4 TCP datagram whose IP fields
// are already in p (see addFragment).
func (d *Decoder) addIPv4Fragment(data []byte, dataLen, offset int, more bool, p *Packet) outcome {
	d.Stats.Fragments++
	return d.addFragment(data, dataLen, offset, more, uint32(p.IPID), p)
}

// addIPv6Fragment adds a fragment of an IPv6 TCP datagram whose IP fields
// are already in p, p.IPHdrLen being the headers before the fragment
// header (see addFragment).
func (d *Decoder) addIPv6Fragment(data []byte, dataLen, offset int, more bool, id uint32, p *Packet) outcome {
	d.Stats.IPv6Fragments++
	if more && dataLen%8 != 0 {
		d.Stats.IPv6FragmentsDropped++ // RFC 8200 section 4.5: a parameter problem
		return outcomeCounted
	}
	return d.addFragment(data, dataLen, offset, more, id, p)
}

// addFragment adds a fragment of a TCP datagram whose IP fields are already
// in p. data is the fragment's captured payload, dataLen its length by the
// IP header, offset its byte offset in the datagram, more its MF flag and
// id the datagram's identification. When the fragment completes the
// datagram the rebuilt TCP segment is decoded into p.
func (d *Decoder) addFragment(data []byte, dataLen, offset int, more bool, id uint32, p *Packet) outcome {
	t := &d.frags
	if t.slots == nil {
		t.init(d.config)
	}
	stats := &d.Stats
	t.expire(p.Timestamp, stats)

	key := fragmentKey{
		src:       p.Src,
		dst:       p.Dst,
		id:        id,
		family:    p.Family,
		protocol:  ipProtocolTCP,
		vlanCount: p.VLANCount,
		vlan:      p.VLAN,
		iface:     p.Interface,
	}
	// The largest datagram: IPv4 counts its header in the 16-bit total
	// length, IPv6 only what follows the fixed header.
	maxLen := ipv4MaxDatagramLen - int(p.IPHdrLen)
	if p.Family == IPv6 {
		maxLen = ipv4MaxDatagramLen - (int(p.IPHdrLen) - ipv6HeaderLen)
	}
	bucket := key.hash() & t.bucketMask
	i := t.lookup(&key, bucket)
	if i == noSlot {
		i = t.insert(&key, bucket, p.Timestamp, stats)
	}
	s := &t.slots[i]
	s.fragments++

	start, end := uint32(offset), uint32(offset+dataLen)
	if !more {
		if end < s.length || (s.haveLast && end != s.length) {
			t.drop(i, stats)
			return outcomeCounted
		}
		s.haveLast = true
		s.length = end
	} else {
		end &^= 7
		if end > s.length {
			if s.haveLast {
				t.drop(i, stats)
				return outcomeCounted
			}
			s.length = end
		}
	}
	if end <= start || int(s.length) > maxLen {
		t.drop(i, stats)
		return outcomeCounted
	}

	switch s.addRange(start, end) {
	case rangeDuplicate:
		s.fragments--
		stats.dropFragments(p.Family, 1)
		return outcomeCounted
	case rangeOverlap, rangeTooMany:
		t.drop(i, stats)
		return outcomeCounted
	}

	if start < tcpMaxHeaderLen {
		n := copy(s.header[start:min(end, tcpMaxHeaderLen)], data)
		s.headerCaptured |= (uint64(1)<<n - 1) << start
	}
	if start == 0 {
		s.ttl = p.TTL
		s.ipHdrLen = p.IPHdrLen
	}

	if !s.haveLast || s.nRanges != 1 || s.ranges[0].start != 0 || s.ranges[0].end != s.length {
		return outcomeCounted
	}

	// Complete. The packet takes the first fragment's header fields and
	// the last fragment's time and frame lengths.
	if p.Family == IPv6 {
		stats.IPv6FragmentsDone++
	} else {
		stats.FragmentsDone++
	}
	p.Fragmented = true
	p.TTL = s.ttl
	p.IPHdrLen = s.ipHdrLen
	p.IPLen = uint32(s.ipHdrLen) + s.length
	captured := bits.TrailingZeros64(^s.headerCaptured) // contiguous from byte 0
	o := d.decodeTCP(s.header[:min(captured, int(s.length))], int(s.length), p)
	t.release(i)
	return o
}

// Results of adding a byte range to a datagram.
const (
	rangeAdded = iota
	rangeDuplicate
	rangeOverlap
	rangeTooMany
)

// addRange records [start, end) as received, merging it with adjacent
// ranges.
func (s *fragmentDatagram) addRange(start, end uint32) int {
	n := int(s.nRanges)
	// First range that ends at or after start: the only candidates to
	// touch the new one start here.
	i := 0
	for i < n && s.ranges[i].end < start {
		i++
	}
	if i < n && s.ranges[i].start < end {
		// Overlaps ranges[i] (touching at an edge is not overlapping).
		if s.ranges[i].start <= start && end <= s.ranges[i].end {
			return rangeDuplicate
		}
		if s.ranges[i].end > start {
			return rangeOverlap
		}
	}
	// Now ranges[i] either starts at or after end, or ends exactly at
	// start. Merge with it and/or the next one when they touch.
	if i < n && s.ranges[i].end == start {
		if i+1 < n && s.ranges[i+1].start < end {
			return rangeOverlap
		}
		s.ranges[i].end = end
		if i+1 < n && s.ranges[i+1].start == end {
			s.ranges[i].end = s.ranges[i+1].end
			copy(s.ranges[i+1:n], s.ranges[i+2:n])
			s.nRanges--
		}
		return rangeAdded
	}
	if i < n && s.ranges[i].start == end {
		s.ranges[i].start = start
		return rangeAdded
	}
	if n == maxFragmentIntervals {
		return rangeTooMany
	}
	copy(s.ranges[i+1:n+1], s.ranges[i:n])
	s.ranges[i] = byteRange{start, end}
	s.nRanges++
	return rangeAdded
}
