package reassembly

import (
	"testing"
	"unsafe"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
)

// TestFillRecordOverwritesAll writes a record into a slot full of stale
// bytes and into a zeroed one: they must come out equal, so fillRecord
// leaves no field of an older record behind, and hold what it was given.
func TestFillRecordOverwritesAll(t *testing.T) {
	c := &tracked{}
	c.ends[Client].state, c.ends[Server].state = StateEstablished, StateFinWait1
	c.ends[Client].window, c.ends[Client].winScale = 100, 7
	c.ends[Client].isn, c.ends[Client].highSeq, c.ends[Client].highAck = 1000, 2000, 3000
	c.ends[Client].flags = efSawSYN | efSentAny
	p := &capture.Packet{Timestamp: 42, Seq: 7, Ack: 8, PayloadLen: 9, Window: 10, Checksum: 11,
		IPID: 12, Flags: capture.FlagACK | capture.FlagPSH, IPLen: 13, Family: capture.IPv6}
	for _, n := range []int{0, 20, 60, flightrec.MaxHeaderBytes} {
		hdr := make([]byte, n)
		for i := range hdr {
			hdr[i] = byte(i + 1)
		}
		var stale, fresh flightrec.PacketRecord
		b := unsafe.Slice((*byte)(unsafe.Pointer(&stale)), unsafe.Sizeof(stale))
		for i := range b {
			b[i] = 0xa5
		}
		fillRecord(&stale, c, p, Server, Retransmission|DupAck, hdr)
		fillRecord(&fresh, c, p, Server, Retransmission|DupAck, hdr)
		if stale != fresh {
			t.Fatalf("%d header bytes: over stale bytes\n%+v\nover zeroes\n%+v", n, stale, fresh)
		}
		want := flightrec.PacketRecord{Timestamp: 42, Seq: 7, Ack: 8, PayloadLen: 9, Window: 10, Checksum: 11, IPID: 12,
			Flags: p.Flags, From: Server, States: [2]State{StateEstablished, StateFinWait1},
			Analysis: Retransmission | DupAck, WireLen: 13, Family: capture.IPv6, HdrLen: uint8(n),
			Snap: [2]flightrec.SeqSnapshot{{ISN: 1000, HighSeq: 2000, HighAck: 3000, Window: 100 << 7}}}
		copy(want.Hdr[:], hdr)
		if fresh != want {
			t.Fatalf("%d header bytes: got\n%+v\nwant\n%+v", n, fresh, want)
		}
	}
}
