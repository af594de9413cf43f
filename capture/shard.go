package capture

import "encoding/binary"

// FlowHash returns a hash of p's 4-tuple that is the same for both
// directions of a connection, so both land on the same worker. It mixes
// each endpoint on its own and adds the two: addition commutes. VLAN tags
// are left out: the directions of one connection may carry different tags
// (or one none), and the connection table decides what tags separate.
func FlowHash(p *Packet) uint32 {
	h := endpointHash(&p.Src, p.SrcPort) + endpointHash(&p.Dst, p.DstPort)
	h ^= uint64(p.Family)
	return uint32(mix64(h) >> 32)
}

func endpointHash(a *Addr, port uint16) uint64 {
	lo := binary.LittleEndian.Uint64(a[:8])
	hi := binary.LittleEndian.Uint64(a[8:])
	return mix64(lo ^ mix64(hi^uint64(port)<<1))
}

// mix64 is the SplitMix64 finalizer: cheap, and every input bit affects
// every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Shard maps a flow hash onto one of n workers.
func Shard(hash uint32, n int) int {
	return int(uint64(hash) * uint64(n) >> 32)
}
