package capture

// Copies of one segment. A capture can hold the same segment twice: a
// switch mirrors both the access port and the uplink where the segment
// travels encapsulated (FabricPath, a GRE tunnel), or a sensor receives
// both a local SPAN and a remote ERSPAN feed. Counting both would double
// the connection's packets and make the second look like a
// retransmission. The decoder therefore drops a segment that is an exact
// copy of one it decoded shortly before, when the copy came by another
// path (another encapsulation, VLAN or capture interface): a real
// retransmission travels the same path as its original and, besides,
// usually carries a new IPv4 ID or TCP timestamp.

// DuplicatePolicy says what the decoder does with copies of a segment.
type DuplicatePolicy uint8

// Duplicate policies.
const (
	// DuplicatesDrop counts a segment seen again by another path within
	// CopyWindow once (DecodeStats.Copies counts the copies dropped).
	DuplicatesDrop DuplicatePolicy = iota
	// DuplicatesKeep decodes every frame, as Wireshark does.
	DuplicatesKeep
)

// ParseDuplicatePolicy parses "drop" or "keep".
func ParseDuplicatePolicy(s string) (DuplicatePolicy, bool) {
	switch s {
	case "drop":
		return DuplicatesDrop, true
	case "keep":
		return DuplicatesKeep, true
	}
	return 0, false
}

func (d DuplicatePolicy) String() string {
	if d == DuplicatesKeep {
		return "keep"
	}
	return "drop"
}

// CopyWindow is how close in time two copies of a segment must be: a
// mirror delivers its copies within microseconds to milliseconds of each
// other.
const CopyWindow = 100_000_000 // 100 ms in nanoseconds

// recentSegments is how many segments the decoder remembers to find
// copies; copies arrive next to each other, with at most a few segments
// of other connections in between.
const recentSegments = 8

// recentSegment is one remembered segment: the fields a copy shares with
// its original, packed, and the path it came by. The TCP checksum covers
// the addresses (the pseudo-header), so they need no slot of their own.
type recentSegment struct {
	seqAck, fields uint64
	path           uint64
	time           int64
}

// isCopy reports whether p is a copy of a recently decoded segment that
// came by another path, and remembers p otherwise. It packs fields rather
// than hashing them: it runs for every segment.
func (d *Decoder) isCopy(p *Packet) bool {
	seqAck := uint64(p.Seq)<<32 | uint64(p.Ack)
	fields := uint64(p.Checksum)<<48 | uint64(p.IPID)<<32 | uint64(p.Window)<<16 | uint64(p.Flags)
	fields ^= uint64(p.PayloadLen)<<20 ^ uint64(p.Options.TSVal) ^ uint64(p.SrcPort)<<36 ^ uint64(p.DstPort)<<4
	path := uint64(d.depth) | uint64(p.Tunnel.Depth)<<8 | uint64(p.VLANCount)<<16 |
		uint64(p.VLAN[0])<<20 | uint64(p.VLAN[1])<<32 | uint64(p.Interface)<<44
	if p.Tunnel.Depth != 0 {
		l := &p.Tunnel.Layers[0]
		path ^= uint64(l.Type)<<56 ^ uint64(l.ID)<<24 ^ uint64(be32(l.Src[0:4])) ^ uint64(be32(l.Dst[0:4]))<<28
	}
	for i := range d.recent {
		r := &d.recent[i]
		if r.seqAck == seqAck && r.fields == fields && r.path != path && p.Timestamp-r.time <= CopyWindow && p.Timestamp >= r.time {
			return true
		}
	}
	d.recent[d.recentNext] = recentSegment{seqAck: seqAck, fields: fields, path: path, time: p.Timestamp}
	d.recentNext = (d.recentNext + 1) % recentSegments
	return false
}
