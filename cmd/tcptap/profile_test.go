package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestProfileFlags checks --cpuprofile and --memprofile write pprof files
// (gzip-compressed protocol buffers) for a command that succeeds.
func TestProfileFlags(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	if _, errOut, code := runCLI(t, "read", "--cpuprofile", cpu, "--memprofile", mem, samplePcap); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: %d bytes, not a gzip-compressed profile", filepath.Base(p), len(b))
		}
	}
	if _, _, code := runCLI(t, "read", "--cpuprofile", filepath.Join(dir, "missing", "cpu.pprof"), samplePcap); code != 1 {
		t.Errorf("an uncreatable --cpuprofile file: exit %d, want 1", code)
	}
}
