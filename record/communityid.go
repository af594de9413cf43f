package record

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
)

// Community ID v1 (github.com/corelight/community-id-spec): the flow hash
// Zeek, Suricata, Arkime and Elastic put in their records so that records
// of one flow from different tools join on one string. The input, in
// network byte order and aligned on 32 bits, is
//
//	seed (2 bytes) | lower address | higher address | protocol (1) | 0 (1) | lower's port (2) | higher's port (2)
//
// where "lower" is the endpoint with the smaller address, or with the
// smaller port when both addresses are equal, so both directions of a flow
// hash alike. The ID is "1:" and the base64 of the SHA-1 digest.

// ProtoTCP is TCP's IP protocol number.
const ProtoTCP = 6

// communityIDLen is len("1:") plus base64 of a 20-byte digest.
const communityIDLen = 2 + 28

// AppendCommunityID appends the Community ID v1 of the flow between a and b
// (a port-based protocol such as TCP, UDP or SCTP) to dst. It allocates
// nothing when dst has room for 30 bytes. Addresses of different
// families, or an invalid one, append nothing: no flow has them.
func AppendCommunityID(dst []byte, seed uint16, proto uint8, a, b netip.AddrPort) []byte {
	aa, ba := a.Addr().Unmap(), b.Addr().Unmap()
	if !aa.IsValid() || !ba.IsValid() || aa.Is4() != ba.Is4() {
		return dst
	}
	if c := aa.Compare(ba); c > 0 || c == 0 && a.Port() > b.Port() {
		a, b, aa, ba = b, a, ba, aa
	}
	var in [2 + 16 + 16 + 4 + 4]byte
	binary.BigEndian.PutUint16(in[0:], seed)
	n := 2
	if aa.Is4() {
		a4, b4 := aa.As4(), ba.As4()
		n += copy(in[n:], a4[:])
		n += copy(in[n:], b4[:])
	} else {
		a16, b16 := aa.As16(), ba.As16()
		n += copy(in[n:], a16[:])
		n += copy(in[n:], b16[:])
	}
	in[n], in[n+1] = proto, 0
	binary.BigEndian.PutUint16(in[n+2:], a.Port())
	binary.BigEndian.PutUint16(in[n+4:], b.Port())
	sum := sha1.Sum(in[:n+6])
	dst = append(dst, '1', ':')
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// CommunityID returns the Community ID v1 of a TCP connection.
func CommunityID(seed uint16, a, b netip.AddrPort) string {
	var buf [communityIDLen]byte
	return string(AppendCommunityID(buf[:0], seed, ProtoTCP, a, b))
}
