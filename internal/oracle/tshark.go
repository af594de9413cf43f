// Package oracle compares tcptap's records with what peer tools say about
// the same capture: tshark's per-stream, per-direction counts (the
// expected/tshark/*.json files of the peer corpus, or a fresh tshark run
// with the corpus's command) and Zeek's conn.log rows
// (expected/zeek/*.json).
//
// The tshark side is [Run] (tshark on a pcap, aggregated into a [Result])
// and [Load] (an expected file, decoded into the same [Result]). [Match]
// pairs tshark streams with tcptap records by unordered 4-tuple and time
// order, and [Compare] lists the per-direction differences of a pairing.
package oracle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// Command is the tshark command line of the peer corpus (TShark 4.0.17):
// FILE is replaced by the capture's path. The expected files store it too.
const Command = "tshark -n -r FILE -Y tcp -T fields -E separator=/t -E occurrence=l" +
	" -o tcp.analyze_sequence_numbers:TRUE -o tcp.relative_sequence_numbers:TRUE" +
	" -o tcp.check_checksum:FALSE -o tcp.desegment_tcp_streams:TRUE -o tcp.reassemble_out_of_order:FALSE" +
	" -e frame.number -e frame.time_epoch -e frame.protocols -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst" +
	" -e tcp.srcport -e tcp.dstport -e tcp.stream -e tcp.flags -e tcp.len -e tcp.window_size_value" +
	" -e tcp.analysis.retransmission -e tcp.analysis.fast_retransmission -e tcp.analysis.spurious_retransmission" +
	" -e tcp.analysis.zero_window -e tcp.analysis.zero_window_probe -e tcp.analysis.zero_window_probe_ack" +
	" -e tcp.analysis.keep_alive -e tcp.analysis.keep_alive_ack -e tcp.analysis.window_full" +
	" -e tcp.analysis.duplicate_ack -e tcp.analysis.lost_segment -e tcp.analysis.ack_lost_segment" +
	" -e tcp.analysis.out_of_order -e tcp.analysis.reused_ports"

// Counts are one direction's counts, as the expected/tshark files hold them.
// The analysis counts are numbers of frames carrying the tcp.analysis field
// (a fast or spurious retransmission also carries tcp.analysis.retransmission).
type Counts struct {
	Packets                    uint64 `json:"packets"`
	PayloadBytes               uint64 `json:"payload_bytes"`
	SYN                        uint32 `json:"syn"`     // SYN without ACK
	SYNACK                     uint32 `json:"syn_ack"` // SYN with ACK
	FIN                        uint32 `json:"fin"`
	RST                        uint32 `json:"rst"`
	ZeroWindowAdvertsRaw       uint32 `json:"zero_window_adverts_raw"` // window field 0, RSTs aside
	Retransmission             uint32 `json:"retransmission"`
	FastRetransmission         uint32 `json:"fast_retransmission"`
	SpuriousRetransmission     uint32 `json:"spurious_retransmission"`
	ZeroWindow                 uint32 `json:"zero_window"`
	ZeroWindowProbe            uint32 `json:"zero_window_probe"`
	ZeroWindowProbeAck         uint32 `json:"zero_window_probe_ack"`
	KeepAlive                  uint32 `json:"keep_alive"`
	KeepAliveAck               uint32 `json:"keep_alive_ack"`
	WindowFull                 uint32 `json:"window_full"`
	DuplicateAck               uint32 `json:"duplicate_ack"`
	PreviousSegmentNotCaptured uint32 `json:"previous_segment_not_captured"`
	AckOfUnseenSegment         uint32 `json:"ack_of_unseen_segment"`
	OutOfOrder                 uint32 `json:"out_of_order"`
	ReusedPorts                uint32 `json:"reused_ports"`
}

func (c *Counts) add(o *Counts) {
	c.Packets += o.Packets
	c.PayloadBytes += o.PayloadBytes
	c.SYN += o.SYN
	c.SYNACK += o.SYNACK
	c.FIN += o.FIN
	c.RST += o.RST
	c.ZeroWindowAdvertsRaw += o.ZeroWindowAdvertsRaw
	c.Retransmission += o.Retransmission
	c.FastRetransmission += o.FastRetransmission
	c.SpuriousRetransmission += o.SpuriousRetransmission
	c.ZeroWindow += o.ZeroWindow
	c.ZeroWindowProbe += o.ZeroWindowProbe
	c.ZeroWindowProbeAck += o.ZeroWindowProbeAck
	c.KeepAlive += o.KeepAlive
	c.KeepAliveAck += o.KeepAliveAck
	c.WindowFull += o.WindowFull
	c.DuplicateAck += o.DuplicateAck
	c.PreviousSegmentNotCaptured += o.PreviousSegmentNotCaptured
	c.AckOfUnseenSegment += o.AckOfUnseenSegment
	c.OutOfOrder += o.OutOfOrder
	c.ReusedPorts += o.ReusedPorts
}

// Endpoint is one side of a stream.
type Endpoint struct {
	IP   netip.Addr `json:"ip"`
	Port uint16     `json:"port"`
}

// AddrPort returns the endpoint as a netip.AddrPort.
func (e Endpoint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.IP.Unmap(), e.Port) }

// Stream is one tcp.stream of tshark: its client is the sender of the
// stream's first SYN without ACK, or of its first frame when there is none.
type Stream struct {
	TCPStream  int      `json:"tcp_stream"`
	Client     Endpoint `json:"client"`
	Server     Endpoint `json:"server"`
	ClientFrom string   `json:"client_from"`
	IPVersion  int      `json:"ip_version"`
	FirstFrame int      `json:"first_frame"`
	FirstTS    float64  `json:"first_ts"` // seconds since the epoch, as the files round them
	LastTS     float64  `json:"last_ts"`
	Duration   float64  `json:"duration"`
	C2S        Counts   `json:"c2s"`
	S2C        Counts   `json:"s2c"`
}

// Client-selection rules, as the expected files name them.
const (
	ClientFromSYN   = "first SYN without ACK"
	ClientFromFirst = "first packet (no SYN seen)"
)

// Result is tshark's view of one capture, in the layout of the corpus's
// expected/tshark/*.json files. Fields that need more than the corpus's
// tshark command (capinfos output, checksum counts) are filled by Load only.
type Result struct {
	Pcap                      string          `json:"pcap"`
	Tool                      string          `json:"tool"`
	Command                   string          `json:"command"`
	FileInfo                  json.RawMessage `json:"file_info,omitempty"`
	TsharkRC                  int             `json:"tshark_rc"`
	TsharkStderr              []string        `json:"tshark_stderr,omitempty"`
	BadTCPChecksumPackets     int             `json:"bad_tcp_checksum_packets"`
	TCPStreams                int             `json:"tcp_streams"`
	FramesWithoutUsableHeader []int           `json:"tcp_frames_without_usable_header"`
	Totals                    Counts          `json:"totals"`
	Streams                   []Stream        `json:"streams"`
}

// Load reads an expected/tshark/*.json file.
func Load(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Available reports whether a tshark binary is on the PATH.
func Available() bool {
	_, err := exec.LookPath("tshark")
	return err == nil
}

// Run runs command (the corpus's tshark command, FILE standing for the
// capture; empty means [Command]) on pcap and aggregates its output. A
// non-zero exit status is kept in TsharkRC with the stderr lines, and what
// tshark printed before failing is still aggregated, as the corpus did
// (tshark stops at a bad pcapng block but reports the frames before it).
// Only a failure to start tshark or to parse its output is an error.
func Run(ctx context.Context, command, pcap string) (*Result, error) {
	if command == "" {
		command = Command
	}
	fields := strings.Fields(command)
	if len(fields) == 0 || fields[0] != "tshark" {
		return nil, fmt.Errorf("oracle: not a tshark command: %q", command)
	}
	args := make([]string, 0, len(fields)-1)
	for _, f := range fields[1:] {
		if f == "FILE" {
			f = pcap
		}
		args = append(args, f)
	}
	cmd := exec.CommandContext(ctx, "tshark", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	rc := 0
	if runErr != nil {
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) || ctx.Err() != nil {
			return nil, fmt.Errorf("oracle: tshark on %s: %w", pcap, errors.Join(runErr, ctx.Err()))
		}
		rc = ee.ExitCode()
	}
	r, err := Aggregate(&stdout)
	if err != nil {
		return nil, fmt.Errorf("oracle: tshark on %s: %w", pcap, err)
	}
	r.Pcap, r.Command, r.TsharkRC = pcap, command, rc
	if rc != 0 {
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if l != "" && !strings.HasPrefix(l, "Running as user") {
				r.TsharkStderr = append(r.TsharkStderr, l)
			}
		}
	}
	return r, nil
}

// Columns of the corpus command's output.
const (
	colFrame = iota
	colTime
	colProtocols
	colIPSrc
	colIPv6Src
	colIPDst
	colIPv6Dst
	colSrcPort
	colDstPort
	colStream
	colFlags
	colLen
	colWindow
	colAnalysis // first of the tcp.analysis.* columns, in analysisFields order
)

// analysisFields are the tcp.analysis.* columns of [Command], in order,
// with the Counts field each increments.
var analysisFields = []func(c *Counts) *uint32{
	func(c *Counts) *uint32 { return &c.Retransmission },
	func(c *Counts) *uint32 { return &c.FastRetransmission },
	func(c *Counts) *uint32 { return &c.SpuriousRetransmission },
	func(c *Counts) *uint32 { return &c.ZeroWindow },
	func(c *Counts) *uint32 { return &c.ZeroWindowProbe },
	func(c *Counts) *uint32 { return &c.ZeroWindowProbeAck },
	func(c *Counts) *uint32 { return &c.KeepAlive },
	func(c *Counts) *uint32 { return &c.KeepAliveAck },
	func(c *Counts) *uint32 { return &c.WindowFull },
	func(c *Counts) *uint32 { return &c.DuplicateAck },
	func(c *Counts) *uint32 { return &c.PreviousSegmentNotCaptured },
	func(c *Counts) *uint32 { return &c.AckOfUnseenSegment },
	func(c *Counts) *uint32 { return &c.OutOfOrder },
	func(c *Counts) *uint32 { return &c.ReusedPorts },
}

// TCP flag bits of tcp.flags.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

type streamAcc struct {
	s          Stream
	first      Endpoint // sender of the first frame
	firstDst   Endpoint // and its destination
	firstNS    int64
	lastNS     int64
	haveClient bool
	// Counts by sender until the client is known.
	bySender map[Endpoint]*Counts
	order    []Endpoint
}

// Aggregate reads the tab-separated output of the corpus's tshark command
// and sums it per tcp.stream and direction. Frames whose TCP header tshark
// could not use (no tcp.flags, e.g. a header cut by the snap length) are
// listed in FramesWithoutUsableHeader and not counted.
func Aggregate(r io.Reader) (*Result, error) {
	res := &Result{FramesWithoutUsableHeader: []int{}, Streams: []Stream{}}
	accs := map[int]*streamAcc{}
	var ids []int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		col := strings.Split(text, "\t")
		if len(col) < colAnalysis+len(analysisFields) {
			return nil, fmt.Errorf("line %d: %d columns, want %d", line, len(col), colAnalysis+len(analysisFields))
		}
		frame, err := strconv.Atoi(col[colFrame])
		if err != nil {
			return nil, fmt.Errorf("line %d: frame.number %q", line, col[colFrame])
		}
		if col[colFlags] == "" || col[colStream] == "" || col[colSrcPort] == "" || col[colDstPort] == "" {
			res.FramesWithoutUsableHeader = append(res.FramesWithoutUsableHeader, frame)
			continue
		}
		id, err := strconv.Atoi(col[colStream])
		if err != nil {
			return nil, fmt.Errorf("frame %d: tcp.stream %q", frame, col[colStream])
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(col[colFlags], "0x"), 16, 16)
		if err != nil {
			return nil, fmt.Errorf("frame %d: tcp.flags %q", frame, col[colFlags])
		}
		ts, err := parseEpoch(col[colTime])
		if err != nil {
			return nil, fmt.Errorf("frame %d: frame.time_epoch %q", frame, col[colTime])
		}
		src, dst, ver, err := endpoints(col)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", frame, err)
		}
		var seglen, window uint64
		if col[colLen] != "" {
			if seglen, err = strconv.ParseUint(col[colLen], 10, 32); err != nil {
				return nil, fmt.Errorf("frame %d: tcp.len %q", frame, col[colLen])
			}
		}
		windowKnown := col[colWindow] != ""
		if windowKnown {
			if window, err = strconv.ParseUint(col[colWindow], 10, 16); err != nil {
				return nil, fmt.Errorf("frame %d: tcp.window_size_value %q", frame, col[colWindow])
			}
		}

		a := accs[id]
		if a == nil {
			a = &streamAcc{
				s:        Stream{TCPStream: id, IPVersion: ver, FirstFrame: frame},
				first:    src,
				firstDst: dst,
				firstNS:  ts,
				bySender: map[Endpoint]*Counts{},
			}
			accs[id] = a
			ids = append(ids, id)
		}
		a.lastNS = ts // the stream's last frame, as the corpus files record it (not the latest time)
		if !a.haveClient && flags&(flagSYN|flagACK) == flagSYN {
			a.haveClient = true
			a.s.Client, a.s.Server = src, dst
			a.s.ClientFrom = ClientFromSYN
		}
		c := a.bySender[src]
		if c == nil {
			c = &Counts{}
			a.bySender[src] = c
			a.order = append(a.order, src)
		}
		c.Packets++
		c.PayloadBytes += seglen
		switch {
		case flags&(flagSYN|flagACK) == flagSYN:
			c.SYN++
		case flags&(flagSYN|flagACK) == flagSYN|flagACK:
			c.SYNACK++
		}
		if flags&flagFIN != 0 {
			c.FIN++
		}
		if flags&flagRST != 0 {
			c.RST++
		}
		if windowKnown && window == 0 && flags&flagRST == 0 {
			c.ZeroWindowAdvertsRaw++
		}
		for i, f := range analysisFields {
			if col[colAnalysis+i] != "" {
				*f(c)++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Ints(ids)
	for _, id := range ids {
		a := accs[id]
		if !a.haveClient {
			a.s.Client = a.first
			a.s.ClientFrom = ClientFromFirst
			for _, e := range a.order {
				if e != a.first {
					a.s.Server = e
					break
				}
			}
			if !a.s.Server.IP.IsValid() {
				// Only one side spoke: the server is the first frame's
				// destination, which the per-sender map does not keep.
				a.s.Server = a.firstDst
			}
		}
		if c := a.bySender[a.s.Client]; c != nil {
			a.s.C2S = *c
		}
		if a.s.Server != a.s.Client {
			if c := a.bySender[a.s.Server]; c != nil {
				a.s.S2C = *c
			}
		}
		a.s.FirstTS = roundUS(a.firstNS)
		a.s.LastTS = roundUS(a.lastNS)
		a.s.Duration = roundUS(a.lastNS - a.firstNS)
		res.Streams = append(res.Streams, a.s)
		res.Totals.add(&a.s.C2S)
		res.Totals.add(&a.s.S2C)
	}
	res.TCPStreams = len(res.Streams)
	return res, nil
}

// roundUS turns nanoseconds into seconds rounded to the microsecond, as the
// expected files store times.
func roundUS(ns int64) float64 {
	us := ns / 1e3
	if ns%1e3 >= 500 {
		us++
	}
	return float64(us) / 1e6
}

// parseEpoch parses frame.time_epoch ("1093522326.102435000") exactly.
func parseEpoch(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, err
	}
	ns := n * 1e9
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, err
		}
		ns += f
	}
	return ns, nil
}

func endpoints(col []string) (src, dst Endpoint, ver int, err error) {
	srcIP, dstIP := col[colIPSrc], col[colIPDst]
	ver = 4
	if col[colIPv6Src] != "" && (srcIP == "" || lastProto(col[colProtocols]) == "ipv6") {
		srcIP, dstIP, ver = col[colIPv6Src], col[colIPv6Dst], 6
	}
	s, err1 := netip.ParseAddr(srcIP)
	d, err2 := netip.ParseAddr(dstIP)
	if err := errors.Join(err1, err2); err != nil {
		return src, dst, 0, fmt.Errorf("addresses %q %q: %w", srcIP, dstIP, err)
	}
	sp, err1 := strconv.ParseUint(col[colSrcPort], 10, 16)
	dp, err2 := strconv.ParseUint(col[colDstPort], 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		return src, dst, 0, fmt.Errorf("ports %q %q: %w", col[colSrcPort], col[colDstPort], err)
	}
	return Endpoint{s, uint16(sp)}, Endpoint{d, uint16(dp)}, ver, nil
}

// lastProto returns the last IP version layer named in frame.protocols
// before tcp ("ip" or "ipv6"), for frames that carry both (tunnels).
func lastProto(protocols string) string {
	last := ""
	for _, p := range strings.Split(protocols, ":") {
		switch p {
		case "ip", "ipv6":
			last = p
		case "tcp":
			return last
		}
	}
	return last
}
