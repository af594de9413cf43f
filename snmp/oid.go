// Package snmp is tcptap's SNMP agent (docs/tcp-mib.md):
// BER through gosnmp (SnmpDecodePacket and MarshalMsg; gosnmp has no agent),
// the agent logic ours. A [Tree] of [Provider]s registered at disjoint
// subtrees answers get and get-next against live state, computing table rows
// for each request and finding successors by comparing index keys, never by
// position in a snapshot, so rows may come and go between requests. The
// [Handler] implements SNMPv1 and SNMPv2c with communities and SNMPv3 with
// the User-based Security Model ([USM], v3.go): get, get-next, get-bulk
// (clamped and truncated to fit, never tooBig), set in two phases, the v2
// exceptions and the v1 error mapping of RFC 3584. The MIB modules served
// are the SNMPv2-MIB system and snmp groups, TCP-MIB (RFC 4022) for the
// tapped link, TCPTAP-MIB, tcptap's own, and the SNMPv3 engine and
// statistics (mib_usm.go).
package snmp

import (
	"fmt"
	"strconv"
	"strings"
)

// OID is an object identifier, compared numerically subidentifier by
// subidentifier (never as a string: 1.10 sorts after 1.9).
type OID []uint32

// MaxOIDLen is the longest OID SNMP allows (RFC 2578 §3.5).
const MaxOIDLen = 128

// ParseOID parses dotted decimal, with or without a leading dot.
func ParseOID(s string) (OID, error) {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return OID{}, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) > MaxOIDLen {
		return nil, fmt.Errorf("OID %q: more than %d subidentifiers", s, MaxOIDLen)
	}
	o := make(OID, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("OID %q: subidentifier %q: want a number 0 to 4294967295", s, p)
		}
		o[i] = uint32(n)
	}
	return o, nil
}

// MustOID parses a constant OID.
func MustOID(s string) OID {
	o, err := ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// String is dotted decimal with a leading dot, as gosnmp writes it.
func (o OID) String() string {
	var b strings.Builder
	for _, n := range o {
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(uint64(n), 10))
	}
	return b.String()
}

// Compare returns -1, 0 or +1 as o sorts before, equal to or after p in
// lexicographic order of subidentifiers (a prefix sorts first).
func (o OID) Compare(p OID) int {
	for i := 0; i < len(o) && i < len(p); i++ {
		switch {
		case o[i] < p[i]:
			return -1
		case o[i] > p[i]:
			return 1
		}
	}
	switch {
	case len(o) < len(p):
		return -1
	case len(o) > len(p):
		return 1
	}
	return 0
}

// HasPrefix reports whether p is a prefix of o (or o itself).
func (o OID) HasPrefix(p OID) bool {
	if len(p) > len(o) {
		return false
	}
	for i := range p {
		if o[i] != p[i] {
			return false
		}
	}
	return true
}

// Append returns o followed by subs, in a new slice.
func (o OID) Append(subs ...uint32) OID {
	out := make(OID, 0, len(o)+len(subs))
	return append(append(out, o...), subs...)
}
