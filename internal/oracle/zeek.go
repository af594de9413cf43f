package oracle

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sort"

	"github.com/tcptap/tcptap/record"
)

// ZeekRow is one conn.log row of an expected/zeek/*.json file. Fields the
// baseline did not have are zero (ConnState "" when Zeek's test did not
// log it).
type ZeekRow struct {
	OrigH       netip.Addr `json:"orig_h"`
	OrigP       uint16     `json:"orig_p"`
	RespH       netip.Addr `json:"resp_h"`
	RespP       uint16     `json:"resp_p"`
	Proto       string     `json:"proto"`
	ConnState   string     `json:"conn_state"`
	History     string     `json:"history"`
	OrigPkts    *uint64    `json:"orig_pkts"`
	RespPkts    *uint64    `json:"resp_pkts"`
	OrigIPBytes *uint64    `json:"orig_ip_bytes"`
	RespIPBytes *uint64    `json:"resp_ip_bytes"`
}

// Orig and Resp return the row's endpoints.
func (r *ZeekRow) Orig() netip.AddrPort { return netip.AddrPortFrom(r.OrigH.Unmap(), r.OrigP) }

// Resp returns the responder's endpoint.
func (r *ZeekRow) Resp() netip.AddrPort { return netip.AddrPortFrom(r.RespH.Unmap(), r.RespP) }

// ZeekSettings says how Zeek was run for a baseline.
type ZeekSettings struct {
	IgnoreChecksums bool     `json:"ignore_checksums_-C"`
	Redefs          []string `json:"redefs_or_script_changes"`
	Notes           string   `json:"notes"`
}

// ZeekCase is an expected/zeek/*.json file: the conn.log rows of one
// Zeek test on one corpus capture.
type ZeekCase struct {
	CaseID      string       `json:"case_id"`
	Pcap        string       `json:"pcap"`
	Invocation  string       `json:"zeek_invocation"`
	Settings    ZeekSettings `json:"zeek_settings"`
	Note        string       `json:"note"`
	Connections []ZeekRow    `json:"connections"`
}

// LoadZeek reads an expected/zeek/*.json file.
func LoadZeek(path string) (*ZeekCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c ZeekCase
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// ZeekPair is one Zeek row with the tcptap record it is compared with.
type ZeekPair struct {
	Row *ZeekRow
	// Record is nil when tcptap has no record on the row's 4-tuple, or
	// split the 4-tuple into a different number of connections than Zeek
	// (Records then lists them all).
	Record  *record.Record
	Records []*record.Record
	// Flipped: Zeek's originator is tcptap's server.
	Flipped bool
}

// MatchZeek pairs each Zeek row with a tcptap record on the same 4-tuple
// (either orientation). Rows and records on one 4-tuple are paired in
// order (Zeek's rows in the order the baseline lists them, which is
// conn.log's start-time order; records by first segment) when both tools
// saw the same number of connections there.
func MatchZeek(rows []ZeekRow, recs []record.Record) []ZeekPair {
	byTuple := map[Tuple][]*record.Record{}
	for i := range recs {
		r := &recs[i]
		t := TupleOf(r.Client, r.Server)
		byTuple[t] = append(byTuple[t], r)
	}
	for _, rs := range byTuple {
		sort.SliceStable(rs, func(i, j int) bool {
			if !rs[i].FirstSeen.Equal(rs[j].FirstSeen) {
				return rs[i].FirstSeen.Before(rs[j].FirstSeen)
			}
			return rs[i].ID < rs[j].ID
		})
	}
	rowsPer := map[Tuple]int{}
	for i := range rows {
		rowsPer[TupleOf(rows[i].Orig(), rows[i].Resp())]++
	}
	seen := map[Tuple]int{}
	out := make([]ZeekPair, len(rows))
	for i := range rows {
		row := &rows[i]
		t := TupleOf(row.Orig(), row.Resp())
		rs := byTuple[t]
		p := ZeekPair{Row: row, Records: rs}
		if len(rs) == rowsPer[t] {
			p.Record = rs[seen[t]]
			p.Flipped = p.Record.Client != row.Orig()
		}
		seen[t]++
		out[i] = p
	}
	return out
}
