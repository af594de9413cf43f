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

// recentSegment is one remembered segment: a hash of the fields a copy
// shares with its original, and of the path it came by.
type recentSegment struct {
	segment, path uint64
	time          int64
}

// isCopy reports whether p is a copy of a recently decoded segment that
// came by another path, and remembers p otherwise.
func (d *Decoder) isCopy(p *Packet) bool {
	seg := segmentHash(p)
	path := mix64(uint64(d.depth) | uint64(p.Tunnel.Depth)<<8 | uint64(p.VLANCount)<<16 |
		uint64(p.VLAN[0])<<24 | uint64(p.VLAN[1])<<36 | uint64(p.Interface)<<48)
	if t := p.Tunnel.Innermost(); t != nil {
		path ^= mix64(uint64(t.Type)<<32 | uint64(t.ID) ^ endpointHash(&t.Src, 0) ^ endpointHash(&t.Dst, 1))
	}
	for i := range d.recent {
		r := &d.recent[i]
		if r.segment == seg && r.path != path && p.Timestamp-r.time <= CopyWindow && p.Timestamp >= r.time {
			return true
		}
	}
	d.recent[d.recentNext] = recentSegment{segment: seg, path: path, time: p.Timestamp}
	d.recentNext = (d.recentNext + 1) % recentSegments
	return false
}

// segmentHash hashes what two copies of a segment have in common.
func segmentHash(p *Packet) uint64 {
	h := endpointHash(&p.Src, p.SrcPort) ^ mix64(endpointHash(&p.Dst, p.DstPort))
	h ^= mix64(uint64(p.Seq)<<32 | uint64(p.Ack))
	h ^= mix64(uint64(p.Flags)<<48 | uint64(p.Window)<<32 | uint64(p.IPID)<<16 | uint64(p.Checksum))
	h ^= mix64(uint64(p.PayloadLen)<<32 | uint64(p.Options.TSVal))
	return h
}
