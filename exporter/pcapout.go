package exporter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// pcap file format constants (classic libpcap format, nanosecond variant;
// see draft-ietf-opsawg-pcap and tcpdump.org/linktypes.html).
const (
	pcapMagicNanos   = 0xa1b23c4d
	pcapVersionMajor = 2
	pcapVersionMinor = 4
	// pcapSnapLen is the file's snap length: records keep at most this
	// many header bytes, and a synthesized header is shorter.
	pcapSnapLen = flightrec.MaxHeaderBytes
	// pcapMaxIPLen is the largest length an IPv4 total length or IPv6
	// payload length field holds.
	pcapMaxIPLen = 0xffff
)

// Header sizes of a synthesized packet: IPv4 without options, IPv6
// without extension headers, TCP without options.
const (
	synthIPv4HdrLen = 20
	synthIPv6HdrLen = 40
	synthTCPHdrLen  = 20
	synthTTL        = 64 // not recorded; the common initial value
)

// WritePcap writes a connection's packet records as a classic pcap file
// with nanosecond timestamps and LINKTYPE_RAW (101): the vendor's
// "wireshark" keyword. Each packet is the IP and TCP header bytes the
// record kept, with the captured length set to those bytes and the
// original length to the IP datagram's length on the wire, so Wireshark
// shows the true lengths, computes tcp.len from the IP header and marks the
// payload as not captured.
//
// A record without header bytes (HdrLen 0, e.g. a segment rebuilt from IP
// fragments) gets a synthesized header: IPv4 (no options, no DF, TTL 64,
// ID from the record, a valid header checksum) or IPv6 (no extension
// headers, hop limit 64), addressed from rec.Client and rec.Server by the
// record's sender, and a 20-byte TCP header without options carrying the
// recorded ports, seq, ack, flags, window and checksum (urgent pointer 0).
// Its IP length field says header + PayloadLen (capped at 65535, what the
// field holds), and the original length is that same length, so the
// packet is self-consistent. rec may be nil when every record has header
// bytes.
func WritePcap(w io.Writer, rec *record.Record, pkts []flightrec.PacketRecord) error {
	bw := bufio.NewWriter(w)
	var hdr [24]byte
	le := binary.LittleEndian
	le.PutUint32(hdr[0:], pcapMagicNanos)
	le.PutUint16(hdr[4:], pcapVersionMajor)
	le.PutUint16(hdr[6:], pcapVersionMinor)
	// thiszone and sigfigs stay 0.
	le.PutUint32(hdr[16:], pcapSnapLen)
	le.PutUint32(hdr[20:], uint32(capture.LinkTypeRaw))
	if _, err := bw.Write(hdr[:]); err != nil {
		return fmt.Errorf("pcap: write file header: %w", err)
	}
	var (
		rh  [16]byte
		buf [flightrec.MaxHeaderBytes]byte
	)
	for i := range pkts {
		p := &pkts[i]
		var data []byte
		var orig uint32
		if p.HdrLen > 0 {
			data = p.Hdr[:min(int(p.HdrLen), len(p.Hdr))]
			orig = max(p.WireLen, uint32(len(data)))
		} else {
			n, total, err := synthesizeHeader(buf[:], rec, p)
			if err != nil {
				return fmt.Errorf("pcap: packet %d: %w", i+1, err)
			}
			data, orig = buf[:n], total
		}
		ts := max(p.Timestamp, 0)
		le.PutUint32(rh[0:], uint32(ts/1e9))
		le.PutUint32(rh[4:], uint32(ts%1e9))
		le.PutUint32(rh[8:], uint32(len(data)))
		le.PutUint32(rh[12:], orig)
		if _, err := bw.Write(rh[:]); err != nil {
			return fmt.Errorf("pcap: write packet %d: %w", i+1, err)
		}
		if _, err := bw.Write(data); err != nil {
			return fmt.Errorf("pcap: write packet %d: %w", i+1, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("pcap: %w", err)
	}
	return nil
}

// synthesizeHeader writes an IP and TCP header for p into b (at least 60
// bytes) and returns the header length and the datagram's total length.
func synthesizeHeader(b []byte, rec *record.Record, p *flightrec.PacketRecord) (n int, total uint32, err error) {
	if rec == nil {
		return 0, 0, errors.New("no header bytes recorded and no connection to take the addresses from")
	}
	src, dst := rec.Client, rec.Server
	if p.From == reassembly.Server {
		src, dst = dst, src
	}
	family := p.Family
	if family != capture.IPv4 && family != capture.IPv6 {
		family = capture.IPv6
		if src.Addr().Unmap().Is4() && dst.Addr().Unmap().Is4() {
			family = capture.IPv4
		}
	}
	be := binary.BigEndian
	var ipLen int
	switch family {
	case capture.IPv4:
		s, d := src.Addr().Unmap(), dst.Addr().Unmap()
		if !s.Is4() || !d.Is4() {
			return 0, 0, fmt.Errorf("IPv4 segment between %s and %s", src, dst)
		}
		ipLen = synthIPv4HdrLen
		total = min(uint32(synthIPv4HdrLen+synthTCPHdrLen)+min(p.PayloadLen, pcapMaxIPLen), pcapMaxIPLen)
		h := b[:synthIPv4HdrLen]
		clear(h)
		h[0] = 0x45 // version 4, IHL 5
		be.PutUint16(h[2:], uint16(total))
		be.PutUint16(h[4:], p.IPID)
		h[8] = synthTTL
		h[9] = 6 // TCP
		s4, d4 := s.As4(), d.As4()
		copy(h[12:16], s4[:])
		copy(h[16:20], d4[:])
		be.PutUint16(h[10:], capture.IPv4HeaderChecksum(h))
	default:
		ipLen = synthIPv6HdrLen
		plen := min(uint32(synthTCPHdrLen)+min(p.PayloadLen, pcapMaxIPLen), pcapMaxIPLen)
		total = synthIPv6HdrLen + plen
		h := b[:synthIPv6HdrLen]
		clear(h)
		h[0] = 0x60 // version 6, traffic class and flow label 0
		be.PutUint16(h[4:], uint16(plen))
		h[6] = 6 // TCP
		h[7] = synthTTL
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		copy(h[8:24], s16[:])
		copy(h[24:40], d16[:])
	}
	t := b[ipLen : ipLen+synthTCPHdrLen]
	be.PutUint16(t[0:], src.Port())
	be.PutUint16(t[2:], dst.Port())
	be.PutUint32(t[4:], p.Seq)
	be.PutUint32(t[8:], p.Ack)
	// Data offset 5 words; the NS flag is the low bit of byte 12, the
	// others byte 13, in the order capture.Flags keeps them.
	t[12] = synthTCPHdrLen/4<<4 | byte(p.Flags>>8&1)
	t[13] = byte(p.Flags)
	be.PutUint16(t[14:], p.Window)
	be.PutUint16(t[16:], p.Checksum)
	be.PutUint16(t[18:], 0)
	return ipLen + synthTCPHdrLen, total, nil
}

// PcapFileName returns the name of a connection's pcap file: client and
// server endpoint (the connection as it was opened), reason code and
// record ID, e.g. "10.0.0.1_40123-10.0.0.2_80_RT_17.pcap". Addresses keep
// only letters, digits and dots, so IPv6 colons (and any zone) become dots
// and the name is valid on every filesystem: "fd00..1_40123-fd00..2_443".
func PcapFileName(rec *record.Record) string {
	reason := string(rec.Reason)
	if reason == "" {
		reason = "none"
	}
	return fmt.Sprintf("%s_%d-%s_%d_%s_%d.pcap",
		pcapFileAddr(rec.Client.Addr()), rec.Client.Port(),
		pcapFileAddr(rec.Server.Addr()), rec.Server.Port(),
		pcapFileSafe(reason), rec.ID)
}

func pcapFileAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return pcapFileSafe(a.String())
}

// pcapFileSafe maps every byte but letters, digits and dots to a dot.
func pcapFileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.':
			return r
		}
		return '.'
	}, s)
}
