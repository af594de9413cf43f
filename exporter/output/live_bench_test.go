//go:build linux

package output_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	. "github.com/tcptap/tcptap/exporter/output"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// writeShortConns writes a pcap of n connections of 4 packets each (SYN,
// SYN-ACK, ACK, then the client's RST: reason SR), each with its own
// client address and port, so that a replay at 4×R packets/s finishes R
// connections a second.
func writeShortConns(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // Ethernet
	w.Write(hdr[:])
	ts := int64(1_700_000_000_000_000)
	var frame [14 + 20 + 20]byte
	put := func(src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags byte) {
		copy(frame[0:6], []byte{2, 0, 0, 0, 0, 2})
		copy(frame[6:12], []byte{2, 0, 0, 0, 0, 1})
		frame[12], frame[13] = 0x08, 0x00
		ip := frame[14:34]
		ip[0], ip[1] = 0x45, 0
		binary.BigEndian.PutUint16(ip[2:], 40)
		binary.BigEndian.PutUint16(ip[4:], 0)
		ip[6], ip[7], ip[8], ip[9] = 0x40, 0, 64, 6
		ip[10], ip[11] = 0, 0
		copy(ip[12:16], src[:])
		copy(ip[16:20], dst[:])
		binary.BigEndian.PutUint16(ip[10:], capture.IPv4HeaderChecksum(ip))
		tcp := frame[34:54]
		binary.BigEndian.PutUint16(tcp[0:], sport)
		binary.BigEndian.PutUint16(tcp[2:], dport)
		binary.BigEndian.PutUint32(tcp[4:], seq)
		binary.BigEndian.PutUint32(tcp[8:], ack)
		tcp[12], tcp[13] = 5<<4, flags
		binary.BigEndian.PutUint16(tcp[14:], 65535)
		tcp[16], tcp[17], tcp[18], tcp[19] = 0, 0, 0, 0
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts/1e6))
		binary.LittleEndian.PutUint32(rec[4:], uint32(ts%1e6))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		w.Write(rec[:])
		w.Write(frame[:])
		ts += 10
	}
	const syn, ack, rst = 0x02, 0x10, 0x04
	server := [4]byte{10, 200, 0, 1}
	for i := range n {
		client := [4]byte{10, byte(1 + i>>16), byte(i >> 8), byte(i)}
		cp := uint16(40000 + i%20000)
		put(client, server, cp, 443, 1000, 0, syn)
		put(server, client, 443, cp, 5000, 1001, syn|ack)
		put(client, server, cp, 443, 1001, 5001, ack)
		put(client, server, cp, 443, 1001, 5001, rst|ack)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BenchmarkLive20kConnectionsPerSecond: the live daemon finishes 20,000
// connections a second (tcpreplay at 80,000 packets/s of 4-packet
// connections into a veth in a netlab tap namespace) with its records
// going to the file, rsyslogd over TCP and nats-server with JetStream at
// once. Each b.N is 5 s (100,000 connections). It reports the records/s
// made during the replay, how long after it every output had them all, tcptap's CPU per record (capture, tables,
// records and outputs; not the servers') and the kernel's drops, which
// must be 0, as must the outputs' drops. Needs root and tcpreplay,
// rsyslogd and nats-server.
//
//	go test ./exporter/output -run '^$' -bench Live20k -benchtime 1x
func BenchmarkLive20kConnectionsPerSecond(b *testing.B) {
	netlab.Require(b)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		b.Skip("needs tcpreplay")
	}
	const (
		perSecond = 20_000
		seconds   = 5
		conns     = perSecond * seconds
	)
	rs := StartRsyslog(b)
	ns := StartNATS(b)
	lab, _, _ := replayLab(b)
	pcap := filepath.Join(b.TempDir(), "short.pcap")
	if err := writeShortConns(pcap, conns); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		path := filepath.Join(b.TempDir(), "records.json")
		outs, err := New(Config{
			File:   &FileConfig{Path: path},
			Syslog: &SyslogConfig{Address: fmt.Sprintf("tcp://127.0.0.1:%d", rs.TCPPort()), Tag: "tcptap"},
			NATS:   &NATSConfig{URL: ns.URL(), Subject: "tcptap.bench", Stream: fmt.Sprintf("LIVEBENCH%d", time.Now().UnixNano()%1e6)},
		}, Options{QueueBytes: 256 << 20, FlushTimeout: 30 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		var made atomic.Uint64
		d, err := daemon.New(daemon.Options{
			Interfaces: []string{liveRx},
			Workers:    2,
			Table:      reassembly.Config{IdleTimeout: 2 * time.Second, CloseLinger: 100 * time.Millisecond},
			Fleet:      &record.Fleet{Sensor: "bench"},
			OnClose:    func(rec *record.Record) { made.Add(1); outs.Write(rec) },
			Open:       liveOpen(lab),
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runDone := make(chan error, 1)
		go func() { runDone <- d.Run(ctx) }()
		time.Sleep(200 * time.Millisecond)
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		start := time.Now()
		replay(b, lab, pcap, 4*conns, 4*perSecond)
		replayed, madeInReplay := time.Since(start), made.Load()
		WaitFor(b, 60*time.Second, "every record delivered", func() bool {
			if made.Load() < conns {
				return false
			}
			for _, s := range outs.Stats() {
				if s.Sent+s.Dropped < made.Load() {
					return false
				}
			}
			return true
		})
		elapsed := time.Since(start)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cancel()
		<-runDone
		outs.Close()
		var drops, kernel uint64
		for _, w := range d.Stats() {
			drops += w.Kernel.Drops
			kernel += w.Kernel.Packets
		}
		cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()) - time.Duration(ru0.Utime.Nano()+ru0.Stime.Nano())
		n := made.Load()
		for _, s := range outs.Stats() {
			if s.Sent != n || s.Dropped != 0 {
				b.Errorf("output %s: %+v, want %d sent", s.Name, s, n)
			}
		}
		if drops != 0 {
			b.Errorf("%d kernel drops of %d packets", drops, kernel)
		}
		b.ReportMetric(float64(madeInReplay)/replayed.Seconds(), "records/s")
		b.ReportMetric((elapsed - replayed).Seconds(), "s-to-deliver-after-replay")
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(n), "cpu-µs/record")
		b.ReportMetric(float64(drops), "kernel-drops")
		b.Logf("%d packets replayed in %v (kernel %d, %d dropped), %d records made during it (%.0f/s), %d in all; every output had all of them %v after the start: tcptap CPU %v (%.0f%% of one core)",
			4*conns, replayed.Round(time.Millisecond), kernel, drops, madeInReplay, float64(madeInReplay)/replayed.Seconds(), n,
			elapsed.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/elapsed.Seconds())
	}
}
