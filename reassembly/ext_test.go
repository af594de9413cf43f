package reassembly

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
)

// lifecycle feeds one connection's whole life on client port port,
// starting at *now: a handshake, data retransmitted with backoff, a zero
// window and a persist probe, then a FIN close (or a RST when reset). Every
// connection needs both extensions; the next segment after its end lets it
// go (the table lingers only 10 ms).
func lifecycle(tab *Table, now *int64, port uint16, reset bool) {
	seg := func(dt time.Duration, fromClient bool, flags capture.Flags, seq, ack, n uint32, win uint16) {
		*now += int64(dt)
		src, dst := epA, epB
		if !fromClient {
			src, dst = epB, epA
		}
		sa, fam := capture.AddrFrom(src.Addr())
		da, _ := capture.AddrFrom(dst.Addr())
		sp, dp := src.Port(), dst.Port()
		if fromClient {
			sp = port
		} else {
			dp = port
		}
		p := capture.Packet{Timestamp: *now, Src: sa, Dst: da, SrcPort: sp, DstPort: dp, Family: fam,
			Seq: seq, Ack: ack, Flags: flags, Window: win, PayloadLen: n, IPLen: 40 + n,
			Options: capture.TCPOptions{WScale: -1}}
		tab.Packet(&p)
	}
	seg(ms(1), true, S, 100, 0, 0, 1000)
	seg(ms(1), false, S|A, 500, 101, 0, 1000)
	seg(ms(1), true, A, 101, 501, 0, 1000)
	seg(ms(1), true, P|A, 101, 501, 100, 1000)
	for gap := 200; gap <= 800; gap *= 2 {
		seg(ms(gap), true, P|A, 101, 501, 100, 1000) // retransmissions
	}
	seg(ms(1), false, A, 501, 201, 0, 0) // zero window
	seg(ms(200), true, A, 200, 501, 0, 1000)
	seg(ms(1), false, A, 501, 201, 0, 1000) // the window opens
	if reset {
		seg(ms(1), false, R, 501, 0, 0, 0)
		return
	}
	seg(ms(1), true, F|A, 201, 501, 0, 1000)
	seg(ms(1), false, F|A, 501, 202, 0, 1000)
	seg(ms(1), true, A, 202, 502, 0, 1000)
}

// TestExtensionChurnDoesNotAllocate: connections that each take a rare and
// a close extension, retransmit, probe and close, one after the other,
// allocate nothing once the pools are warm: the table reuses slots and
// extensions instead of allocating per connection, let alone per packet.
func TestExtensionChurnDoesNotAllocate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CloseLinger = 10 * time.Millisecond
	var finished, retransmitted, closed int
	tab := NewTable(cfg, 0, 1, func(c *Conn) {
		finished++
		if c.Ends[Client].Retransmissions >= 3 && c.Ends[Server].ZeroWindows > 0 && c.Ends[Client].WindowProbes > 0 {
			retransmitted++
		}
		if c.AnyRST || c.CloseDone {
			closed++
		}
	})
	now := int64(1_700_000_000e9)
	i := 0
	run := func() {
		lifecycle(tab, &now, uint16(40000+i%64), i%3 == 0)
		i++
	}
	for range 1000 {
		run() // warm up the pools
	}
	// Count every allocation (testing.AllocsPerRun rounds an average below
	// one down to zero: a slab chunk every thousand connections would pass).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range 2000 {
		run()
	}
	runtime.ReadMemStats(&m1)
	if n := m1.Mallocs - m0.Mallocs; n != 0 {
		t.Errorf("%d allocations in 2000 connection lifecycles (16 segments each), want 0", n)
	}
	if finished < 2500 || retransmitted != finished || closed != finished {
		t.Errorf("%d connections finished, %d with retransmissions, a zero window and a probe, %d closed: the churn does not take the extension path",
			finished, retransmitted, closed)
	}
	if m := tab.Memory(); m.Connections > 2 || m.CloseExts > 2 || m.RareExts > 2 {
		t.Errorf("after the churn: %+v, want at most the last two connections", m)
	}
}

// TestSmallCountsPast16Bits: the SYN, SYN-ACK, FIN and RST counts keep 16
// bits inline and the rest in the rare extension.
func TestSmallCountsPast16Bits(t *testing.T) {
	const n = 70_000 // past 65,535
	segs := []seg{{0, true, S, 100, 0, 0, 0}}
	for i := 1; i <= n; i++ {
		segs = append(segs, seg{time.Duration(i) * time.Microsecond, false, R | A, 0, 101, 0, 0})
	}
	conns := feed(t, segs)
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	if got := conns[0].Ends[Server].RSTs; got != n {
		t.Errorf("RSTs %d, want %d", got, n)
	}
	if got := conns[0].Ends[Client].SYNs; got != 1 {
		t.Errorf("SYNs %d, want 1", got)
	}
}

// TestWideCountsPast32Bits: packet and byte counts, and Zeek's reassembly
// state, keep 32 bits inline and the rest in the rare extension; a
// transfer past 4 GiB counts right.
func TestWideCountsPast32Bits(t *testing.T) {
	const seg30 = 1 << 30
	segs := []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
	}
	seq := uint32(101)
	for i := 0; i < 5; i++ { // 5 GiB, in order, each acknowledged
		segs = append(segs, seg{ms(3 + 2*i), true, P | A, seq, 501, seg30, 0})
		seq += seg30
		segs = append(segs, seg{ms(4 + 2*i), false, A, 501, seq, 0, 0})
	}
	conns := feed(t, segs)
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	cl := &conns[0].Ends[Client]
	if cl.PayloadBytes != 5*seg30 || cl.IPBytes != 5*(seg30+40)+40+40 || cl.Packets != 7 {
		t.Errorf("client payload %d, IP bytes %d, packets %d; want %d, %d, 7", cl.PayloadBytes, cl.IPBytes, cl.Packets, 5*seg30, 5*(seg30+40)+80)
	}
	if z := &conns[0].Zeek; z.OrigBytes() != 5*seg30 || z.History() != "ShADa" {
		t.Errorf("Zeek orig_bytes %d history %q, want %d and ShADa", z.OrigBytes(), z.History(), 5*seg30)
	}
}

// TestTableZeekMatchesTracker: a table's connection, which keeps Zeek's
// rarely used state only once needed, ends with the history, conn_state and
// sizes of a standalone ZeekTracker (which always has it) fed the same
// segments: a history longer than the inline letters that then flips, and
// a transfer past 4 GiB with holes.
func TestTableZeekMatchesTracker(t *testing.T) {
	// A SYN-ACK, an ACK, then the same data 1001 times with a zero window:
	// "HADWTWTWTWT" (retransmissions and zero windows at 1, 10, 100 and
	// 1000), past the inline letters; then the other side answers and Zeek
	// flips the roles, rewriting the whole history.
	flip := []seg{{0, true, S | A, 1000, 500, 0, 0}, {ms(1), true, A, 1001, 500, 0, 0}}
	for i := 0; i < 1001; i++ {
		flip = append(flip, seg{ms(2 + i), true, P | A, 1001, 500, 10, 0xffff})
	}
	flip = append(flip, seg{ms(2000), false, A, 500, 1011, 0, 0}, seg{ms(2001), false, P | A, 500, 1011, 10, 0})

	big := []seg{{0, true, S, 100, 0, 0, 0}, {ms(1), false, S | A, 500, 101, 0, 0}, {ms(2), true, A, 101, 501, 0, 0}}
	seq := uint32(101)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 40; i++ {
		n := uint32(1<<27 + r.IntN(1<<27))
		if r.IntN(4) > 0 { // the others are holes
			big = append(big, seg{ms(3 + 2*i), true, P | A, seq, 501, n, 0})
		}
		seq += n
		if r.IntN(2) == 0 {
			big = append(big, seg{ms(4 + 2*i), false, A, 501, seq, 0, 0})
		}
	}

	for name, segs := range map[string][]seg{"flip": flip, "big": big} {
		conns := feed(t, segs)
		if len(conns) != 1 {
			t.Fatalf("%s: %d connections, want 1", name, len(conns))
		}
		var z ZeekTracker
		for _, s := range segs {
			p := packetOf(s)
			z.Update(&p, s.fromA == segs[0].fromA)
		}
		got := &conns[0].Zeek
		if got.History() != z.History() || got.ConnState() != z.ConnState() ||
			got.OrigBytes() != z.OrigBytes() || got.RespBytes() != z.RespBytes() || got.OrigIsFirst() != z.OrigIsFirst() {
			t.Errorf("%s: table %q %s %d/%d first %v, tracker %q %s %d/%d first %v", name,
				got.History(), got.ConnState(), got.OrigBytes(), got.RespBytes(), got.OrigIsFirst(),
				z.History(), z.ConnState(), z.OrigBytes(), z.RespBytes(), z.OrigIsFirst())
		}
		// Zeek's flip swaps the case of the history so far and puts '^'
		// first; the new originator's ACK and data follow.
		if h, want := z.History(), "^hadwtwtwtwtAD"; name == "flip" && h != want {
			t.Errorf("flip: history %q, want %q", h, want)
		}
	}
}

// TestConnIndexMatchesMap: random inserts and removals, with hashes that
// collide in their home slots, keep the index equal to a map.
func TestConnIndexMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var x connIndex
	live := map[uint32]uint64{} // handle -> hash
	var handles []uint32
	find := func(h uint64, handle uint32) bool {
		if len(x.slots) == 0 {
			return false
		}
		m := x.mask()
		for i := uint32(h) & m; x.slots[i] != 0; i = (i + 1) & m {
			if x.slots[i] == slotOf(h, handle) {
				return true
			}
		}
		return false
	}
	next := uint32(1)
	for step := 0; step < 200_000; step++ {
		if len(handles) == 0 || len(handles) < 3000 && r.IntN(5) < 3 {
			h := uint64(r.IntN(1024)) // hashes sharing home slots: long probe runs
			if r.IntN(4) == 0 {
				h = r.Uint64()
			}
			x.insert(h, next)
			live[next], handles = h, append(handles, next)
			next++
		} else {
			k := r.IntN(len(handles))
			handle := handles[k]
			handles[k] = handles[len(handles)-1]
			handles = handles[:len(handles)-1]
			x.remove(live[handle], handle)
			if find(live[handle], handle) {
				t.Fatalf("step %d: handle %d still found after removal", step, handle)
			}
			delete(live, handle)
		}
		if step%5000 == 0 || step > 199_900 {
			if x.n != len(live) {
				t.Fatalf("step %d: index holds %d, want %d", step, x.n, len(live))
			}
			for handle, h := range live {
				if !find(h, handle) {
					t.Fatalf("step %d: handle %d (hash %#x) not found", step, handle, h)
				}
			}
		}
	}
}
