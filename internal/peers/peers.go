// Package peers locates the peer-authored capture corpus (captures from the
// test suites of Zeek, Wireshark, gopacket, Arkime and suricata-verify, with
// what those tools say about them) for tests. The corpus lives in
// ../shared/testdata/peers beside the repository.
package peers

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Dir returns the corpus directory. Without it the test is skipped, except
// in CI (CI set in the environment), where its absence is a failure.
func Dir(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err == nil {
		dir := filepath.Join(root, "..", "shared", "testdata", "peers")
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("peer corpus ../shared/testdata/peers not found beside the repository")
	}
	t.Skip("peer corpus ../shared/testdata/peers not found beside the repository; skipping")
	return ""
}

// Pcaps returns the paths of every capture in the corpus, sorted.
func Pcaps(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join(Dir(t), "pcaps")
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".pcap") || strings.HasSuffix(p, ".pcapng")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// ModuleRoot returns the repository's root directory (where go.mod is).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// EncapDir returns the encapsulation corpus (../shared/testdata/encap:
// tunnels, mirror encapsulations and link types, with tshark's counts),
// skipping the test without it except in CI.
func EncapDir(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err == nil {
		dir := filepath.Join(root, "..", "shared", "testdata", "encap")
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("encapsulation corpus ../shared/testdata/encap not found beside the repository")
	}
	t.Skip("encapsulation corpus ../shared/testdata/encap not found beside the repository; skipping")
	return ""
}
