package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcptap/tcptap/internal/peers"
)

// runCLI runs tcptap with args in-process and returns stdout, stderr and the
// exit status main would use.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	code := 0
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	default:
		errOut.WriteString("tcptap: " + err.Error() + "\n")
		code = 1
	}
	return out.String(), errOut.String(), code
}

func peerFile(t *testing.T, rel string) string {
	return filepath.Join(peers.Dir(t), "pcaps", rel)
}

func TestReadTableAndSummary(t *testing.T) {
	out, errOut, code := runCLI(t, "read", "--cache-mode", "all", peerFile(t, "zeek/modbus__modbus-and-non-modbus-p502.pcap"))
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"Local Address", "Foreign Address", "VPN Name", "Reason", "Connections by reason", "Reason: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestReadJSONRecordFields(t *testing.T) {
	out, _, code := runCLI(t, "read", "--cache-mode", "all", "--format", "json", peerFile(t, "zeek/tcp__syn-then-rst.pcap"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 record, got %d:\n%s", len(lines), out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	// The record's field names (docs/trace.md) are part of the interface.
	for _, k := range []string{"client", "server", "family", "vlan", "interface", "local", "reason", "reason_text",
		"actor", "state", "conn_state", "history", "midstream", "first_seen", "last_seen", "duration_s",
		"packets", "bytes", "retransmissions", "fast_retransmissions", "spurious_retransmissions", "out_of_order",
		"dup_acks", "zero_windows", "window_probes", "keepalives", "resets", "fins", "rtt_ms", "mss", "wscale"} {
		if _, ok := m[k]; !ok {
			t.Errorf("record lacks %q", k)
		}
	}
	if m["client"] != "1.1.1.1:13131" || m["server"] != "1.1.1.2:31313" {
		t.Errorf("endpoints %v %v", m["client"], m["server"])
	}
}

func TestReadBadInputs(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello, this is not a capture\n"), 0o644)

	good, err := os.ReadFile(peerFile(t, "zeek/ssh__ssh.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, good[:len(good)/2], 0o644)

	cases := []struct {
		name    string
		args    []string
		wantErr []string
		wantOut string
	}{
		{"missing", []string{"read", filepath.Join(dir, "nope.pcap")}, []string{"nope.pcap", "no such file"}, ""},
		{"empty", []string{"read", empty}, []string{"empty.pcap", "empty"}, ""},
		{"not a capture", []string{"read", text}, []string{"notes.txt", "not a pcap or pcapng file"}, ""},
		{"truncated", []string{"read", "--cache-mode", "all", cut}, []string{"cut.pcap", "byte offset"}, "Connections by reason"},
		{"bad flag value", []string{"read", "--cache-mode", "some", empty}, []string{"--cache-mode"}, ""},
		{"bad local net", []string{"read", "--local-net", "10.0.0.300/8", empty}, []string{"--local-net"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 2 {
				t.Errorf("error should be short, got:\n%s", errOut)
			}
			if tc.wantOut != "" && !strings.Contains(out, tc.wantOut) {
				t.Errorf("results so far missing (%q):\n%s", tc.wantOut, out)
			}
		})
	}
}

func TestReadTruncatedKeepsEarlierResults(t *testing.T) {
	src := peerFile(t, "zeek/ssh__ssh.pcap")
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	full, _, _ := runCLI(t, "read", "--cache-mode", "all", "--format", "json", src)
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	os.WriteFile(cut, good[:len(good)*3/4+5], 0o644)
	part, errOut, code := runCLI(t, "read", "--cache-mode", "all", "--format", "json", cut)
	if code != 1 || !strings.Contains(errOut, "byte offset") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	nFull := strings.Count(full, "\n")
	nPart := strings.Count(part, "\n")
	if nPart == 0 || nPart > nFull {
		t.Errorf("truncated file gave %d records, full file %d", nPart, nFull)
	}
}

func TestReadStdin(t *testing.T) {
	f, err := os.Open(peerFile(t, "zeek/tcp__syn-then-rst.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	out, errOut, code := runCLI(t, "read", "-")
	if code != 0 || !strings.Contains(out, "1.1.1.1:13131") {
		t.Fatalf("exit %d, stderr %q, out:\n%s", code, errOut, out)
	}
}

// TestReadMetricsOut: --metrics-out writes the run's final metrics in the
// text exposition format, which promtool accepts when it is installed.
func TestReadMetricsOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tcptap.prom")
	sample := filepath.Join(peers.ModuleRoot(t), "testdata", "sample.pcap")
	if _, errOut, code := runCLI(t, "read", "--metrics-out", out, sample); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`tcptap_connections_closed_total{reason="RT"} 2`,
		`tcptap_connections_closed_total{reason="RF"} 1`,
		`tcptap_connections_closed_total{reason="BD"} 0`,
		`tcptap_connections_opened_total 14`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed (Debian package prometheus)")
		}
		t.Skip("promtool not installed (Debian package prometheus); skipping the lint")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(b))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, msg)
	}
}

// TestReadCaptureEnd checks --capture-end: the connection left open in the
// reason suite's OP capture stays OP at its last frame (and for a time
// before it), is idle (IT) when the capture is said to end an hour later,
// and with "now", weeks after the capture was made.
func TestReadCaptureEnd(t *testing.T) {
	pcap := filepath.Join(peers.ModuleRoot(t), "testdata", "scenarios", "OP-open_tcp4.pcap")
	for _, tc := range []struct{ end, want string }{
		{"last-frame", "OP"},
		{"2026-11-21T22:00:00Z", "OP"},
		{"2026-11-21T23:03:23.5Z", "IT"},
		{"now", "IT"},
	} {
		out, errOut, code := runCLI(t, "read", "--cache-mode", "all", "--format", "json", "--capture-end", tc.end, pcap)
		if code != 0 {
			t.Fatalf("--capture-end %s: exit %d, %s", tc.end, code, errOut)
		}
		// The marker connection that ends the capture closed (AN); the
		// other is the one left open.
		var reasons []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct{ Reason string }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			if r.Reason != "AN" {
				reasons = append(reasons, r.Reason)
			}
		}
		if len(reasons) != 1 || reasons[0] != tc.want {
			t.Errorf("--capture-end %s: %v, want [%s]", tc.end, reasons, tc.want)
		}
	}
	_, errOut, code := runCLI(t, "read", "--capture-end", "yesterday", pcap)
	if code != 1 || !strings.Contains(errOut, `--capture-end "yesterday": want last-frame, now or an RFC 3339 time`) {
		t.Errorf("bad --capture-end: exit %d, %q", code, errOut)
	}
}

// writePcap writes frames as a classic pcap of link type lt.
func writePcap(t *testing.T, path string, lt uint32, frames ...[]byte) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, lt)
	for i, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, uint32(1700000000+i))
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadSaysWhatWasNotDecoded: nothing is dropped silently. A capture
// with no decodable frame fails with the causes; one with some says how
// many frames were not decoded, by cause.
func TestReadSaysWhatWasNotDecoded(t *testing.T) {
	dir := t.TempDir()
	radiotap := filepath.Join(dir, "radiotap.pcap")
	writePcap(t, radiotap, 127, make([]byte, 40), make([]byte, 40))
	_, errOut, code := runCLI(t, "read", radiotap)
	if code != 1 || !strings.Contains(errOut, "no TCP segment decoded in 2 frames: 2 unsupported link type 127") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}

	lldp := make([]byte, 60)
	lldp[12], lldp[13] = 0x88, 0xcc
	mixed := filepath.Join(dir, "mixed.pcap")
	good, err := os.ReadFile(peerFile(t, "zeek/tcp__syn-then-rst.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(mixed, good, 0o644)
	_, errOut, code = runCLI(t, "read", mixed)
	if code != 0 || errOut != "" {
		t.Errorf("a capture of TCP only: exit %d, stderr %q", code, errOut)
	}
	writePcap(t, mixed, 1, lldp, lldp)
	_, errOut, code = runCLI(t, "read", mixed)
	if code != 1 || !strings.Contains(errOut, "2 unknown EtherType 0x88cc") {
		t.Errorf("LLDP only: exit %d, stderr %q", code, errOut)
	}
}

// TestReadTunnelRecord reads ERSPAN carrying VXLAN: the record names both
// tunnels, the table's VPN name the VNI.
func TestReadTunnelRecord(t *testing.T) {
	path := filepath.Join(peers.EncapDir(t), "pcaps", "arkime", "tests__pcap__gre-erspan-vxlan.pcap")
	out, _, code := runCLI(t, "read", "--cache-mode", "all", "--format", "json", path)
	want := `"tunnel":[{"type":"erspan2","src":"100.20.9.2","dst":"100.20.9.1","session":20},{"type":"vxlan","src":"172.16.27.131","dst":"172.16.27.121","vni":0}]`
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d, output lacks %s:\n%s", code, want, out)
	}
	out, _, _ = runCLI(t, "read", "--cache-mode", "all", path)
	if !strings.Contains(out, "vni:0") {
		t.Errorf("VPN name without the VNI:\n%s", out)
	}
	out, errOut, code := runCLI(t, "read", "--udp-tunnel", "geneve:6081", path)
	if code != 1 || !strings.Contains(errOut, "no TCP segment decoded") {
		t.Errorf("without VXLAN's port: exit %d, stderr %q\n%s", code, errOut, out)
	}
	if _, errOut, code := runCLI(t, "read", "--udp-tunnel", "vxlan:0", path); code != 1 || !strings.Contains(errOut, "--udp-tunnel") {
		t.Errorf("a bad --udp-tunnel: exit %d, stderr %q", code, errOut)
	}
}
