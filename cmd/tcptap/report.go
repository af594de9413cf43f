package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/diagram"
)

// reportFlags are tcptap read's picture outputs: --svg (one connection's
// time–sequence diagram) and --html (the report of the whole run).
type reportFlags struct {
	svg  string
	html string
}

func addReportFlags(fl *pflag.FlagSet, f *reportFlags) {
	fl.StringVar(&f.svg, "svg", "", "with --connection: write the connection's time–sequence diagram (SVG) to `FILE`")
	fl.StringVar(&f.html, "html", "", "write a self-contained HTML report (counts, charts, table, each abnormal connection's diagram, packets and pcap) to `FILE`")
}

// validate checks the flags against the rest of read's; both need the
// flight recorder, so they turn tracing on.
func (f *reportFlags) validate(rf *readFlags) error {
	if f.svg != "" && rf.connection == "" {
		return fmt.Errorf("--svg goes with --connection 'A:P B:Q' (use --html for every connection)")
	}
	if f.svg != "" || f.html != "" {
		rf.trace = true
	}
	return nil
}

// writeReports writes the files --svg and --html ask for, from the trace
// cache of the run and the counts by reason.
func writeReports(errOut io.Writer, rf *readFlags, args []string, tc *cache.Cache, summary *exporter.Summary) error {
	f := &rf.report
	if tc == nil || (f.svg == "" && f.html == "") {
		return nil
	}
	opts := diagram.Options{Classifier: rf.cls}
	var until int64 // the capture's end as the connections kept show it
	for _, e := range tc.Entries(nil) {
		until = max(until, e.Record.LastSeen.UnixNano())
	}
	opts.Until = until
	if f.svg != "" {
		entries := tc.Find(rf.connA, rf.connB)
		if len(entries) == 0 {
			return fmt.Errorf("--svg: no cached connection between %v and %v", rf.connA, rf.connB)
		}
		e := entries[len(entries)-1]
		opts.Dropped = e.Overwritten
		if err := writeFile(f.svg, func(w io.Writer) error {
			return diagram.WriteSVG(w, &e.Record, e.Packets(), opts)
		}); err != nil {
			return fmt.Errorf("--svg: %w", err)
		}
		fmt.Fprintf(errOut, "tcptap: wrote the diagram of %v – %v (%s) to %s\n", e.Record.Client, e.Record.Server, e.Record.Reason, f.svg)
	}
	if f.html != "" {
		rep := &diagram.Report{Title: "tcptap report", Generated: time.Now(), Sources: args,
			Counts: map[classifier.Code]uint64{}, Diagram: opts}
		for code, n := range summary.ByReason { // already of --family only
			rep.Counts[code] = n
		}
		for _, e := range tc.Entries(nil) {
			if rf.family != "" && e.Record.Family != rf.family {
				continue
			}
			rep.Conns = append(rep.Conns, diagram.Conn{Record: &e.Record, Packets: e.Packets(), Traced: e.Traced, Dropped: e.Overwritten})
		}
		if err := writeFile(f.html, func(w io.Writer) error { return diagram.WriteHTML(w, rep) }); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
		fmt.Fprintf(errOut, "tcptap: wrote the report (%d connections) to %s\n", len(rep.Conns), f.html)
	}
	return nil
}

// writeFile writes a file through a buffer, reporting the first error of
// writing or closing it.
func writeFile(name string, write func(io.Writer) error) error {
	fh, err := os.Create(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(fh)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}
