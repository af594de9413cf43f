package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// pcapng block types and constants (IETF draft-ietf-opsawg-pcapng).
const (
	ngBlockSectionHeader  = 0x0A0D0D0A
	ngBlockInterface      = 1
	ngBlockPacketObsolete = 2
	ngBlockSimplePacket   = 3
	ngBlockNameResolution = 4
	ngBlockInterfaceStats = 5
	ngBlockEnhancedPacket = 6
	ngBlockJournalExport  = 9
	ngBlockDecryptSecrets = 10
	ngBlockCustom         = 0x00000BAD
	ngBlockCustomNoCopy   = 0x40000BAD

	ngByteOrderMagic = 0x1A2B3C4D

	ngOptEndOfOptions = 0
	ngOptTSResol      = 9  // if_tsresol: 1 byte
	ngOptTSOffset     = 14 // if_tsoffset: 8 bytes, signed seconds
	ngOptISBEndTime   = 3  // isb_endtime: 8 bytes, high and low 32 bits of the interface's ticks

	// Smallest total lengths: type, length and trailing length (12 bytes)
	// plus each block's fixed fields.
	ngMinBlockLen          = 12
	ngMinSectionHeaderLen  = 28 // + byte-order magic, version, section length
	ngMinInterfaceLen      = 20 // + link type, reserved, snap length
	ngMinSimplePacketLen   = 16 // + original length
	ngMinPacketLen         = 32 // + interface, timestamp, two lengths (EPB and PB)
	ngMinStatsLen          = 24 // + interface, timestamp (ISB)
	ngPacketFixedFieldsLen = 20

	// maxInterfaces bounds the interfaces of a file: Frame.Interface is a
	// uint16, and the per-section table must not grow without limit.
	maxInterfaces = 1 << 16
)

// ngInterface is what the reader keeps of an Interface Description Block.
type ngInterface struct {
	linkType       LinkType
	snaplen        uint32 // 0: no limit
	index          uint16 // Frame.Interface: position among all IDBs of the file
	ticksPerSecond uint64 // if_tsresol; 1e6 when absent
	offsetNanos    int64  // if_tsoffset, in nanoseconds
}

// nanos converts a timestamp in interface ticks to nanoseconds since the
// epoch, exactly (no rounding of binary resolutions to whole nanoseconds per
// tick). Values beyond the year 2262 wrap.
func (ifc *ngInterface) nanos(ticks uint64) int64 {
	switch ifc.ticksPerSecond {
	case 1e6:
		return int64(ticks)*1e3 + ifc.offsetNanos
	case 1e9:
		return int64(ticks) + ifc.offsetNanos
	}
	sec, frac := ticks/ifc.ticksPerSecond, ticks%ifc.ticksPerSecond
	// frac < ticksPerSecond, so the high word is below the divisor and
	// Div64 cannot panic.
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, ifc.ticksPerSecond)
	return int64(sec)*1e9 + int64(ns) + ifc.offsetNanos
}

// PcapngReader reads a pcapng capture: any number of sections, each with its
// own byte order and interfaces; Enhanced, Simple and obsolete Packet Blocks.
// Interface Statistics Blocks give their isb_endtime (EndTime). Other
// blocks (name resolution, decryption secrets, custom...) are checked for
// framing and skipped. It implements Source, OffsetSource and EndTimeSource
// and does not allocate per frame.
//
// Frame.Interface numbers the Interface Description Blocks of the whole
// file in order, so interfaces of different sections stay distinct.
type PcapngReader struct {
	in        input
	bigEndian bool                     // byte order of the current section
	ifaces    []ngInterface            // interfaces of the current section, by id
	nIfaces   int                      // interfaces of the file so far
	lastTS    int64                    // timestamp of the last frame, for Simple Packet Blocks
	endTime   int64                    // latest isb_endtime read so far, 0 when none
	hdr       [ngMinPacketLen - 4]byte // fixed fields of the current block
	scratch   [8]byte                  // trailing lengths and option values
	buf       []byte                   // frame bytes, reused; grows up to MaxRecordLen
	err       error                    // sticky: once set, the reader is finished

	// The file's first frame's timestamp, once sawFrame (see isbTime).
	firstTS  int64
	sawFrame bool
}

// NewPcapngReader reads the first Section Header Block of a pcapng capture
// from r and returns a reader for the rest. It does not recognise pcap or
// gzip input; NewReader does. Close does not close r.
func NewPcapngReader(r io.Reader) (*PcapngReader, error) {
	return newPcapngReader(newInput(r, readBufferSize))
}

func newPcapngReader(in input) (*PcapngReader, error) {
	r := &PcapngReader{in: in}
	if err := r.in.readFull(r.hdr[:8]); err != nil {
		if err == io.EOF {
			return nil, ErrEmptyInput
		}
		return nil, r.in.readError(0, "section header block", err)
	}
	// The SHB type reads the same in both byte orders.
	if typ := binary.LittleEndian.Uint32(r.hdr[:4]); typ != ngBlockSectionHeader {
		return nil, &FormatError{Offset: 0, Msg: fmt.Sprintf(
			"not a pcapng file: first block has type 0x%08x, not a section header block", typ)}
	}
	if err := r.readSectionHeader(0); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *PcapngReader) u16(b []byte) uint16 {
	if r.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *PcapngReader) u32(b []byte) uint32 {
	if r.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// Next returns the next packet. Frame.Data is valid until the next call.
//
// Simple Packet Blocks carry no timestamp; their frames get the timestamp of
// the previous frame of the file (0 for the first), so that packet time
// never goes backwards.
//
// Any framing error (a bad block length, a trailing length that differs from
// the leading one, a packet longer than its block or than MaxRecordLen, an
// undefined interface, a bad section header) is a *FormatError at the offset
// of the block, after which the reader is finished. Input that ends inside a
// block is a *FormatError with Err io.ErrUnexpectedEOF; input that ends
// exactly after a block is io.EOF.
func (r *PcapngReader) Next() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	for {
		start := r.in.off
		if err := r.in.readFull(r.hdr[:8]); err != nil {
			if err == io.EOF {
				r.err = io.EOF
				return Frame{}, io.EOF
			}
			return r.fail(r.in.readError(start, "block header", err))
		}
		// A section header is recognised in either byte order: its type is a
		// palindrome.
		typ := r.u32(r.hdr[0:4])
		if typ == ngBlockSectionHeader {
			if err := r.readSectionHeader(start); err != nil {
				return r.fail(err)
			}
			continue
		}
		length := r.u32(r.hdr[4:8])
		var err error
		switch typ {
		case ngBlockEnhancedPacket, ngBlockPacketObsolete:
			return r.frame(r.readPacket(start, typ, length))
		case ngBlockSimplePacket:
			return r.frame(r.readSimplePacket(start, length))
		case ngBlockInterface:
			err = r.readInterface(start, length)
		case ngBlockInterfaceStats:
			err = r.readInterfaceStats(start, length)
		default:
			err = r.skipBlock(start, typ, length)
		}
		if err != nil {
			return r.fail(err)
		}
	}
}

// frame finishes Next for a packet block.
func (r *PcapngReader) frame(f Frame, err error) (Frame, error) {
	if err != nil {
		return r.fail(err)
	}
	r.lastTS = f.Timestamp
	if !r.sawFrame {
		r.firstTS, r.sawFrame = f.Timestamp, true
	}
	return f, nil
}

func (r *PcapngReader) fail(err error) (Frame, error) {
	r.err = err
	return Frame{}, err
}

// blockError reports a malformed block.
func blockError(start int64, typ uint32, format string, args ...any) error {
	return &FormatError{Offset: start, Msg: ngBlockName(typ) + ": " + fmt.Sprintf(format, args...)}
}

// ngBlockName names a block type for error messages.
func ngBlockName(typ uint32) string {
	switch typ {
	case ngBlockSectionHeader:
		return "section header block"
	case ngBlockInterface:
		return "interface description block"
	case ngBlockPacketObsolete:
		return "packet block"
	case ngBlockSimplePacket:
		return "simple packet block"
	case ngBlockNameResolution:
		return "name resolution block"
	case ngBlockInterfaceStats:
		return "interface statistics block"
	case ngBlockEnhancedPacket:
		return "enhanced packet block"
	case ngBlockJournalExport:
		return "systemd journal export block"
	case ngBlockDecryptSecrets:
		return "decryption secrets block"
	case ngBlockCustom, ngBlockCustomNoCopy:
		return "custom block"
	}
	return fmt.Sprintf("block of type 0x%08x", typ)
}

// checkLength validates a block's total length: at least the block type's
// minimum and a multiple of 4.
func (r *PcapngReader) checkLength(start int64, typ, length, minLen uint32) error {
	if length < minLen {
		return blockError(start, typ, "block length %d is less than the minimum of %d", length, minLen)
	}
	if length%4 != 0 {
		return blockError(start, typ, "block length %d is not a multiple of 4", length)
	}
	return nil
}

// skipBlock skips a block the reader has no use for, checking its framing.
func (r *PcapngReader) skipBlock(start int64, typ, length uint32) error {
	if err := r.checkLength(start, typ, length, ngMinBlockLen); err != nil {
		return err
	}
	if err := r.in.discard(int64(length) - ngMinBlockLen); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	return r.readTrailer(start, typ, length)
}

// blockData reads the rest of a packet block: room bytes that start with
// the caplen bytes of the frame (then padding and options, skipped), and
// the trailer. When the buffer holds it all, the frame is not copied: the
// returned slice points into the buffer, valid until the next read.
func (r *PcapngReader) blockData(start int64, typ, length uint32, caplen int, room int64) ([]byte, error) {
	if n := room + 4; n <= int64(len(r.in.b.buf)) {
		rest, err := r.in.take(int(n), &r.buf)
		if err != nil {
			return nil, r.in.readError(start, ngBlockName(typ), err)
		}
		if trailing := r.u32(rest[room:]); trailing != length {
			return nil, blockError(start, typ, "trailing length %d does not match %d", trailing, length)
		}
		return rest[:caplen], nil
	}
	r.buf = grow(r.buf, caplen)
	if err := r.in.readFull(r.buf); err != nil {
		return nil, r.in.readError(start, ngBlockName(typ), err)
	}
	if err := r.in.discard(room - int64(caplen)); err != nil {
		return nil, r.in.readError(start, ngBlockName(typ), err)
	}
	if err := r.readTrailer(start, typ, length); err != nil {
		return nil, err
	}
	return r.buf, nil
}

// readTrailer reads the trailing copy of the block length and checks it.
func (r *PcapngReader) readTrailer(start int64, typ, length uint32) error {
	t := r.scratch[:4] // a field: a local array would escape through io.ReadFull
	if err := r.in.readFull(t); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	if trailing := r.u32(t); trailing != length {
		return blockError(start, typ, "trailing length %d does not match %d", trailing, length)
	}
	return nil
}

// readSectionHeader reads the rest of a Section Header Block whose first 8
// bytes are in r.hdr, and starts a new section: new byte order, no
// interfaces.
func (r *PcapngReader) readSectionHeader(start int64) error {
	const typ = ngBlockSectionHeader
	b := r.hdr[:ngMinSectionHeaderLen-4]
	if err := r.in.readFull(b[8:12]); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	switch bom := binary.BigEndian.Uint32(b[8:12]); bom {
	case ngByteOrderMagic:
		r.bigEndian = true
	case bits.ReverseBytes32(ngByteOrderMagic):
		r.bigEndian = false
	default:
		return blockError(start, typ, "unknown byte-order magic 0x%08x", bom)
	}
	length := r.u32(b[4:8])
	if err := r.checkLength(start, typ, length, ngMinSectionHeaderLen); err != nil {
		return err
	}
	if err := r.in.readFull(b[12:24]); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	// 1.2 is accepted as libpcap does: a few writers used it for 1.0.
	if major, minor := r.u16(b[12:14]), r.u16(b[14:16]); major != 1 || minor != 0 && minor != 2 {
		return blockError(start, typ, "unsupported pcapng version %d.%d", major, minor)
	}
	// b[16:24] is the section length, often -1 (unknown); blocks are
	// walked one by one instead.
	if err := r.in.discard(int64(length) - ngMinSectionHeaderLen); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	if err := r.readTrailer(start, typ, length); err != nil {
		return err
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

// readInterface reads an Interface Description Block whose first 8 bytes
// have been read.
func (r *PcapngReader) readInterface(start int64, length uint32) error {
	const typ = ngBlockInterface
	if err := r.checkLength(start, typ, length, ngMinInterfaceLen); err != nil {
		return err
	}
	b := r.hdr[:16]
	if err := r.in.readFull(b[8:16]); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	if r.nIfaces >= maxInterfaces {
		return blockError(start, typ, "more than %d interfaces in the file", maxInterfaces)
	}
	ifc := ngInterface{
		linkType:       LinkType(r.u16(b[8:10])),
		snaplen:        r.u32(b[12:16]),
		index:          uint16(r.nIfaces),
		ticksPerSecond: 1e6,
	}
	// Only the timestamp resolution and offset matter here.
	err := r.readOptions(start, typ, int64(length)-ngMinInterfaceLen,
		func(code, olen uint16) int64 {
			switch {
			case code == ngOptTSResol && olen >= 1:
				return 1
			case code == ngOptTSOffset && olen == 8:
				return 8
			}
			return 0
		},
		func(code uint16, val []byte) error {
			if code == ngOptTSOffset {
				ifc.offsetNanos = int64(r.u64(val)) * 1e9
				return nil
			}
			tps, ok := ngTicksPerSecond(val[0])
			if !ok {
				return blockError(start, typ, "unsupported timestamp resolution if_tsresol=0x%02x", val[0])
			}
			ifc.ticksPerSecond = tps
			return nil
		})
	if err != nil {
		return err
	}
	if err := r.readTrailer(start, typ, length); err != nil {
		return err
	}
	r.ifaces = append(r.ifaces, ifc)
	r.nIfaces++
	return nil
}

// readOptions reads the rest bytes of a block's options (code, length,
// value padded to 4 bytes), asks want how many bytes of each value it needs
// (0: skip it) and gives those to use. Bytes after the end-of-options
// marker, or a stub of fewer than 4, are skipped as other readers do.
func (r *PcapngReader) readOptions(start int64, typ uint32, rest int64, want func(code, olen uint16) int64, use func(code uint16, val []byte) error) error {
	opt := r.scratch[:]
	for rest >= 4 {
		if err := r.in.readFull(opt[:4]); err != nil {
			return r.in.readError(start, ngBlockName(typ), err)
		}
		rest -= 4
		code, olen := r.u16(opt[0:2]), r.u16(opt[2:4])
		if code == ngOptEndOfOptions {
			break
		}
		padded := (int64(olen) + 3) &^ 3
		if padded > rest {
			return blockError(start, typ, "option %d of length %d overruns the block", code, olen)
		}
		rest -= padded
		n := want(code, olen)
		if err := r.in.readFull(opt[:n]); err != nil {
			return r.in.readError(start, ngBlockName(typ), err)
		}
		if err := r.in.discard(padded - n); err != nil {
			return r.in.readError(start, ngBlockName(typ), err)
		}
		if n > 0 {
			if err := use(code, opt[:n]); err != nil {
				return err
			}
		}
	}
	if err := r.in.discard(rest); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	return nil
}

// readInterfaceStats reads an Interface Statistics Block whose first 8
// bytes have been read, keeping its isb_endtime: the time the capture on
// that interface ended, which is later than its last frame when the
// capture went on while nothing arrived. Its other options (counters,
// start time) are skipped.
func (r *PcapngReader) readInterfaceStats(start int64, length uint32) error {
	const typ = ngBlockInterfaceStats
	if err := r.checkLength(start, typ, length, ngMinStatsLen); err != nil {
		return err
	}
	b := r.hdr[:20]
	if err := r.in.readFull(b[8:20]); err != nil {
		return r.in.readError(start, ngBlockName(typ), err)
	}
	id := r.u32(b[8:12])
	if uint64(id) >= uint64(len(r.ifaces)) {
		return blockError(start, typ, "interface id %d is not defined in this section (it has %d interfaces)", id, len(r.ifaces))
	}
	ifc := &r.ifaces[id]
	err := r.readOptions(start, typ, int64(length)-ngMinStatsLen,
		func(code, olen uint16) int64 {
			if code == ngOptISBEndTime && olen == 8 {
				return 8
			}
			return 0
		},
		func(_ uint16, val []byte) error {
			ticks := uint64(r.u32(val[0:4]))<<32 | uint64(r.u32(val[4:8]))
			r.endTime = max(r.endTime, r.isbTime(ifc, ticks))
			return nil
		})
	if err != nil {
		return err
	}
	return r.readTrailer(start, typ, length)
}

// isbTime converts an ISB time option of interface ifc to nanoseconds.
// The format gives it in the interface's resolution, but dumpcap up to
// Wireshark 4.0 writes microseconds whatever if_tsresol says (its
// nanosecond captures then end in January 1970). A time that, read in the
// interface's finer resolution, falls before the file's first frame is
// read as microseconds when that is no earlier than the first frame.
func (r *PcapngReader) isbTime(ifc *ngInterface, ticks uint64) int64 {
	t := ifc.nanos(ticks)
	if ifc.ticksPerSecond > 1e6 && r.sawFrame && t < r.firstTS && ticks <= math.MaxInt64/1000 {
		if us := int64(ticks)*1e3 + ifc.offsetNanos; us >= r.firstTS {
			return us
		}
	}
	return t
}

// EndTime returns the latest isb_endtime of the Interface Statistics Blocks
// read so far, in nanoseconds since the epoch, or 0 when none carried one
// (see EndTimeSource).
func (r *PcapngReader) EndTime() int64 { return r.endTime }

// ngTicksPerSecond decodes if_tsresol: the exponent of a negative power of
// 10, or of 2 when the top bit is set. It fails for resolutions whose ticks
// per second do not fit in 64 bits.
func ngTicksPerSecond(tsresol byte) (uint64, bool) {
	exp := uint(tsresol & 0x7f)
	if tsresol&0x80 != 0 {
		return 1 << exp, exp <= 63
	}
	if exp > 19 {
		return 0, false
	}
	tps := uint64(1)
	for range exp {
		tps *= 10
	}
	return tps, true
}

func (r *PcapngReader) u64(b []byte) uint64 {
	if r.bigEndian {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// readPacket reads an Enhanced Packet Block or an obsolete Packet Block
// (same layout, but a 16-bit interface id followed by a drop count) whose
// first 8 bytes have been read.
func (r *PcapngReader) readPacket(start int64, typ, length uint32) (Frame, error) {
	if err := r.checkLength(start, typ, length, ngMinPacketLen); err != nil {
		return Frame{}, err
	}
	b := r.hdr[:8+ngPacketFixedFieldsLen]
	if err := r.in.readFull(b[8:]); err != nil {
		return Frame{}, r.in.readError(start, ngBlockName(typ), err)
	}
	var id uint32
	if typ == ngBlockPacketObsolete {
		id = uint32(r.u16(b[8:10]))
	} else {
		id = r.u32(b[8:12])
	}
	ticks := uint64(r.u32(b[12:16]))<<32 | uint64(r.u32(b[16:20]))
	caplen, wirelen := r.u32(b[20:24]), r.u32(b[24:28])
	if uint64(id) >= uint64(len(r.ifaces)) {
		return Frame{}, blockError(start, typ, "interface id %d is not defined in this section (it has %d interfaces)", id, len(r.ifaces))
	}
	room := int64(length) - ngMinPacketLen // data, padding and options
	if int64(caplen) > room {
		return Frame{}, blockError(start, typ, "captured length %d does not fit in block length %d", caplen, length)
	}
	if caplen > MaxRecordLen {
		return Frame{}, blockError(start, typ, "captured length %d exceeds the maximum of %d", caplen, MaxRecordLen)
	}
	// Padding and options are not needed.
	data, err := r.blockData(start, typ, length, int(caplen), room)
	if err != nil {
		return Frame{}, err
	}
	ifc := &r.ifaces[id]
	return Frame{
		Data:      data,
		Timestamp: ifc.nanos(ticks),
		WireLen:   max(wirelen, caplen),
		LinkType:  ifc.linkType,
		Interface: ifc.index,
	}, nil
}

// readSimplePacket reads a Simple Packet Block whose first 8 bytes have been
// read. It belongs to the section's first interface; its captured length is
// the least of the original length, the interface's snap length and the
// block body (the block does not record it).
func (r *PcapngReader) readSimplePacket(start int64, length uint32) (Frame, error) {
	const typ = ngBlockSimplePacket
	if err := r.checkLength(start, typ, length, ngMinSimplePacketLen); err != nil {
		return Frame{}, err
	}
	b := r.hdr[:12]
	if err := r.in.readFull(b[8:12]); err != nil {
		return Frame{}, r.in.readError(start, ngBlockName(typ), err)
	}
	if len(r.ifaces) == 0 {
		return Frame{}, blockError(start, typ, "no interface description block precedes it in this section")
	}
	ifc := &r.ifaces[0]
	wirelen := r.u32(b[8:12])
	room := length - ngMinSimplePacketLen // data and padding
	caplen := min(wirelen, room)
	if ifc.snaplen != 0 {
		caplen = min(caplen, ifc.snaplen)
	}
	if caplen > MaxRecordLen {
		return Frame{}, blockError(start, typ, "captured length %d exceeds the maximum of %d", caplen, MaxRecordLen)
	}
	data, err := r.blockData(start, typ, length, int(caplen), int64(room))
	if err != nil {
		return Frame{}, err
	}
	return Frame{
		Data:      data,
		Timestamp: r.lastTS,
		WireLen:   max(wirelen, caplen),
		LinkType:  ifc.linkType,
		Interface: ifc.index,
	}, nil
}

// Offset returns the number of input bytes consumed so far (see
// OffsetSource).
func (r *PcapngReader) Offset() int64 { return r.in.off }

// Size returns the total input size when known, else -1 (see the Size
// function).
func (r *PcapngReader) Size() int64 { return r.in.size }

// Close closes the file if the reader came from Open; later calls to Next
// fail.
func (r *PcapngReader) Close() error {
	r.err = errSourceClosed
	return r.in.close()
}
