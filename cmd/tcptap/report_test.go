package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/flightrec"
)

// TestReadSVGAndHTML: tcptap read --connection ... --svg and --html write
// the diagram and the report, and refuse --svg without --connection.
func TestReadSVGAndHTML(t *testing.T) {
	sample := filepath.Join("..", "..", "testdata", "sample.pcap")
	dir := t.TempDir()
	svg, html := filepath.Join(dir, "rt.svg"), filepath.Join(dir, "report.html")
	_, errOut, code := runCLI(t, "read", "--connection", "10.201.0.1:20004 10.201.0.2:45991", "--svg", svg, sample)
	if code != 0 {
		t.Fatalf("--svg: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.HasPrefix(s, "<svg") || strings.Count(s, `<line class="retrans" data-packet=`) != 5 {
		t.Errorf("--svg: not the RT connection's diagram with its 5 retransmissions: %.300s", s)
	}
	out, errOut, code := runCLI(t, "read", "--html", html, sample)
	if code != 0 {
		t.Fatalf("--html: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Local Address") {
		t.Errorf("--html replaced the table on standard output:\n%s", out)
	}
	b, err = os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, code := range []string{"RF", "ST", "RT", "PT", "KT", "AA", "SR", "RR"} {
		if !strings.Contains(s, `data-reason="`+code+`"`) {
			t.Errorf("--html: no diagram of the %s connection", code)
		}
	}
	// Self-contained: nothing loaded from anywhere.
	for _, ext := range []string{"http://", "https://", "<script", "<link rel=\"stylesheet\"", "@import"} {
		if strings.Contains(strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, ""), ext) {
			t.Errorf("--html: the report holds %q: not self-contained", ext)
		}
	}
	if _, errOut, code := runCLI(t, "read", "--svg", svg, sample); code == 0 || !strings.Contains(errOut, "--connection") {
		t.Errorf("--svg without --connection: exit %d %q", code, errOut)
	}
}

// TestDisplayCachePacketSVG: tcptap display cache-packet ... --svg asks a
// daemon (replaying the sample) for the RT connection's diagram.
func TestDisplayCachePacketSVG(t *testing.T) {
	sample := filepath.Join("..", "..", "testdata", "sample.pcap")
	d, err := daemon.New(daemon.Options{
		Interfaces: []string{"replay"}, Workers: 1,
		Open: func(string, int, int) (daemon.Source, error) {
			src, err := capture.Open(sample)
			return &capture.Replay{Src: src}, err
		},
		Trace: flightrec.Config{Enabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "control.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.Run(ctx) }()
	go func() { defer wg.Done(); d.ServeControl(ctx, sock) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	args := []string{"display", "cache-packet", "--control.socket", sock, "--source-ip", "10.201.0.1", "--source-port", "20004",
		"--destination-ip", "10.201.0.2", "--destination-port", "45991", "--svg"}
	var out, errOut string
	code := 1
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out, errOut, code = runCLI(t, args...); code == 0 {
			break
		}
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "<svg") || strings.Count(out, `<line class="retrans" data-packet=`) != 5 {
		t.Errorf("not the RT connection's diagram with its 5 retransmissions: %.300s", out)
	}
	if _, errOut, code := runCLI(t, append(args, "--wireshark")...); code == 0 || !strings.Contains(errOut, "exclude") {
		t.Errorf("--svg with --wireshark: exit %d %q", code, errOut)
	}
}
