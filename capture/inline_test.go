package capture

import (
	"testing"

	"github.com/tcptap/tcptap/internal/inlinetest"
)

// TestInlining: the decoder's and the readers' small helpers, called for
// every frame, stay inlinable.
func TestInlining(t *testing.T) {
	inlinetest.Check(t, []string{
		"be16", "be32",
		"Flags.Has", "Flags.Any",
		"(*Packet).SrcAddr", "(*Packet).DstAddr",
		"(*PcapReader).u16", "(*PcapReader).u32",
		"(*PcapngReader).u16", "(*PcapngReader).u32", "(*PcapngReader).frame",
		"mix64",
	})
}
