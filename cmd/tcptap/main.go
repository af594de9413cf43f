// Command tcptap is a passive TCP tap analyzer: it rebuilds every TCP
// connection seen on a mirror port or in a capture file and says why each
// one ended.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit status for errors already reported to the user.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tcptap",
		Short: "Passive TCP tap analyzer: why did each connection end?",
		Long: `tcptap watches mirrored TCP traffic (a capture file, or live on a mirror port),
rebuilds every connection's state from both directions, and reports why each
one ended: normal close by either side, reset sent or received, refused, SYN,
retransmission, persist or keepalive timeout, idle, or still open.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newReadCmd(), newRunCmd(), newTraceCmd(), newDisplayCmd(), newResetCmd(), newReloadCmd(), newVersionCmd())
	addProfileFlags(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "tcptap %s\n", version)
		},
	}
}

func main() {
	root := newRootCmd()
	cmd, err := root.ExecuteC()
	if cmd != nil {
		if perr := finishProfiles(cmd); perr != nil && err == nil {
			err = perr
		}
	}
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintf(os.Stderr, "tcptap: %v\n", err)
		os.Exit(1)
	}
}
