package oracle

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/peers"
)

// TestAggregateMatchesCorpus runs tshark with each expected file's command
// on its capture and checks that Run reproduces the file: the streams, their
// client choice and every per-direction count. This is what makes Run
// trustworthy on captures the corpus does not have (real-traffic tests).
func TestAggregateMatchesCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs tshark on every corpus capture (~30 s); skipped with -short")
	}
	if !Available() {
		t.Skip("tshark not installed")
	}
	dir := peers.Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "expected", "tshark", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no expected tshark files in %s: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sem := make(chan struct{}, 4) // tshark runs at once
	// The group returns when its parallel subtests are done, before the
	// deferred cancel.
	t.Run("files", func(t *testing.T) {
		for _, f := range files {
			want, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				if want.Command == "" {
					t.Fatal("expected file has no command")
				}
				got, err := Run(ctx, want.Command, filepath.Join(dir, want.Pcap))
				if err != nil {
					t.Fatal(err)
				}
				if got.TsharkRC != want.TsharkRC {
					t.Errorf("tshark exit status %d, want %d (%v)", got.TsharkRC, want.TsharkRC, got.TsharkStderr)
				}
				if !reflect.DeepEqual(got.FramesWithoutUsableHeader, want.FramesWithoutUsableHeader) {
					t.Errorf("frames without usable header %v, want %v", got.FramesWithoutUsableHeader, want.FramesWithoutUsableHeader)
				}
				if got.TCPStreams != want.TCPStreams || len(got.Streams) != len(want.Streams) {
					t.Fatalf("%d streams (%d listed), want %d (%d)", got.TCPStreams, len(got.Streams), want.TCPStreams, len(want.Streams))
				}
				if got.Totals != want.Totals {
					t.Errorf("totals\n got %+v\nwant %+v", got.Totals, want.Totals)
				}
				for i := range want.Streams {
					g, w := got.Streams[i], want.Streams[i]
					for _, p := range []*Stream{&g, &w} {
						p.Client.IP, p.Server.IP = p.Client.IP.Unmap(), p.Server.IP.Unmap()
					}
					if !near(g.FirstTS, w.FirstTS) || !near(g.LastTS, w.LastTS) || !near(g.Duration, w.Duration) {
						t.Errorf("stream %d: times %.3f..%.3f (%.3f), want %.3f..%.3f (%.3f)", w.TCPStream,
							g.FirstTS, g.LastTS, g.Duration, w.FirstTS, w.LastTS, w.Duration)
					}
					g.FirstTS, g.LastTS, g.Duration = w.FirstTS, w.LastTS, w.Duration
					if !reflect.DeepEqual(g, w) {
						gj, _ := json.Marshal(g)
						wj, _ := json.Marshal(w)
						t.Errorf("stream %d:\n got %s\nwant %s", w.TCPStream, gj, wj)
					}
				}
			})
		}
	})
}

func near(a, b float64) bool { return math.Abs(a-b) < 2e-6 }
