package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/daemon"
)

// defaultControlSocket is where 'tcptap run' listens unless configured.
var defaultControlSocket = config.Default().Control.Socket

// controlCmd builds a subcommand that sends one request to the daemon and
// prints its output.
func controlCmd(use, short string, args cobra.PositionalArgs, build func(args []string) (*daemon.Request, error)) *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := build(args)
			if err != nil {
				return err
			}
			out, err := daemon.Call(socket, req)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&socket, "control.socket", envOr("TCPTAP_CONTROL_SOCKET", defaultControlSocket), "the daemon's control socket")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func simple(cmd string) func([]string) (*daemon.Request, error) {
	return func(args []string) (*daemon.Request, error) { return &daemon.Request{Cmd: cmd, Args: args}, nil }
}

func newTraceCmd() *cobra.Command {
	trace := &cobra.Command{
		Use:   "trace",
		Short: "Change the running daemon's trace configuration (the vendor's 'tcp trace' commands)",
	}
	trace.AddCommand(
		controlCmd("enable", "Start tracing (recording packets of new connections)", cobra.NoArgs, simple("trace enable")),
		controlCmd("disable", "Stop tracing; filter, max-packet-number and memory-quota can then change", cobra.NoArgs, simple("trace disable")),
		controlCmd("filter [RULE...]", "Replace the ACL (no rules: trace every connection); only while disabled", cobra.ArbitraryArgs, simple("trace filter")),
		controlCmd("only-new-connection true|false", "Trace only connections whose handshake is seen after enabling; only while disabled", cobra.ExactArgs(1), simple("trace only-new-connection")),
		controlCmd("max-packet-number N", "Packet records kept per connection; only while disabled", cobra.ExactArgs(1), simple("trace max-packet-number")),
		controlCmd("memory-quota SIZE", "Memory for records and cached connections (e.g. 100MiB); only while disabled", cobra.ExactArgs(1), simple("trace memory-quota")),
		controlCmd("cache-mode abnormal-close|all", "Which closed connections the cache keeps", cobra.ExactArgs(1), simple("trace cache-mode")),
		controlCmd("persist", "Save the running trace configuration to the daemon's config file", cobra.NoArgs, simple("trace persist")),
	)
	return trace
}

func newReloadCmd() *cobra.Command {
	return controlCmd("reload", "Re-read the daemon's configuration file and apply what changes at run time (as SIGHUP; the log names the caller)", cobra.NoArgs, simple("reload"))
}

func newResetCmd() *cobra.Command {
	reset := &cobra.Command{Use: "reset", Short: "Reset daemon state"}
	reset.AddCommand(controlCmd("cache", "Clear the trace cache: cached connections and their packets", cobra.NoArgs, simple("reset cache")))
	return reset
}

func newDisplayCmd() *cobra.Command {
	display := &cobra.Command{Use: "display", Short: "Show the running daemon's trace cache and statistics"}
	display.AddCommand(
		controlCmd("cache-connection [ip|ipv4|ipv6]", "The table of cached closed connections and their reasons (ip: IPv4, as the vendor's 'display tcp trace cache-connection ip')", cobra.MaximumNArgs(1),
			func(args []string) (*daemon.Request, error) {
				req := &daemon.Request{Cmd: "display cache-connection"}
				if len(args) == 1 {
					req.Family = args[0]
				}
				return req, nil
			}),
		controlCmd("information", "The trace configuration and statistics", cobra.NoArgs, simple("display information")),
		controlCmd("at-risk [ip|ipv4|ipv6]", "Open connections at risk of a timeout: retransmitting, probing a zero window, unanswered keepalives or SYNs", cobra.MaximumNArgs(1),
			func(args []string) (*daemon.Request, error) {
				req := &daemon.Request{Cmd: "display at-risk"}
				if len(args) == 1 {
					req.Family = args[0]
				}
				return req, nil
			}),
		newCachePacketCmd(),
	)
	return display
}

func newCachePacketCmd() *cobra.Command {
	var srcIP, dstIP string
	var srcPort, dstPort uint16
	var verbose, wireshark, svg bool
	var last int
	cmd := controlCmd("cache-packet", "The recorded packets of one cached connection", cobra.NoArgs, func([]string) (*daemon.Request, error) {
		a, err := parseIP(srcIP)
		if err != nil {
			return nil, fmt.Errorf("--source-ip %q: %v", srcIP, err)
		}
		b, err := parseIP(dstIP)
		if err != nil {
			return nil, fmt.Errorf("--destination-ip %q: %v", dstIP, err)
		}
		if verbose && wireshark || svg && (verbose || wireshark) {
			return nil, fmt.Errorf("--verbose, --wireshark and --svg exclude each other")
		}
		return &daemon.Request{
			Cmd:         "display cache-packet",
			Source:      netip.AddrPortFrom(a, srcPort).String(),
			Destination: netip.AddrPortFrom(b, dstPort).String(),
			Verbose:     verbose, Wireshark: wireshark, Last: last, Svg: svg,
		}, nil
	})
	fl := cmd.Flags()
	fl.StringVar(&srcIP, "source-ip", "", "one endpoint's address")
	fl.Uint16Var(&srcPort, "source-port", 0, "one endpoint's port")
	fl.StringVar(&dstIP, "destination-ip", "", "the other endpoint's address")
	fl.Uint16Var(&dstPort, "destination-port", 0, "the other endpoint's port")
	fl.BoolVar(&verbose, "verbose", false, "add each packet's sequence snapshot and analysis flags")
	fl.BoolVar(&wireshark, "wireshark", false, "write the packets as a pcap (redirect to a file)")
	fl.IntVar(&last, "last", 0, "only the last N packets")
	fl.BoolVar(&svg, "svg", false, "write the connection's time–sequence diagram as SVG (redirect to a file)")
	for _, f := range []string{"source-ip", "source-port", "destination-ip", "destination-port"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// parseIP parses an address as the views print it: 10.0.0.1, fd00::1, or
// an IPv6 address in brackets ([fd00::1], the table's form of addr:port).
func parseIP(s string) (netip.Addr, error) {
	if t, ok := strings.CutPrefix(s, "["); ok {
		if t, ok = strings.CutSuffix(t, "]"); ok {
			a, err := netip.ParseAddr(t)
			if err == nil && !a.Is6() {
				return netip.Addr{}, fmt.Errorf("brackets are for IPv6 addresses")
			}
			return a, err
		}
	}
	return netip.ParseAddr(s)
}
