package flightrec

import (
	"unsafe"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/tcpstate"
)

// MaxHeaderBytes bounds the IP and TCP header bytes a packet record keeps:
// enough for an IPv6 header with a few extension headers and a TCP header
// with full options (40 + 28 + 60).
const MaxHeaderBytes = 128

// SeqSnapshot is one direction's sequence space after a packet, what the
// vendor's verbose view shows per connection end.
type SeqSnapshot struct {
	ISN     uint32 // initial sequence number (the first seen, when the SYN was not)
	HighSeq uint32 // highest sequence number sent (SYN and FIN count one)
	HighAck uint32 // highest acknowledgment sent
	Window  uint32 // last window advertised, scaled when the scale is known
}

// PacketRecord is one segment as the flight recorder keeps it: the fields
// the vendor's "display tcp trace cache-packet ... verbose" shows that can
// be observed on the wire, tcptap's analysis flags, and the raw IP and TCP
// headers for a faithful export.
type PacketRecord struct {
	Timestamp  int64
	Seq, Ack   uint32
	PayloadLen uint32
	Window     uint16 // raw window field
	Checksum   uint16
	IPID       uint16
	Flags      capture.Flags
	From       tcpstate.Role     // the sender
	States     [2]tcpstate.State // each endpoint's state after the packet, by Role
	Analysis   tcpstate.Analysis
	Snap       [2]SeqSnapshot // by Role
	WireLen    uint32         // IP datagram length on the wire (header + payload)
	HdrLen     uint8          // bytes used in Hdr
	Family     capture.Family
	Hdr        [MaxHeaderBytes]byte // IP header (with extensions) and TCP header
}

// PacketRecordSize is the bytes one record occupies, the unit of the trace
// memory quota.
const PacketRecordSize = int64(unsafe.Sizeof(PacketRecord{}))

// WindowScaled returns the record's window scaled by its sender's shift, as
// the snapshot does.
func (r *PacketRecord) WindowScaled() uint32 { return r.Snap[r.From].Window }
