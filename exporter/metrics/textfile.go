package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// WriteTextfile writes the metrics of snapshot s in the text exposition
// format to path, atomically (node_exporter's textfile collector reads it).
func WriteTextfile(path string, s *Snapshot, opts Options) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(New(func() *Snapshot { return s }, opts)); err != nil {
		return err
	}
	return prometheus.WriteToTextfile(path, reg)
}
