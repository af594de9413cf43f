//go:build linux

package daemon_test

import (
	"context"
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
	st, err := synth.WriteFile(pcap, synth.Config{Connections: 10, Packets: 300, Seed: 3, Payload: synth.PayloadSmall})
	if err != nil {
		t.Fatal(err)
	}
	ld := startLive(t, lab.Tap, loadRx, 1, daemon.Options{}, capture.LiveConfig{Promiscuous: true, BlockTimeout: 2 * time.Millisecond})
	// Nothing waits on a quiet link.
	time.Sleep(200 * time.Millisecond)
	if q := ld.Stats()[0].QueueDepth; q != 0 {
		t.Fatalf("queue depth %d on a quiet link", q)
	}
	// The published depth lasts one sync (50 ms): a poller the machine
	// kept from running that long misses it, so up to 3 rounds.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := 1; ; round++ {
		depths, read := queueRound(ctx, t, ld, lab, pcap, st.Packets)
		t.Logf("round %d: queue depth published after release: %v; %d frames read", round, depths, read)
		if read != uint64(st.Packets) {
			t.Fatalf("%d frames read, want %d", read, st.Packets)
		}
		// The first value may be the one published before the hold (0).
		if len(depths) > 0 && depths[0] == 0 {
			depths = depths[1:]
		}
		if len(depths) == 2 && depths[0] == st.Packets && depths[1] == 0 {
			return
		}
		if round == 3 || slices.ContainsFunc(depths, func(d int) bool { return d != 0 && d != st.Packets }) {
			t.Fatalf("queue depths published %v: want %d while held, then 0 once read", depths, st.Packets)
		}
	}
}

// queueRound holds the worker while tcpreplay sends the capture of n
// frames, lets it go, and returns the queue depths it published (each
// change) until it had read them all, and the frames it read.
func queueRound(ctx context.Context, t *testing.T, ld *liveDaemon, lab *netlab.Lab, pcap string, n int) ([]int, uint64) {
	framesBefore := ld.Stats()[0].Frames
	release := daemon.HoldWorkers(ld.Daemon)
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
		if q == 0 && ld.Stats()[0].Frames-framesBefore == uint64(n) && time.Since(deadline.Add(-5*time.Second)) > 200*time.Millisecond {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return depths, ld.Stats()[0].Frames - framesBefore
}
