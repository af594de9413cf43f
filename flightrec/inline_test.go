package flightrec

import (
	"testing"

	"github.com/tcptap/tcptap/internal/inlinetest"
)

// TestInlining: the ring's slot lookup, run for every recorded segment,
// stays inlinable.
func TestInlining(t *testing.T) {
	inlinetest.Check(t, []string{"(*Ring).at", "(*Quota).Release"})
}
