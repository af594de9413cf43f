//go:build linux

package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/synth"
)

// TestLiveQueueDepth: tcptap_worker_queue_depth is the frames waiting for
// a live worker. The worker is held in a query while tcpreplay sends a
// capture of about 300 frames into its interface; the first counters it
// publishes once let go say all 300 wait, and once it has read them, 0.
func TestLiveQueueDepth(t *testing.T) {
	if testing.Short() {
		t.Skip("live queue test: skipped with -short")
	}
	netlab.Require(t)
	lab := newLoadLab(t)
	pcap := filepath.Join(t.TempDir(), "queue.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	st, err := synth.Generate(f, synth.Config{Connections: 10, Packets: 300, Seed: 3, Payload: synth.PayloadSmall})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	ld := startLive(t, lab.Tap, loadRx, 1, daemon.Options{}, capture.LiveConfig{Promiscuous: true, BlockTimeout: 2 * time.Millisecond})
	// Nothing waits on a quiet link.
	time.Sleep(200 * time.Millisecond)
	if q := ld.Stats()[0].QueueDepth; q != 0 {
		t.Fatalf("queue depth %d on a quiet link", q)
	}
	framesBefore := ld.Stats()[0].Frames

	release := daemon.HoldWorkers(ld.Daemon)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := lab.Tap.ExecContext(ctx, "tcpreplay", "--pps", strconv.Itoa(3000), "--no-flow-stats", "-i", loadTx, pcap); err != nil {
		release()
		t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	time.Sleep(50 * time.Millisecond) // the kernel retires the last block after BlockTimeout
	release()

	// The worker publishes at the end of the sync the query held, before
	// it reads a frame, and next 50 ms later, when it has read them all.
	var depths []int
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		q := ld.Stats()[0].QueueDepth
		if len(depths) == 0 || depths[len(depths)-1] != q {
			depths = append(depths, q)
		}
		if q == 0 && slices.Contains(depths, st.Packets) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("queue depth published after release: %v", depths)
	// The first value may be the one published before the hold (0).
	if depths[0] == 0 {
		depths = depths[1:]
	}
	if len(depths) != 2 || depths[0] != st.Packets || depths[1] != 0 {
		t.Errorf("queue depths published %v: want %d while held, then 0 once read", depths, st.Packets)
	}
	if got := ld.Stats()[0].Frames - framesBefore; got != uint64(st.Packets) {
		t.Errorf("%d frames read, want %d", got, st.Packets)
	}
}
