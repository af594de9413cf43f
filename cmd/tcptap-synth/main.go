// Command tcptap-synth writes a deterministic synthetic TCP capture (classic
// pcap, Ethernet) for benchmarks: many interleaved connections with small
// segments, some IPv6 and VLAN-tagged, retransmissions, zero-window
// episodes, keepalives and every kind of ending (see package
// internal/synth). The same flags always produce the same bytes.
//
//	tcptap-synth --connections 40000 --packets 2000000 --seed 1 --out bench.pcap
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tcptap/tcptap/internal/synth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "tcptap-synth: %v\n", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tcptap-synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conns := fs.Int("connections", 40_000, "number of connections")
	pkts := fs.Int("packets", 2_000_000, "target number of packets (at least 20 per connection)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed and flags give the same file")
	payload := fs.String("payload", "small", "data segments: none (headers captured only), small, or mss")
	durationS := fs.Int("duration", 60, "capture span in seconds (at least 30)")
	out := fs.String("out", "", "output file (\"-\" or empty: standard output)")
	quiet := fs.Bool("quiet", false, "do not print the summary on standard error")
	vxlan := fs.Bool("vxlan", false, "wrap every frame in VXLAN (UDP 4789), as a cloud's traffic mirroring delivers it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	mode, err := synth.ParsePayload(*payload)
	if err != nil {
		return err
	}
	cfg := synth.Config{Connections: *conns, Packets: *pkts, Seed: *seed, Payload: mode,
		DurationMicros: int64(*durationS) * 1_000_000, VXLAN: *vxlan}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var w io.Writer = stdout
	var f *os.File
	if *out != "" && *out != "-" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		w = f
	}
	st, err := synth.Generate(w, cfg)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(stderr, "packets %d  connections %d  bytes %d  ipv6 %d  vlan %d  retransmissions %d  zero-windows %d  window-probes %d  keepalives %d  max-open %d\n",
			st.Packets, st.Connections, st.Bytes, st.IPv6, st.VLAN, st.Retransmissions, st.ZeroWindows, st.WindowProbes, st.Keepalives, st.MaxOpen)
		fmt.Fprintf(stderr, "expected reasons:")
		for k := synth.Kind(0); k < synth.NumKinds; k++ {
			fmt.Fprintf(stderr, " %s=%d", k.Expected(), st.ByKind[k])
		}
		fmt.Fprintln(stderr)
	}
	return nil
}
