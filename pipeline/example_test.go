package pipeline_test

import (
	"fmt"
	"log"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/pipeline"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// Drive one pipeline worker by hand, as tcptap read's and tcptap run's
// drivers do: decoded segments in, records and counters out.
func ExampleWorker() {
	src, err := capture.Open("../testdata/scenarios/RT-blackhole_tcp4.pcap")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	w := pipeline.New(pipeline.Config{
		Index: 0, Total: 1,
		Table:      reassembly.DefaultConfig(),
		Classifier: classifier.New(classifier.Config{}),
		Interface:  func(*reassembly.Conn) string { return "example" },
		Deliver: func(r *record.Record) {
			fmt.Printf("%s -> %s: %s\n", r.Client, r.Server, r.Reason)
		},
	})
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var p capture.Packet
	var last int64
	for {
		f, err := src.Next()
		if err != nil {
			break // io.EOF, or a truncated capture
		}
		last = max(last, f.Timestamp)
		if dec.Decode(&f, &p) {
			w.Segment(&p, nil)
		}
	}
	w.Table().Flush(last) // the connections still open are judged as of the capture's end
	s := metrics.Worker{Interface: "example"}
	w.Publish(&s)
	fmt.Printf("%d connections, %d segments\n", s.Table.Finalized, s.Table.Packets)
	// Unordered output:
	// 10.201.0.1:20016 -> 10.201.0.2:35857: AN
	// 10.201.0.1:20011 -> 10.201.0.2:43453: RT
	// 2 connections, 23 segments
}
