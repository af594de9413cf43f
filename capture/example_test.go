package capture_test

import (
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/tcptap/tcptap/capture"
)

// Decode one capture's frames into packet summaries: the first stage of
// tcptap's pipeline.
func ExampleDecoder_Decode() {
	src, err := capture.Open("../testdata/scenarios/RF-closed-port_tcp4.pcap")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var p capture.Packet
	for {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if dec.Decode(&f, &p) && p.Flags.Has(capture.FlagRST) {
			fmt.Printf("RST from port %d to port %d\n", p.SrcPort, p.DstPort)
			break
		}
	}
	// Output: RST from port 20093 to port 20092
}
