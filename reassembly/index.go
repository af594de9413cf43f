package reassembly

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"

	"github.com/tcptap/tcptap/capture"
)

// keyOf returns the direction-free key of p and whether p's sender is the
// key's lower endpoint. Addresses compare as big-endian numbers, which is
// their byte order.
func keyOf(p *capture.Packet) (Key, bool) {
	k := Key{Family: p.Family, VNI: p.Tunnel.VirtualNetwork()}
	switch p.VLANCount {
	case 0:
	case 1:
		k.VLAN = uint32(p.VLAN[0])
	default:
		k.VLAN = uint32(p.VLAN[0])<<12 | uint32(p.VLAN[1])
	}
	s0, s1 := binary.BigEndian.Uint64(p.Src[:8]), binary.BigEndian.Uint64(p.Src[8:])
	d0, d1 := binary.BigEndian.Uint64(p.Dst[:8]), binary.BigEndian.Uint64(p.Dst[8:])
	srcLo := s0 < d0 || s0 == d0 && (s1 < d1 || s1 == d1 && p.SrcPort <= p.DstPort)
	if srcLo {
		k.LoAddr, k.LoPort, k.HiAddr, k.HiPort = p.Src, p.SrcPort, p.Dst, p.DstPort
	} else {
		k.LoAddr, k.LoPort, k.HiAddr, k.HiPort = p.Dst, p.DstPort, p.Src, p.SrcPort
	}
	return k, srcLo
}

// hashSeed keys a table's hash function, so that nobody outside can choose
// 4-tuples that collide (the index is open addressing: a flood of colliding
// keys would make every lookup walk them).
type hashSeed [5]uint64

func newHashSeed() hashSeed {
	return hashSeed{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}
}

// mix is the folded 128-bit product, wyhash's mixing step.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash returns k's hash under seed s.
func (s *hashSeed) hash(k *Key) uint64 {
	a0, a1 := binary.LittleEndian.Uint64(k.LoAddr[:8]), binary.LittleEndian.Uint64(k.LoAddr[8:])
	b0, b1 := binary.LittleEndian.Uint64(k.HiAddr[:8]), binary.LittleEndian.Uint64(k.HiAddr[8:])
	w := uint64(k.LoPort) | uint64(k.HiPort)<<16 | uint64(k.VLAN)<<32
	h := mix(a0^s[0], a1^s[1]) ^ mix(b0^s[2], b1^s[3])
	return mix(h^w, s[4]^uint64(k.Family)^uint64(k.VNI)<<8)
}

// connIndex maps keys to connection handles: open addressing with linear
// probing and backward-shift deletion (no tombstones). A slot holds the low
// 32 bits of its key's hash (the home slot is their low bits, so growing
// needs no key) and the handle; 0 is empty. Eight bytes per slot at a load
// of at most 3/4: 11 to 21 bytes per connection.
type connIndex struct {
	slots []uint64
	n     int
}

const minIndexSlots = 64

func (x *connIndex) mask() uint32 { return uint32(len(x.slots) - 1) }

// slotOf packs a hash and a handle.
func slotOf(h uint64, handle uint32) uint64 { return uint64(uint32(h))<<32 | uint64(handle) }

// insert adds handle under hash h (the handle must not be in the index).
func (x *connIndex) insert(h uint64, handle uint32) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	m := x.mask()
	i := uint32(h) & m
	for x.slots[i] != 0 {
		i = (i + 1) & m
	}
	x.slots[i] = slotOf(h, handle)
	x.n++
}

// grow doubles the slots (to minIndexSlots at first) and reinserts.
func (x *connIndex) grow() {
	old := x.slots
	x.slots = make([]uint64, max(minIndexSlots, 2*len(old)))
	m := x.mask()
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := uint32(s>>32) & m
		for x.slots[i] != 0 {
			i = (i + 1) & m
		}
		x.slots[i] = s
	}
}

// remove deletes handle, stored under hash h.
func (x *connIndex) remove(h uint64, handle uint32) {
	m := x.mask()
	want := slotOf(h, handle)
	i := uint32(h) & m
	for x.slots[i] != want {
		if x.slots[i] == 0 {
			return // not there
		}
		i = (i + 1) & m
	}
	// Shift back the entries after i that may not stay past the hole.
	for j := (i + 1) & m; x.slots[j] != 0; j = (j + 1) & m {
		home := uint32(x.slots[j]>>32) & m
		// The entry at j may fill the hole at i when its home is not
		// cyclically within (i, j].
		if (j-home)&m >= (j-i)&m {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}

// bytes returns the index's memory.
func (x *connIndex) bytes() int64 { return int64(cap(x.slots)) * 8 }
