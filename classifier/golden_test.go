package classifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/internal/peers"
	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/scenarios")

// TestGoldenScenarios runs the classifier over captures the scenario suite
// made from the real Linux stack (testdata/scenarios/NAME_tcp4.pcap and
// _tcp6.pcap, one way of dying each) and compares every record with its
// golden JSON Lines file, so the reason rules have fast tests that need no
// root. Regenerate with -update after a deliberate change, and review the
// diff: the reason, actor, local and conn_state fields are the verdicts.
func TestGoldenScenarios(t *testing.T) {
	dir := filepath.Join(peers.ModuleRoot(t), "testdata", "scenarios")
	pcaps, err := filepath.Glob(filepath.Join(dir, "*.pcap"))
	if err != nil || len(pcaps) == 0 {
		t.Fatalf("no captures in %s: %v", dir, err)
	}
	for _, pcap := range pcaps {
		name := strings.TrimSuffix(filepath.Base(pcap), ".pcap")
		t.Run(name, func(t *testing.T) {
			table := reassembly.DefaultConfig()
			if strings.HasPrefix(name, "IT-") {
				table.IdleTimeout = 2 * time.Second // as the scenario ran it
			}
			var recs []record.Record
			_, err := offline.Run(context.Background(), []string{pcap}, offline.Options{Workers: 1, Table: table}, func(r *record.Record) {
				recs = append(recs, *r)
			})
			if err != nil {
				t.Fatal(err)
			}
			exporter.SortRecords(recs)
			var got bytes.Buffer
			for i := range recs {
				b, _ := json.Marshal(&recs[i])
				got.Write(b)
				got.WriteByte('\n')
			}
			golden := strings.TrimSuffix(pcap, ".pcap") + ".jsonl"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
				for i := range max(len(gl), len(wl)) {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("%s line %d differs:\n got %s\nwant %s", filepath.Base(golden), i+1, g, w)
					}
				}
			}
		})
	}
}
