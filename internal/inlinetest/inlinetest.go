// Package inlinetest checks that the functions a package's hot path relies
// on being inlined stay inlinable, as net/netip's TestInlining does: a
// change that pushes one over the compiler's budget would slow every packet
// without failing any other test.
package inlinetest

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// canInline matches the compiler's "can inline NAME with cost N" lines.
var canInline = regexp.MustCompile(`: can inline (\S+)`)

// Check builds the package in the current directory with -gcflags=-m and
// fails t for each name in want the compiler no longer says it can inline.
// Names are as the compiler prints them: "be16", "(*Decoder).count",
// "Flags.Has".
func Check(t *testing.T, want []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("inlining check: skipped with -short")
	}
	out, err := exec.Command("go", "build", "-gcflags=-m", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	got := map[string]bool{}
	for _, m := range canInline.FindAllStringSubmatch(string(out), -1) {
		got[m[1]] = true
	}
	var missing []string
	for _, name := range want {
		if !got[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("no longer inlinable (the hot path counts on it): %s", strings.Join(missing, ", "))
	}
}
