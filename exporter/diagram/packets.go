package diagram

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// Conn is one connection to show: its record and flight recorder.
type Conn struct {
	Record  *record.Record
	Packets []flightrec.PacketRecord
	Traced  bool
	Dropped uint64 // records the ring overwrote before Packets[0]
}

// PacketRow is one recorded packet as the packet list shows it: relative
// numbers as in the diagram and in Wireshark.
type PacketRow struct {
	Index    uint64
	Time     string // seconds since the first recorded packet
	From     string
	Flags    string
	Seq, Ack string
	Len      uint32
	Window   uint32 // scaled
	Analysis string
	Retrans  bool
}

// PacketRows lists c's recorded packets.
func PacketRows(c *Conn) []PacketRow {
	rows := make([]PacketRow, len(c.Packets))
	var base [2]uint32
	for r := range 2 {
		base[r] = seqBase(c.Packets, reassembly.Role(r))
	}
	for i := range c.Packets {
		p := &c.Packets[i]
		row := PacketRow{
			Index: c.Dropped + uint64(i) + 1,
			Time:  fmt.Sprintf("%.6f", time.Duration(p.Timestamp-c.Packets[0].Timestamp).Seconds()),
			From:  p.From.String(), Flags: p.Flags.String(),
			Seq: fmt.Sprint(int32(p.Seq - base[p.From])), Ack: "",
			Len: p.PayloadLen, Window: p.WindowScaled(),
			Analysis: strings.Join(p.Analysis.Names(), " "),
			Retrans:  IsRetransmission(p),
		}
		if p.Flags.Has(capture.FlagACK) {
			row.Ack = fmt.Sprint(int32(p.Ack - base[p.From.Other()]))
		}
		rows[i] = row
	}
	return rows
}

// PcapDataURI returns c's packets as a pcap in a data: URI, so a report
// file can offer the download without any file beside it.
func PcapDataURI(c *Conn) template.URL {
	var b bytes.Buffer
	if err := exporter.WritePcap(&b, c.Record, c.Packets); err != nil {
		return ""
	}
	// A data: URI built here from bytes we encoded, never from packet
	// text: safe to mark as a URL for html/template.
	return template.URL("data:application/vnd.tcpdump.pcap;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
}
