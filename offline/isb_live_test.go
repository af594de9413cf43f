package offline_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/scenarios"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/record"
)

// TestISBEndTimeFromDumpcap: the real Linux client's SYNs are dropped on
// the path until it gives up; Wireshark's dumpcap captures the bridge port
// (TCP only) and goes on capturing for 8 s after the last SYN, then writes
// its interface statistics block with isb_endtime. The pcapng's last frame
// is the last SYN, but its end time is evidence of the silence after it:
// tcptap says ST, and OP for the same frames without the block (editcap to
// pcap).
func TestISBEndTimeFromDumpcap(t *testing.T) {
	netlab.Require(t)
	for _, tool := range []string{"dumpcap", "editcap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package wireshark-common / tshark)", tool)
		}
	}
	lab := netlab.New(t, scenarios.LabOptions())
	dir := t.TempDir()
	pcapng := filepath.Join(dir, "syn.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// dumpcap stops itself: the scenario's SYNs take about 3 s (two
	// retries, 1 s and 2 s apart, with the lab's tcp_syn_retries; connect
	// fails 4 s later), and it captures about 12 s past the last: more
	// than 3 times the last gap plus 2 s.
	dumpcap := exec.CommandContext(ctx, "ip", "netns", "exec", lab.Tap.Name, "dumpcap", "-q", "-n",
		"-i", netlab.ClientPort, "-f", "tcp", "-a", "duration:16", "-w", pcapng)
	out := make(chan error, 1)
	if err := dumpcap.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { out <- dumpcap.Wait() }()
	time.Sleep(time.Second) // dumpcap opens the interface
	exp, err := scenarios.SYNTimeout(ctx, t, lab, "tcp4")
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 1 {
		t.Fatalf("scenario expectations %v", exp)
	}
	if err := <-out; err != nil {
		t.Fatalf("dumpcap: %v", err)
	}

	reason := func(path string) (string, int64) {
		var recs []record.Record
		if _, err := offline.Run(ctx, []string{path}, offline.Options{Workers: 1}, func(r *record.Record) { recs = append(recs, *r) }); err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Fatalf("%s: %d records", filepath.Base(path), len(recs))
		}
		return string(recs[0].Reason), recs[0].LastSeen.UnixNano()
	}
	src, err := capture.Open(pcapng)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := src.Next(); err != nil {
			break
		}
	}
	end := src.(capture.EndTimeSource).EndTime()
	src.Close()
	got, last := reason(pcapng)
	t.Logf("last SYN %v, isb_endtime %v later", time.Unix(0, last).UTC(), time.Duration(end-last))
	if end-last < int64(8*time.Second) {
		t.Fatalf("isb_endtime only %v after the last frame", time.Duration(end-last))
	}
	if got != "ST" {
		t.Errorf("dumpcap's pcapng: %s, want ST", got)
	}
	pcap := filepath.Join(dir, "syn.pcap")
	if b, err := exec.Command("editcap", "-F", "pcap", pcapng, pcap).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v %s", err, b)
	}
	if got, _ := reason(pcap); got != "OP" {
		t.Errorf("the same frames without isb_endtime: %s, want OP", got)
	}
}
