package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Classic pcap layout (tcpdump.org/manpages/pcap-savefile.5.html): a 24-byte
// file header, then records of a 16-byte header and the captured bytes.
const (
	pcapFileHeaderLen   = 24
	pcapRecordHeaderLen = 16
)

// How a file's version says its record headers order caplen and wirelen.
// Files before version 2.3 put the wire length first; some 2.3 writers did
// and some did not (libpcap's and Wireshark's rule).
const (
	pcapLengthsInOrder = iota
	pcapLengthsSwapped
	pcapLengthsMaybeSwapped
)

// PcapReader reads a classic libpcap capture file: either byte order,
// microsecond or nanosecond timestamps, one link type for the whole file.
// It implements Source and OffsetSource and does not allocate per frame.
type PcapReader struct {
	in          input
	bigEndian   bool
	nanosPerRaw int64 // 1000 for microsecond files, 1 for nanosecond files
	lengths     int   // pcapLengths*: whether record lengths are swapped
	linkType    LinkType
	snaplen     uint32
	buf         []byte // frame bytes, reused; grows up to MaxRecordLen
	err         error  // sticky: once set, the reader is finished
}

// NewPcapReader reads the file header of a classic pcap capture from r and
// returns a reader for its records. It does not recognise pcapng or gzip
// input; NewReader does. Close does not close r.
func NewPcapReader(r io.Reader) (*PcapReader, error) {
	return newPcapReader(newInput(r, readBufferSize))
}

func newPcapReader(in input) (*PcapReader, error) {
	r := &PcapReader{in: in}
	var h [pcapFileHeaderLen]byte
	if err := r.in.readFull(h[:]); err != nil {
		if err == io.EOF {
			return nil, ErrEmptyInput
		}
		return nil, r.in.readError(0, "file header", err)
	}
	switch magic := h[:4]; {
	case bytes.Equal(magic, magicPcapMicroLE):
		r.nanosPerRaw = 1000
	case bytes.Equal(magic, magicPcapMicroBE):
		r.bigEndian, r.nanosPerRaw = true, 1000
	case bytes.Equal(magic, magicPcapNanoLE):
		r.nanosPerRaw = 1
	case bytes.Equal(magic, magicPcapNanoBE):
		r.bigEndian, r.nanosPerRaw = true, 1
	default:
		return nil, &FormatError{Offset: 0, Msg: fmt.Sprintf("not a pcap file: magic number 0x%x", magic)}
	}
	major, minor := r.u16(h[4:6]), r.u16(h[6:8])
	switch {
	case major == 2 && minor < 3, major == 543: // 543.0: DG/UX tcpdump
		r.lengths = pcapLengthsSwapped
	case major == 2 && minor == 3:
		r.lengths = pcapLengthsMaybeSwapped
	case major == 2:
		r.lengths = pcapLengthsInOrder
	default:
		return nil, &FormatError{Offset: 4, Msg: fmt.Sprintf("unsupported pcap version %d.%d", major, minor)}
	}
	// h[8:16] are thiszone and sigfigs, always 0 in practice and unused.
	r.snaplen = r.u32(h[16:20])
	// The upper bits of the link-type field may carry an FCS length
	// (LINKTYPE_FCS_LEN); frames then end with the FCS, which decoding
	// by IP length ignores, so only the link type proper is kept.
	r.linkType = LinkType(r.u32(h[20:24]) & 0xffff)
	return r, nil
}

func (r *PcapReader) u16(b []byte) uint16 {
	if r.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *PcapReader) u32(b []byte) uint32 {
	if r.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// Next returns the next frame. Frame.Data is valid until the next call.
//
// A record whose captured length exceeds the file's snap length is accepted
// (some writers do not truncate to the snap length they declare) up to
// MaxRecordLen; one whose captured length exceeds its wire length gets
// WireLen = len(Data). Input that ends inside a record is a *FormatError
// with the record's offset and Err io.ErrUnexpectedEOF; input that ends
// exactly after a record is io.EOF.
func (r *PcapReader) Next() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	start := r.in.off
	hdr, err := r.in.take(pcapRecordHeaderLen, &r.buf)
	if err != nil {
		if err == io.EOF {
			r.err = io.EOF
			return Frame{}, io.EOF
		}
		return r.fail(r.in.readError(start, "packet record", err))
	}
	sec, frac := r.u32(hdr[0:4]), r.u32(hdr[4:8])
	caplen, wirelen := r.u32(hdr[8:12]), r.u32(hdr[12:16])
	if r.lengths == pcapLengthsSwapped || r.lengths == pcapLengthsMaybeSwapped && caplen > wirelen {
		caplen, wirelen = wirelen, caplen
	}
	if caplen > MaxRecordLen {
		return r.fail(&FormatError{Offset: start, Msg: fmt.Sprintf(
			"packet record: captured length %d exceeds the maximum of %d", caplen, MaxRecordLen)})
	}
	wirelen = max(wirelen, caplen)
	data, err := r.in.take(int(caplen), &r.buf)
	if err != nil {
		return r.fail(r.in.readError(start, "packet record", err))
	}
	return Frame{
		Data:      data,
		Timestamp: int64(sec)*1e9 + int64(frac)*r.nanosPerRaw,
		WireLen:   wirelen,
		LinkType:  r.linkType,
	}, nil
}

func (r *PcapReader) fail(err error) (Frame, error) {
	r.err = err
	return Frame{}, err
}

// LinkType returns the link type of every frame in the file.
func (r *PcapReader) LinkType() LinkType { return r.linkType }

// Snaplen returns the snap length the file header declares.
func (r *PcapReader) Snaplen() uint32 { return r.snaplen }

// Nanosecond reports whether the file records nanosecond timestamps rather
// than microsecond ones (Frame.Timestamp is in nanoseconds either way).
func (r *PcapReader) Nanosecond() bool { return r.nanosPerRaw == 1 }

// Offset returns the number of input bytes consumed so far (see
// OffsetSource).
func (r *PcapReader) Offset() int64 { return r.in.off }

// Size returns the total input size when known, else -1 (see the Size
// function).
func (r *PcapReader) Size() int64 { return r.in.size }

// Close closes the file if the reader came from Open; later calls to Next
// fail.
func (r *PcapReader) Close() error {
	r.err = errSourceClosed
	return r.in.close()
}
