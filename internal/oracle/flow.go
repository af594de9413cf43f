package oracle

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// FlowLines returns tshark's one-line summary of every packet between two
// ports of a capture, with absolute sequence numbers, for failure reports,
// and the display filter it used. It returns nil lines when tshark is not
// installed, and a single line with the error when tshark fails.
func FlowLines(path string, portA, portB uint16) (lines []string, filter string) {
	filter = fmt.Sprintf("tcp.port == %d && tcp.port == %d", portA, portB)
	if _, err := exec.LookPath("tshark"); err != nil {
		return nil, filter
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-r", path, "-n", "-o", "tcp.relative_sequence_numbers:FALSE", "-Y", filter).CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("tshark: %v: %s", err, out)}, filter
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n"), filter
}
