package tcpstate

import (
	"testing"

	"github.com/tcptap/tcptap/internal/inlinetest"
)

// TestInlining: Role.Other, called for every segment the tracker applies,
// stays inlinable.
func TestInlining(t *testing.T) {
	inlinetest.Check(t, []string{"Role.Other"})
}
