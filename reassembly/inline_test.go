package reassembly

import (
	"testing"

	"github.com/tcptap/tcptap/internal/inlinetest"
)

// TestInlining: the connection table's accessors, called several times for
// every segment, stay inlinable.
func TestInlining(t *testing.T) {
	inlinetest.Check(t, []string{
		"seqGT", "seqGE", "seqLT", "seqLE", "roleIf",
		"(*tracked).has", "(*tracked).set", "(*tracked).is", "(*tracked).key",
		"(*tracked).lastSeen", "(*tracked).dirOf",
		"(*trackedEnd).has", "(*trackedEnd).set",
		"(*Table).smallCount", "(*Table).wideValue", "(*Table).rareExtIf", "(*Table).closeExtIf",
		"(*Table).traceOf", "(*Table).watchGrown", "(*Table).pushBack",
		"(*Run).reset", "(*zeekCore).has", "segLen",
	})
}
