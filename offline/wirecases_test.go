package offline_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/oracle"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/record"
)

// encapDir is the shared corpus of encapsulations and wire cases
// (../shared/testdata/encap), beside the peer corpus.
func encapDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(peers.Dir(t)), "encap")
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		t.Skipf("no encap corpus: %v", err)
	}
	return dir
}

// wireCase runs tcptap over one capture of the encap corpus and compares
// it with tshark's expected counts: per-direction packets, payload bytes,
// SYN/FIN/RST exactly, and the analysis counts, each connection paired
// with one tshark stream. It returns the records.
func wireCase(t *testing.T, name string) []record.Record {
	t.Helper()
	dir := encapDir(t)
	want, err := oracle.Load(filepath.Join(dir, "expected", "tshark", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := oracleRunErr(ctx, filepath.Join(dir, want.Pcap))
	if err != nil {
		t.Fatal(err)
	}
	groups := oracle.Match(want.Streams, recs)
	diffs, tally := oracle.Compare(groups)
	for _, g := range groups {
		if !g.Paired() {
			t.Errorf("4-tuple %s: tshark streams %d, tcptap records %d", g.Tuple, len(g.Streams), len(g.Records))
		}
	}
	for _, d := range diffs {
		t.Errorf("differs from tshark: %s", tsharkDiffString(d))
	}
	t.Logf("%d tshark streams, %d tcptap records; agreement: %s", len(want.Streams), len(recs), tally.Summary())
	return recs
}

// TestWireCaseTruncatedTCPHeader: the client's SYN of Zeek's
// truncated-header.pcap has a 40-byte TCP header of which a 68-byte snap
// length kept 34 bytes. Its fixed header makes the segment: the SYN counts,
// the MSS (captured whole) is known, the window scale is not.
func TestWireCaseTruncatedTCPHeader(t *testing.T) {
	recs := wireCase(t, "zeek__testing__btest__Traces__tcp__truncated-header.pcap")
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.SYNs.Client != 1 || r.Midstream || r.MSS.Client != 1460 || r.Reason != "PN" {
		t.Errorf("syns %+v midstream %v mss %+v reason %s", r.SYNs, r.Midstream, r.MSS, r.Reason)
	}
}

// TestWireCaseIPv4SourceRoute: suricata-verify's detect-ipopts capture
// sends SYNs with a loose and a strict source route whose final
// destinations (5.6.7.8, 8.8.8.8) are not the header's next hop
// (13.14.15.16); the TCP checksum covers the final destination, so each is
// a connection of its own to it, not a retransmission of the other SYNs.
func TestWireCaseIPv4SourceRoute(t *testing.T) {
	recs := wireCase(t, "suricata__tests__detect-ipopts__input.pcap")
	servers := map[string]uint64{}
	for _, r := range recs {
		servers[r.Server.String()] += r.Packets.Client
	}
	if len(recs) != 3 || servers["5.6.7.8:80"] != 1 || servers["8.8.8.8:80"] != 1 || servers["13.14.15.16:80"] != 6 {
		t.Errorf("%d records, client packets by server %v", len(recs), servers)
	}
}

// TestWireCaseRSTFromSYNSent: in suricata-verify's tls-subjectaltname
// capture clients answer a stale ACK to their SYN with a RST (RFC 9293's
// half-open recovery) and send their SYN again; the RST's sequence number
// is not data sent.
func TestWireCaseRSTFromSYNSent(t *testing.T) {
	wireCase(t, "suricata__tests__tls__tls-subjectaltname__input.pcap")
}

// TestWireCaseIPv6Fragments: suricata-verify's bug-6887 capture carries one
// TCP segment of 1000 payload bytes in IPv6 fragments; reassembled, the
// segment has its whole length (444 bytes, the first fragment's, before).
func TestWireCaseIPv6Fragments(t *testing.T) {
	recs := wireCase(t, "suricata__tests__defrag__bug-6887-defrag-ipv6-tcp__frag-ip-tcp.pcap")
	if len(recs) != 1 || recs[0].Bytes.Client != 1000 {
		t.Errorf("records %d, bytes %+v", len(recs), recs[0].Bytes)
	}
}

// TestWireCaseCloseLingerKeepsDyingConnection: in Arkime's CVE-2018-6794
// capture the server sends data and its FIN right after its SYN-ACK and then
// nothing; the client sends its request and FIN, retransmits them with
// backing-off gaps (0.3 to 9.3 s) and resets 9.6 s after the last one. One
// connection each (tshark's streams), ending in the client's retransmission
// timeout by the RST, not a close plus a mid-stream record after the 5-s
// close linger.
func TestWireCaseCloseLingerKeepsDyingConnection(t *testing.T) {
	recs := wireCase(t, "arkime__tests__pcap__CVE-2018-6794.pcap")
	reasons := map[string]string{}
	for _, r := range recs {
		reasons[r.Client.String()] = string(r.Reason) + "/" + r.Actor
	}
	for client, want := range map[string]string{"192.168.235.1:53649": "RT/client", "192.168.235.1:53656": "RT/client", "192.168.235.1:53648": "PN/server"} {
		if reasons[client] != want {
			t.Errorf("%s: %s, want %s", client, reasons[client], want)
		}
	}
}

// TestWireCaseVLANOneDirection: in suricata-verify's bug-4376 capture the
// client's segments carry 802.1Q tag 3136 and the server's none. One
// connection (tshark's one stream, every count equal), not two one-sided
// records.
func TestWireCaseVLANOneDirection(t *testing.T) {
	recs := wireCase(t, "suricata__tests__bug-4376__syn_retransmit_with_ts.pcap")
	if len(recs) != 1 || recs[0].Midstream || recs[0].Reason != "AN" {
		t.Errorf("%d records: %+v", len(recs), recs)
	}
}

// TestWireCaseVLANCopies: in Arkime's mongo capture the client's SYN and ACK
// (and a server's SYN-ACK) are seen twice, on VLAN 300 and on VLAN 50: a
// mirror of two VLANs. tshark counts the copies, as retransmissions and
// duplicate ACKs; tcptap keeps one connection per 4-tuple, on the tags each
// direction was first seen with, and sets the 7 copies aside
// (TableStats.VLANCopies): its counts are tshark's less the copies.
func TestWireCaseVLANCopies(t *testing.T) {
	dir := encapDir(t)
	want, err := oracle.Load(filepath.Join(dir, "expected", "tshark", "arkime__tests__pcap__mongo.pcap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []record.Record
	st, err := offline.Run(context.Background(), []string{filepath.Join(dir, want.Pcap)}, offline.Options{Workers: 2}, func(r *record.Record) {
		recs = append(recs, *r)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The copies arrive within 100 ms of their originals, so the
	// decoder's duplicates policy (capture.DuplicatesDrop) sets them aside
	// before the table's VLAN policy would: either counts them.
	setAside := st.Table.VLANCopies + st.Decode.Copies
	if setAside != 7 {
		t.Errorf("%d copies set aside (%d by the VLAN policy, %d by the duplicates policy), want 7", setAside, st.Table.VLANCopies, st.Decode.Copies)
	}
	groups := oracle.Match(want.Streams, recs)
	var copies uint64
	for _, g := range groups {
		if !g.Paired() || len(g.Records) != 1 {
			t.Fatalf("4-tuple %s: tshark streams %d, tcptap records %d", g.Tuple, len(g.Streams), len(g.Records))
		}
		s, r := g.Streams[0], g.Records[0]
		// Each copy tshark counted is a packet more and a retransmission
		// or duplicate ACK.
		extraC := uint64(s.C2S.Retransmission + s.C2S.DuplicateAck)
		extraS := uint64(s.S2C.Retransmission + s.S2C.DuplicateAck)
		copies += extraC + extraS
		if uint64(s.C2S.Packets)-extraC != r.Packets.Client || uint64(s.S2C.Packets)-extraS != r.Packets.Server {
			t.Errorf("%s: packets %+v, tshark %d/%d with %d/%d copies", g.Tuple, r.Packets, s.C2S.Packets, s.S2C.Packets, extraC, extraS)
		}
		if r.Retransmissions.Client+r.Retransmissions.Server+r.DupAcks.Client+r.DupAcks.Server != 0 {
			t.Errorf("%s: a copy counted as a retransmission or duplicate ACK: %+v %+v", g.Tuple, r.Retransmissions, r.DupAcks)
		}
		if uint64(s.C2S.PayloadBytes) != r.Bytes.Client || uint64(s.S2C.PayloadBytes) != r.Bytes.Server {
			t.Errorf("%s: bytes %+v, tshark %d/%d", g.Tuple, r.Bytes, s.C2S.PayloadBytes, s.S2C.PayloadBytes)
		}
	}
	if copies != setAside {
		t.Errorf("tshark's extra retransmissions and duplicate ACKs %d, copies set aside %d", copies, setAside)
	}
}
