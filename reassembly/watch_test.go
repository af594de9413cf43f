package reassembly

import (
	"testing"

	"github.com/tcptap/tcptap/capture"
)

// watchedPorts returns the client ports of the connections on t's watch
// list, as EachWatched hands them out.
func watchedPorts(t *Table) map[uint16]bool {
	out := map[uint16]bool{}
	t.EachWatched(func(c *Conn) bool {
		out[c.Ends[Client].Port] = true
		return true
	})
	return out
}

// onPort moves a segment to the connection from client port port.
func onPort(p capture.Packet, port uint16, fromClient bool) capture.Packet {
	if fromClient {
		p.SrcPort = port
	} else {
		p.DstPort = port
	}
	return p
}

func TestWatchList(t *testing.T) {
	tab := NewTable(DefaultConfig(), 0, 1, nil)
	handshake := []seg{
		{0, true, S, 100, 0, 0, 0},
		{ms(1), false, S | A, 500, 101, 0, 0},
		{ms(2), true, A, 101, 501, 0, 0},
		{ms(3), true, P | A, 101, 501, 100, 0},
	}
	apply := func(port uint16, segs ...seg) {
		for _, s := range segs {
			p := onPort(packetOf(s), port, s.fromA)
			tab.Packet(&p)
		}
	}
	// 1: healthy; 2: retransmits, unanswered; 3: retransmits, then the
	// ACK covers the data; 4: SYN retried, never answered; 5: probes a
	// zero window.
	for port := uint16(1); port <= 3; port++ {
		apply(port, handshake...)
	}
	apply(1, seg{ms(4), false, A, 501, 201, 0, 0})
	apply(2, seg{ms(300), true, P | A, 101, 501, 100, 0})
	apply(3, seg{ms(300), true, P | A, 101, 501, 100, 0})
	apply(4, seg{0, true, S, 100, 0, 0, 0}, seg{ms(1000), true, S, 100, 0, 0, 0})
	apply(5, handshake[:3]...)
	apply(5, seg{ms(10), true, P | A, 101, 501, 50, 0}, seg{ms(11), false, A, 501, 151, 0, 0xffff},
		seg{ms(300), true, A, 150, 501, 0, 0})
	if got := watchedPorts(tab); len(got) != 4 || !got[2] || !got[3] || !got[4] || !got[5] {
		t.Fatalf("watched %v, want ports 2, 3, 4, 5", got)
	}
	// The ACK answers 3's retransmission: it leaves the list.
	apply(3, seg{ms(301), false, A, 501, 201, 0, 0})
	if got := watchedPorts(tab); len(got) != 3 || got[3] {
		t.Fatalf("watched %v after the ACK, want ports 2, 4, 5", got)
	}
	if tab.Watched() != 3 {
		t.Errorf("Watched() = %d, want 3", tab.Watched())
	}
	// A RST ends 2; once finalized it is off the list (and its handle
	// may be reused without leaving a stale entry).
	apply(2, seg{ms(400), true, R | A, 201, 501, 0, 0})
	tab.Flush(tab.now)
	if tab.Watched() != 0 || len(tab.watch) != 0 {
		t.Errorf("watch list %v after Flush, want empty", tab.watch)
	}
	// Reuse the freed handles: new connections start off the list.
	for port := uint16(10); port < 20; port++ {
		apply(port, handshake...)
	}
	if got := watchedPorts(tab); len(got) != 0 {
		t.Errorf("watched %v, want none", got)
	}
}

func TestEachOpenFrom(t *testing.T) {
	tab := NewTable(DefaultConfig(), 1, 3, nil) // IDs 1, 4, 7, ...
	const n = 50
	for port := uint16(1); port <= n; port++ {
		// Touch connections out of ID order so the LRU list is shuffled.
		port := port*7%n + 1
		p := onPort(packetOf(seg{0, true, S, 100, 0, 0, 0}), port, true)
		tab.Packet(&p)
	}
	var ids []uint64
	from, pages := uint64(0), 0
	for {
		var page []uint64
		more := tab.EachOpenFrom(from, 8, func(c *Conn) { page = append(page, c.ID) })
		pages++
		ids = append(ids, page...)
		if !more {
			break
		}
		if len(page) != 8 {
			t.Fatalf("page of %d with more to come", len(page))
		}
		from = page[len(page)-1] + 1
	}
	if len(ids) != n || pages != 7 {
		t.Fatalf("%d IDs in %d pages, want %d in 7", len(ids), pages, n)
	}
	for i, id := range ids {
		if want := uint64(1 + 3*i); id != want {
			t.Fatalf("ID %d at %d, want %d (ascending, none missed)", id, i, want)
		}
	}
	if more := tab.EachOpenFrom(ids[n-1]+1, 8, func(*Conn) { t.Error("a connection past the last ID") }); more {
		t.Error("more after the last ID")
	}
}

func TestEachOpenFromNoAllocs(t *testing.T) {
	tab := NewTable(DefaultConfig(), 0, 1, nil)
	for port := uint16(1); port <= 100; port++ {
		p := onPort(packetOf(seg{0, true, S, 100, 0, 0, 0}), port, true)
		tab.Packet(&p)
	}
	var sum uint64
	fn := func(c *Conn) { sum += c.ID }
	tab.EachOpenFrom(0, 10, fn)
	if a := testing.AllocsPerRun(100, func() { tab.EachOpenFrom(5, 10, fn) }); a != 0 {
		t.Errorf("EachOpenFrom allocates %v times per page", a)
	}
}
