package snmp

import (
	"errors"
	"fmt"
)

// A first-pass BER reader for the SNMPv3 message wrapper (RFC 3412 §6,
// RFC 3414 §2.4): the agent must find msgUserName and the position of
// msgAuthenticationParameters before it can pick the keys that verify and
// decrypt the rest, which gosnmp's decoder cannot do. The PDU inside is
// decoded by gosnmp. Definite lengths only (short or long form, any
// encoding of them, as BER allows); every element must fit its parent.

var errBER = errors.New("malformed message")

// BER tags of the message wrapper.
const (
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagSequence    = 0x30
)

// berTLV reads the element at b[off:end]: its tag and its contents
// b[start:stop].
func berTLV(b []byte, off, end int) (tag byte, start, stop int, err error) {
	if off < 0 || end > len(b) || off+2 > end {
		return 0, 0, 0, errBER
	}
	tag = b[off]
	if tag&0x1f == 0x1f {
		return 0, 0, 0, errBER // multi-byte tags: none in SNMP
	}
	n := int(b[off+1])
	start = off + 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || start+k > end {
			return 0, 0, 0, errBER // indefinite, over 16 MiB, or cut
		}
		n = 0
		for _, c := range b[start : start+k] {
			n = n<<8 | int(c)
		}
		start += k
	}
	if n > end-start {
		return 0, 0, 0, errBER
	}
	return tag, start, start + n, nil
}

// berReader reads the elements of one constructed element in order.
type berReader struct {
	b        []byte
	off, end int
	err      error
}

// next reads the next element, which must have tag want.
func (r *berReader) next(want byte, what string) (start, stop int) {
	if r.err != nil {
		return 0, 0
	}
	tag, start, stop, err := berTLV(r.b, r.off, r.end)
	if err == nil && tag != want {
		err = fmt.Errorf("%w: %s has tag %#x, want %#x", errBER, what, tag, want)
	} else if err != nil {
		err = fmt.Errorf("%w: %s", err, what)
	}
	if err != nil {
		r.err = err
		return 0, 0
	}
	r.off = stop
	return start, stop
}

// bytes reads an OCTET STRING of at most max bytes.
func (r *berReader) bytes(what string, max int) []byte {
	start, stop := r.next(tagOctetString, what)
	if r.err == nil && stop-start > max {
		r.err = fmt.Errorf("%w: %s longer than %d bytes", errBER, what, max)
	}
	return r.b[start:stop]
}

// int reads an INTEGER of the range 0 to 2^31−1, which every integer of
// the v3 wrapper has (RFC 3412 §6, RFC 3414 §2.4).
func (r *berReader) int(what string) uint32 {
	start, stop := r.next(tagInteger, what)
	if r.err != nil {
		return 0
	}
	c := r.b[start:stop]
	if len(c) == 0 || len(c) > 5 || c[0]&0x80 != 0 || len(c) == 5 && c[0] != 0 {
		r.err = fmt.Errorf("%w: %s out of range 0 to 2147483647", errBER, what)
		return 0
	}
	var n uint64
	for _, x := range c {
		n = n<<8 | uint64(x)
	}
	if n > 1<<31-1 {
		r.err = fmt.Errorf("%w: %s out of range 0 to 2147483647", errBER, what)
		return 0
	}
	return uint32(n)
}

// done checks that every element was read.
func (r *berReader) done(what string) error {
	if r.err == nil && r.off != r.end {
		r.err = fmt.Errorf("%w: %d trailing bytes in %s", errBER, r.end-r.off, what)
	}
	return r.err
}

// sub returns a reader of the contents of the next element, a SEQUENCE.
func (r *berReader) sub(what string) *berReader {
	start, stop := r.next(tagSequence, what)
	return &berReader{b: r.b, off: start, end: stop, err: r.err}
}

// v3Message is an SNMPv3 message, its security parameters parsed, its
// msgData not yet.
type v3Message struct {
	msgID    uint32
	maxSize  uint32
	flags    byte
	secModel uint32

	engineID   []byte
	boots      uint32
	engineTime uint32
	userName   []byte
	authParams []byte
	authAt     int // offset of msgAuthenticationParameters' contents
	privParams []byte

	dataTag byte   // msgData: a plaintext ScopedPDU (SEQUENCE) or an encryptedPDU (OCTET STRING)
	data    []byte // its contents
	dataTLV []byte // the whole element
}

// parseV3Header parses everything up to msgData, except the security
// parameters (whose syntax depends on msgSecurityModel): see
// [v3Message.parseUSM].
func parseV3Header(msg []byte) (*v3Message, int, int, error) {
	top := &berReader{b: msg, off: 0, end: len(msg)}
	r := top.sub("message")
	if top.err == nil && top.off != len(msg) {
		return nil, 0, 0, fmt.Errorf("%w: %d bytes after the message", errBER, len(msg)-top.off)
	}
	m := &v3Message{}
	if r.int("msgVersion") != 3 && r.err == nil {
		return nil, 0, 0, fmt.Errorf("%w: not SNMPv3", errBER)
	}
	g := r.sub("msgGlobalData")
	m.msgID = g.int("msgID")
	m.maxSize = g.int("msgMaxSize")
	flags := g.bytes("msgFlags", 1)
	m.secModel = g.int("msgSecurityModel")
	if err := g.done("msgGlobalData"); err != nil {
		return nil, 0, 0, err
	}
	if len(flags) != 1 {
		return nil, 0, 0, fmt.Errorf("%w: msgFlags of %d bytes", errBER, len(flags))
	}
	if m.maxSize < MinMaxMessageSize {
		return nil, 0, 0, fmt.Errorf("%w: msgMaxSize %d below %d", errBER, m.maxSize, MinMaxMessageSize)
	}
	m.flags = flags[0]
	ps, pe := r.next(tagOctetString, "msgSecurityParameters")
	if r.err != nil {
		return nil, 0, 0, r.err
	}
	tag, ds, de, err := berTLV(msg, r.off, r.end)
	if err != nil || de != r.end || tag != tagSequence && tag != tagOctetString {
		return nil, 0, 0, fmt.Errorf("%w: msgData", errBER)
	}
	m.dataTag, m.data, m.dataTLV = tag, msg[ds:de], msg[r.off:de]
	return m, ps, pe, nil
}

// parseUSM parses UsmSecurityParameters from msg[start:end].
func (m *v3Message) parseUSM(msg []byte, start, end int) error {
	outer := &berReader{b: msg, off: start, end: end}
	r := outer.sub("UsmSecurityParameters")
	if err := outer.done("msgSecurityParameters"); err != nil {
		return err
	}
	m.engineID = r.bytes("msgAuthoritativeEngineID", 32)
	m.boots = r.int("msgAuthoritativeEngineBoots")
	m.engineTime = r.int("msgAuthoritativeEngineTime")
	m.userName = r.bytes("msgUserName", 32)
	as, ae := r.next(tagOctetString, "msgAuthenticationParameters")
	m.authParams, m.authAt = msg[as:ae], as
	m.privParams = r.bytes("msgPrivacyParameters", 64)
	return r.done("UsmSecurityParameters")
}

// parseScopedPDU parses a ScopedPDU: its context and its PDU element.
// After decryption, padding may follow it.
func parseScopedPDU(b []byte, padded bool) (contextEngineID, contextName, pdu []byte, err error) {
	top := &berReader{b: b, off: 0, end: len(b)}
	r := top.sub("ScopedPDU")
	if top.err == nil && !padded && top.off != len(b) {
		return nil, nil, nil, fmt.Errorf("%w: bytes after the ScopedPDU", errBER)
	}
	contextEngineID = r.bytes("contextEngineID", 32)
	contextName = r.bytes("contextName", 32)
	if r.err != nil {
		return nil, nil, nil, r.err
	}
	tag, _, stop, err := berTLV(b, r.off, r.end)
	if err != nil || stop != r.end || tag < 0xa0 || tag > 0xa8 {
		return nil, nil, nil, fmt.Errorf("%w: PDU", errBER)
	}
	return contextEngineID, contextName, b[r.off:stop], nil
}

// berLength encodes a definite length.
func berLength(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	case n < 0x10000:
		return []byte{0x82, byte(n >> 8), byte(n)}
	default:
		return []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
}

// v2cWrap makes a PDU element an SNMPv2c message with an empty community,
// for gosnmp's decoder, which decodes whole messages only.
func v2cWrap(pdu []byte) []byte {
	body := len(pdu) + 5 // version 1 (v2c) and an empty community
	out := append([]byte{tagSequence}, berLength(body)...)
	out = append(out, tagInteger, 1, 1, tagOctetString, 0)
	return append(out, pdu...)
}
