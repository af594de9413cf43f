package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/offline"
)

// writeConnection prints the cache-packet view (or, with --wireshark, a
// pcap) of the cached connections between the two --connection endpoints.
func writeConnection(w io.Writer, tc *cache.Cache, f *readFlags) error {
	entries := tc.Find(f.connA, f.connB)
	if len(entries) == 0 {
		if n := tc.Stats().NotCachedQuota; n > 0 {
			return fmt.Errorf("no cached connection between %v and %v: the memory quota was used up and %d connections could not be cached (raise --memory-quota, or narrow --filter)", f.connA, f.connB, n)
		}
		return fmt.Errorf("no cached connection between %v and %v (cache mode %s: try --cache-mode all, or check the filter)", f.connA, f.connB, tc.Mode())
	}
	if f.wireshark {
		if len(entries) > 1 {
			fmt.Fprintf(os.Stderr, "tcptap: %d connections on this 4-tuple; writing the last\n", len(entries))
		}
		e := entries[len(entries)-1]
		bw := bufio.NewWriter(w)
		if err := exporter.WritePcap(bw, &e.Record, e.Packets()); err != nil {
			return err
		}
		return bw.Flush()
	}
	for i, e := range entries {
		if i > 0 {
			fmt.Fprintln(w)
		}
		opts := exporter.PacketViewOptions{Verbose: f.verbose, Last: f.last, Dropped: e.Overwritten}
		if !e.Traced {
			fmt.Fprintf(w, "%v -> %v: not traced (filter, only-new-connection or memory quota); no packets recorded\n", e.Record.Client, e.Record.Server)
		}
		if err := exporter.WriteConnectionPackets(w, &e.Record, e.Packets(), opts); err != nil {
			return err
		}
	}
	return nil
}

// writePcapDir writes one pcap per cached, traced connection into dir.
func writePcapDir(dir string, tc *cache.Cache) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("--pcap-dir: %w", err)
	}
	n := 0
	for _, e := range tc.Entries(func(e *cache.Entry) bool { return e.Traced && e.Recorded.Len() > 0 }) {
		path := filepath.Join(dir, exporter.PcapFileName(&e.Record))
		f, err := os.Create(path)
		if err != nil {
			return n, fmt.Errorf("--pcap-dir: %w", err)
		}
		bw := bufio.NewWriter(f)
		err = exporter.WritePcap(bw, &e.Record, e.Packets())
		if err == nil {
			err = bw.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, fmt.Errorf("writing %s: %w", path, err)
		}
		n++
	}
	return n, nil
}

// information gathers the trace configuration and statistics of a run.
func information(f *readFlags, st offline.Stats, q *flightrec.Quota, tc *cache.Cache) *exporter.TraceInformation {
	in := &exporter.TraceInformation{
		Enabled:           f.trace,
		MaxPacketNumber:   f.maxPacketNumber,
		CacheMode:         f.cacheMode,
		OnlyNewConnection: f.onlyNewConnection,
		Filter:            f.acl.Strings(),
	}
	in.SetMemory(q)
	for i := range st.Workers {
		in.AddTable(&st.Workers[i].Table, st.Workers[i].Active)
	}
	if tc != nil {
		in.SetCache(tc.Stats())
	}
	return in
}
