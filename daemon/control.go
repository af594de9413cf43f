package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/pipeline"
	"github.com/tcptap/tcptap/record"
)

// Request is one operator command sent over the control socket.
type Request struct {
	// Cmd names the command: "trace enable", "trace disable", "trace filter",
	// "trace only-new-connection", "trace max-packet-number", "trace
	// memory-quota", "trace cache-mode", "trace persist", "display
	// cache-connection", "display cache-packet", "display information",
	// "reset cache".
	Cmd  string   `json:"cmd"`
	Args []string `json:"args,omitempty"`

	// display cache-connection, display at-risk
	Family string `json:"family,omitempty"`
	// display cache-packet
	Source      string `json:"source,omitempty"`      // addr:port
	Destination string `json:"destination,omitempty"` // addr:port
	Verbose     bool   `json:"verbose,omitempty"`
	Wireshark   bool   `json:"wireshark,omitempty"`
	Last        int    `json:"last,omitempty"`
	Svg         bool   `json:"svg,omitempty"` // the time–sequence diagram (svg.go)
}

// Response is the daemon's answer: the command's output (text, or a pcap
// for "display cache-packet" with Wireshark), or an error for the user.
type Response struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Output []byte `json:"output,omitempty"`
}

// maxRequest bounds a control request.
const maxRequest = 1 << 20

// ServeControl listens on the Unix socket path (mode 0600: mutating
// commands are for the operator only) and serves requests until ctx is done.
func (d *Daemon) ServeControl(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another tcptap is listening on it", path)
	}
	os.Remove(path) // a stale socket of a daemon that died
	old := setUmask(0o177)
	ln, err := net.Listen("unix", path)
	setUmask(old)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer os.Remove(path)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket %s: %w", path, err)
		}
		go d.serveConn(conn)
	}
}

func (d *Daemon) serveConn(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req Request
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, maxRequest)).Decode(&req); err != nil {
		resp.Error = fmt.Sprintf("bad request: %v", err)
	} else if out, err := d.HandleAs(&req, PeerActor(conn)); err != nil {
		resp.Error = err.Error()
	} else {
		resp.OK, resp.Output = true, out
	}
	json.NewEncoder(conn).Encode(&resp)
}

// Handle executes one request and returns its output.
func (d *Daemon) Handle(req *Request) ([]byte, error) {
	var out bytes.Buffer
	arg := func() (string, error) {
		if len(req.Args) != 1 {
			return "", fmt.Errorf("%s: want one argument", req.Cmd)
		}
		return req.Args[0], nil
	}
	switch req.Cmd {
	case "trace enable":
		return nil, d.SetEnabled(true)
	case "trace disable":
		return nil, d.SetEnabled(false)
	case "trace filter":
		return nil, d.SetFilter(req.Args)
	case "trace only-new-connection":
		a, err := arg()
		if err != nil {
			return nil, err
		}
		on, err := strconv.ParseBool(a)
		if err != nil {
			return nil, fmt.Errorf("trace only-new-connection %q: want true or false", a)
		}
		return nil, d.SetOnlyNewConnection(on)
	case "trace max-packet-number":
		a, err := arg()
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(a)
		if err != nil {
			return nil, fmt.Errorf("trace max-packet-number %q: want a number", a)
		}
		return nil, d.SetMaxPacketNumber(n)
	case "trace memory-quota":
		a, err := arg()
		if err != nil {
			return nil, err
		}
		n, err := config.ParseSize(a)
		if err != nil {
			return nil, fmt.Errorf("trace memory-quota %q: %w", a, err)
		}
		return nil, d.SetMemoryQuota(n)
	case "trace cache-mode":
		a, err := arg()
		if err != nil {
			return nil, err
		}
		m, err := cache.ParseMode(a)
		if err != nil {
			return nil, err
		}
		return nil, d.SetCacheMode(m)
	case "trace persist":
		return nil, d.Persist()
	case "reset cache":
		d.ResetCache()
		return nil, nil
	case "display information":
		err := exporter.WriteInformation(&out, d.Information())
		return out.Bytes(), err
	case "display cache-connection":
		if req.Family == "ip" {
			req.Family = "ipv4" // the vendor's form: display tcp trace cache-connection ip
		}
		if req.Family != "" && req.Family != "ipv4" && req.Family != "ipv6" {
			return nil, fmt.Errorf("display cache-connection %q: want ip (or ipv4) or ipv6", req.Family)
		}
		var recs []record.Record
		for _, e := range d.cache.Entries(nil) {
			if req.Family == "" || e.Record.Family == req.Family {
				recs = append(recs, e.Record)
			}
		}
		exporter.SortRecords(recs)
		err := exporter.WriteTable(&out, recs)
		return out.Bytes(), err
	case "display cache-packet":
		return d.cachePacket(req)
	case "display at-risk":
		return d.atRisk(req)
	}
	return nil, fmt.Errorf("unknown command %q", req.Cmd)
}

// atRisk lists the open connections at risk (display at-risk).
func (d *Daemon) atRisk(req *Request) ([]byte, error) {
	if req.Family == "ip" {
		req.Family = "ipv4"
	}
	if req.Family != "" && req.Family != "ipv4" && req.Family != "ipv6" {
		return nil, fmt.Errorf("display at-risk %q: want ipv4 or ipv6", req.Family)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var recs []record.Record
	q := pipeline.OpenQuery{AtRisk: true}
	for {
		pg, err := d.Open(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("display at-risk: %w", err)
		}
		for _, r := range pg.Records {
			if req.Family == "" || r.Family == req.Family {
				recs = append(recs, r)
			}
		}
		if !pg.More || len(pg.Records) == 0 {
			break
		}
		q.From = pg.Records[len(pg.Records)-1].ID + 1
	}
	var out bytes.Buffer
	err := exporter.WriteAtRisk(&out, recs, time.Now())
	return out.Bytes(), err
}

func (d *Daemon) cachePacket(req *Request) ([]byte, error) {
	a, errA := netip.ParseAddrPort(req.Source)
	b, errB := netip.ParseAddrPort(req.Destination)
	if err := errors.Join(errA, errB); err != nil {
		return nil, fmt.Errorf("display cache-packet: source and destination must be addr:port ([addr]:port for IPv6): %v", err)
	}
	if req.Last < 0 {
		return nil, fmt.Errorf("display cache-packet: last %d: want a positive count", req.Last)
	}
	entries := d.cache.Find(a, b)
	if len(entries) == 0 {
		return nil, fmt.Errorf("no cached connection between %v and %v (cache mode %s)", a, b, d.cache.Mode())
	}
	if req.Svg {
		return d.cachePacketSVG(entries[len(entries)-1])
	}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	if req.Wireshark {
		e := entries[len(entries)-1]
		if err := exporter.WritePcap(bw, &e.Record, e.Packets()); err != nil {
			return nil, err
		}
	} else {
		for i, e := range entries {
			if i > 0 {
				fmt.Fprintln(bw)
			}
			if !e.Traced {
				fmt.Fprintf(bw, "%v -> %v: not traced (filter, only-new-connection or memory quota); no packets recorded\n", e.Record.Client, e.Record.Server)
			}
			opts := exporter.PacketViewOptions{Verbose: req.Verbose, Last: req.Last, Dropped: e.Overwritten}
			if err := exporter.WriteConnectionPackets(bw, &e.Record, e.Packets(), opts); err != nil {
				return nil, err
			}
		}
	}
	err := bw.Flush()
	return out.Bytes(), err
}

// Call sends one request to the daemon's control socket and returns its
// output, or the daemon's error.
func Call(path string, req *Request) ([]byte, error) {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w (is 'tcptap run' running, and is --control.socket the same?)", path, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, 1<<30)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("control socket %s: bad answer: %w", path, err)
	}
	if !resp.OK {
		return nil, errors.New(resp.Error)
	}
	return resp.Output, nil
}
