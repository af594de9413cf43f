package reassembly

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/tcptap/tcptap/capture"
)

// MemoryPerConnectionBound is issue 8's budget: bytes of heap per tracked
// open connection (table, index and connection state; trace records are
// the trace quota's).
const MemoryPerConnectionBound = 512

// memoryTestConns is how many connections TestMemoryPerConnection holds:
// 200,000 by default (about 0.1 GB), TCPTAP_MEMORY_CONNS to change it, e.g.
//
//	TCPTAP_MEMORY_CONNS=1000000 go test ./reassembly -run TestMemoryPerConnection -v -count=1
func memoryTestConns(t *testing.T) int {
	n := 200_000
	if testing.Short() {
		n = 50_000
	}
	if s := os.Getenv("TCPTAP_MEMORY_CONNS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1000 || v > 1<<26 {
			t.Fatalf("TCPTAP_MEMORY_CONNS=%q: want a number of connections from 1000 to %d", s, 1<<26)
		}
		n = v
	}
	return n
}

// heapBytes returns the live heap after a full collection: the bytes of
// allocated objects and of the spans that hold them.
func heapBytes() (alloc, inuse uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.HeapInuse
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes, -1 when
// unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// population builds connection i's segments: the client 10.x.y.z:port
// (unique per i) talking to 10.99.0.1:443.
type population struct {
	base int64 // first timestamp
	p    capture.Packet
}

func newPopulation() *population {
	s := &population{base: 1_700_000_000e9}
	s.p = capture.Packet{Family: capture.IPv4, Options: capture.TCPOptions{WScale: -1}}
	s.p.Dst = capture.Addr{10, 99, 0, 1}
	return s
}

// segment returns connection i's segment at time t, from the client when
// fromClient.
func (s *population) segment(i int, t int64, fromClient bool, flags capture.Flags, seq, ack, n uint32) *capture.Packet {
	p := &s.p
	client := capture.Addr{10, byte(i >> 24), byte(i >> 16), byte(i >> 8)}
	cport := uint16(1024 + i&0xff)
	server := capture.Addr{10, 99, 0, 1}
	if fromClient {
		p.Src, p.SrcPort, p.Dst, p.DstPort = client, cport, server, 443
	} else {
		p.Src, p.SrcPort, p.Dst, p.DstPort = server, 443, client, cport
	}
	p.Timestamp = s.base + t
	p.Flags, p.Seq, p.Ack, p.PayloadLen, p.IPLen, p.Window = flags, seq, ack, n, 40+n, 64240
	if flags.Has(capture.FlagSYN) {
		p.Options = capture.TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true}
	} else {
		p.Options = capture.TCPOptions{WScale: -1}
	}
	return p
}

const (
	popISNClient = 1000
	popISNServer = 500000
)

// synOnly feeds n connections that each sent one SYN (a SYN flood).
func (s *population) synOnly(tab *Table, n int) {
	for i := 0; i < n; i++ {
		tab.Packet(s.segment(i, int64(i)*1000, true, capture.FlagSYN, popISNClient, 0, 0))
	}
}

// established feeds n connections through the handshake and two rounds of
// data each way (11 segments each): the typical held connection.
func (s *population) established(tab *Table, n int) {
	const syn, ack = capture.FlagSYN, capture.FlagACK
	for i := 0; i < n; i++ {
		t := int64(i) * 1000
		cs, ss := uint32(popISNClient), uint32(popISNServer)
		tab.Packet(s.segment(i, t, true, syn, cs, 0, 0))
		tab.Packet(s.segment(i, t+10_000, false, syn|ack, ss, cs+1, 0))
		cs, ss = cs+1, ss+1
		tab.Packet(s.segment(i, t+20_000, true, ack, cs, ss, 0))
		s.dataRounds(tab, i, t+30_000, &cs, &ss, 2)
	}
}

// dataRounds sends rounds of data each way on connection i, each
// acknowledged.
func (s *population) dataRounds(tab *Table, i int, t int64, cs, ss *uint32, rounds int) {
	const (
		ack, psh   = capture.FlagACK, capture.FlagPSH
		cLen, sLen = 100, 300
	)
	for r := 0; r < rounds; r++ {
		tab.Packet(s.segment(i, t, true, psh|ack, *cs, *ss, cLen))
		*cs += cLen
		tab.Packet(s.segment(i, t+5_000, false, ack, *ss, *cs, 0))
		tab.Packet(s.segment(i, t+6_000, false, psh|ack, *ss, *cs, sLen))
		*ss += sLen
		tab.Packet(s.segment(i, t+11_000, true, ack, *cs, *ss, 0))
		t += 20_000
	}
}

// TestMemoryPerConnection measures the heap a table holds per open
// connection, for a flood of SYN-only connections and for established
// connections that exchanged data, and holds it to issue 8's budget of 512
// bytes (tracing off: the flight recorder is the trace quota's). It also
// checks that more packets on the same connections do not grow the heap.
func TestMemoryPerConnection(t *testing.T) {
	n := memoryTestConns(t)
	cfg := DefaultConfig()
	cfg.MaxConnections = n
	for _, pop := range []struct {
		name string
		feed func(s *population, tab *Table, n int)
	}{
		{"syn-only", (*population).synOnly},
		{"established", (*population).established},
	} {
		t.Run(pop.name, func(t *testing.T) {
			finished := 0
			alloc0, inuse0 := heapBytes()
			tab := NewTable(cfg, 0, 1, func(*Conn) { finished++ })
			s := newPopulation()
			pop.feed(s, tab, n)
			alloc1, inuse1 := heapBytes()
			if tab.Len() != n || finished != 0 {
				t.Fatalf("table holds %d connections (%d finished), want %d", tab.Len(), finished, n)
			}
			perAlloc := float64(alloc1-alloc0) / float64(n)
			perInuse := float64(inuse1-inuse0) / float64(n)
			ms := tab.Memory()
			t.Logf("%d %s connections: %.1f bytes/connection of live heap (HeapAlloc), %.1f of heap spans (HeapInuse); "+
				"the table counts %.1f (connection %d bytes, %d close and %d rare extensions); process peak RSS %.1f MiB",
				n, pop.name, perAlloc, perInuse, float64(ms.Bytes)/float64(n), unsafe.Sizeof(tracked{}), ms.CloseExts, ms.RareExts,
				float64(peakRSS())/(1<<20))
			if perAlloc > MemoryPerConnectionBound || perInuse > MemoryPerConnectionBound {
				t.Errorf("%.1f bytes/connection (HeapAlloc), %.1f (HeapInuse): over the %d-byte budget",
					perAlloc, perInuse, MemoryPerConnectionBound)
			}
			if ms.CloseExts != 0 || ms.RareExts != 0 {
				t.Errorf("%d close and %d rare extensions for connections that closed nothing and had no anomaly", ms.CloseExts, ms.RareExts)
			}

			if pop.name == "established" {
				// More data on every connection: the heap stays put.
				for i := 0; i < n; i++ {
					cs, ss := uint32(popISNClient+1+200), uint32(popISNServer+1+600)
					s.dataRounds(tab, i, int64(n)*1000+int64(i)*1000+100_000, &cs, &ss, 2)
				}
				alloc2, _ := heapBytes()
				if grew := int64(alloc2) - int64(alloc1); grew > 1<<20 {
					t.Errorf("%d more segments on the same connections grew the heap by %d bytes", 8*n, grew)
				}
				if tab.Len() != n {
					t.Errorf("table holds %d connections after more data, want %d", tab.Len(), n)
				}
			}
			runtime.KeepAlive(tab)
		})
	}
}

// BenchmarkTableHeldConnections applies data segments spread over 200,000
// held, established connections (one op is one segment), where the
// connections' state no longer fits in the CPU caches and its size and
// locality decide the speed.
func BenchmarkTableHeldConnections(b *testing.B) {
	const n = 200_000
	cfg := DefaultConfig()
	cfg.MaxConnections = n
	tab := NewTable(cfg, 0, 1, nil)
	s := newPopulation()
	s.established(tab, n)
	next := make([]uint32, n) // each client's next sequence number
	for i := range next {
		next[i] = popISNClient + 1 + 200
	}
	t0 := int64(n)*1000 + 1_000_000
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := (i * 7919) % n // a stride that visits every connection, out of order
		tab.Packet(s.segment(k, t0+int64(i), true, capture.FlagPSH|capture.FlagACK, next[k], popISNServer+1+600, 100))
		next[k] += 100
	}
	b.StopTimer()
	if tab.Len() != n {
		b.Fatalf("table holds %d connections, want %d", tab.Len(), n)
	}
}
