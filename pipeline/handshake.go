package pipeline

import (
	"net/netip"
	"sort"
	"sync"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/reassembly"
)

// MaxListeners bounds the listeners each worker remembers, and so the rows
// of Listeners: when full, the one whose last SYN-ACK is oldest goes.
const MaxListeners = 4096

// handshakes counts a worker's opens as the handshake segments go by
// (TCP-MIB's tcpActiveOpens and tcpPassiveOpens) and records the local-side
// endpoints that answer SYNs: the listeners. The local side of a
// connection is its endpoint inside the local networks when exactly one
// is, else its client (the classifier's rule), so without local networks
// every connection is its client's active open and nothing listens.
//
// Only SYN and SYN-ACK segments reach it, and it allocates only when it
// remembers a new listener or a new connection awaiting its SYN-ACK.
type handshakes struct {
	localNets []netip.Prefix
	active    uint64
	passive   uint64
	// awaiting holds the connections a remote SYN opened towards the local
	// side, until the local side's SYN-ACK (a passive open) or the end of
	// the connection: so a retransmitted SYN-ACK counts once.
	awaiting  map[reassembly.Key]struct{}
	listeners listenerSet
}

func newHandshakes(localNets []netip.Prefix) *handshakes {
	return &handshakes{localNets: localNets, awaiting: map[reassembly.Key]struct{}{}, listeners: listenerSet{max: MaxListeners, head: -1, tail: -1}}
}

func (h *handshakes) isLocal(a capture.Addr, f capture.Family) bool {
	ip := capture.AddrOf(a, f)
	for _, p := range h.localNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// segment accounts a SYN or SYN-ACK p; created tells whether p opened a new
// connection in the table.
func (h *handshakes) segment(p *capture.Packet, created bool) {
	if !p.Flags.Has(capture.FlagSYN) {
		return
	}
	synAck := p.Flags.Has(capture.FlagACK)
	// The server is the local side when it alone is in the local networks.
	serverLocal := false
	if len(h.localNets) > 0 {
		client, server := p.Src, p.Dst
		if synAck {
			client, server = p.Dst, p.Src
		}
		serverLocal = h.isLocal(server, p.Family) && !h.isLocal(client, p.Family)
	}
	switch {
	case !synAck && created && !serverLocal:
		h.active++
	case !synAck && created:
		h.awaiting[reassembly.KeyOf(p)] = struct{}{}
	case synAck && serverLocal:
		h.listeners.seen(listenerKey{addr: p.Src, port: p.SrcPort, family: p.Family}, p.Timestamp)
		if created {
			h.passive++ // its SYN was not captured
			return
		}
		if len(h.awaiting) == 0 {
			return
		}
		k := reassembly.KeyOf(p)
		if _, ok := h.awaiting[k]; ok {
			delete(h.awaiting, k)
			h.passive++
		}
	}
}

// ended forgets a connection the table let go of.
func (h *handshakes) ended(c *reassembly.Conn) {
	if len(h.awaiting) > 0 {
		delete(h.awaiting, c.Key)
	}
}

type listenerKey struct {
	addr   capture.Addr
	port   uint16
	family capture.Family
}

// listenerSet is a bounded set of listeners, least recently seen first: a
// doubly linked list threaded through a slice by index, so touching an
// entry allocates nothing.
type listenerSet struct {
	mu         sync.Mutex
	max        int
	index      map[listenerKey]int32
	nodes      []listenerNode
	head, tail int32 // least and most recently seen; -1 when empty
}

type listenerNode struct {
	key        listenerKey
	last       int64 // packet time of its last SYN-ACK
	prev, next int32 // -1: none
}

// seen records a SYN-ACK from k at packet time ts.
func (s *listenerSet) seen(k listenerKey, ts int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[k]; ok {
		s.nodes[i].last = max(s.nodes[i].last, ts)
		s.unlink(i)
		s.pushBack(i)
		return
	}
	if s.index == nil {
		s.index = map[listenerKey]int32{}
	}
	var i int32
	if len(s.nodes) < s.max {
		i = int32(len(s.nodes))
		s.nodes = append(s.nodes, listenerNode{})
	} else {
		i = s.head // evict the least recently seen
		delete(s.index, s.nodes[i].key)
		s.unlink(i)
	}
	s.nodes[i].key, s.nodes[i].last = k, ts
	s.index[k] = i
	s.pushBack(i)
}

func (s *listenerSet) unlink(i int32) {
	n := &s.nodes[i]
	if n.prev >= 0 {
		s.nodes[n.prev].next = n.next
	} else {
		s.head = n.next
	}
	if n.next >= 0 {
		s.nodes[n.next].prev = n.prev
	} else {
		s.tail = n.prev
	}
}

func (s *listenerSet) pushBack(i int32) {
	n := &s.nodes[i]
	n.prev, n.next = s.tail, -1
	if s.tail < 0 {
		s.head = i
	} else {
		s.nodes[s.tail].next = i
	}
	s.tail = i
}

// mergeInto adds the set's listeners to last (endpoint: packet time of its
// last SYN-ACK), keeping the later time of an endpoint already there.
func (s *listenerSet) mergeInto(last map[netip.AddrPort]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := s.head; i >= 0; i = s.nodes[i].next {
		n := &s.nodes[i]
		ap := netip.AddrPortFrom(capture.AddrOf(n.key.addr, n.key.family), n.key.port)
		if t, ok := last[ap]; !ok || n.last > t {
			last[ap] = n.last
		}
	}
}

// Listeners returns the local-side endpoints the workers saw answering a
// SYN with a SYN-ACK (the listening sockets a tap can infer), sorted, at
// most MaxListeners: the most recently seen when there are more.
func Listeners(workers []*Worker) []netip.AddrPort {
	last := map[netip.AddrPort]int64{}
	for _, w := range workers {
		w.opens.listeners.mergeInto(last)
	}
	out := make([]netip.AddrPort, 0, len(last))
	for ap := range last {
		out = append(out, ap)
	}
	if len(out) > MaxListeners {
		sort.Slice(out, func(i, j int) bool { return last[out[i]] > last[out[j]] })
		out = out[:MaxListeners]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}
