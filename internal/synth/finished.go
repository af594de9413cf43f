package synth

import (
	"bytes"
	"io"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/reassembly"
)

// Finished generates the capture cfg describes, runs it through one
// connection table with the default configuration (as `tcptap read` with
// one worker does) and calls fn with each finished connection. The
// connection is valid only during the call. Benchmarks of the stages after
// the table (classification, records, JSON) use it for real connections.
func Finished(cfg Config, fn func(*reassembly.Conn)) error {
	data, _, err := Bytes(cfg)
	if err != nil {
		return err
	}
	src, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	t := reassembly.NewTable(reassembly.DefaultConfig(), 0, 1, fn)
	dec := capture.NewDecoder(capture.DecoderConfig{})
	var p capture.Packet
	for {
		f, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if dec.Decode(&f, &p) {
			t.Packet(&p)
		}
	}
	t.Flush(p.Timestamp)
	return nil
}
