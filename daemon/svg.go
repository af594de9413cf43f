package daemon

import (
	"bytes"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter/diagram"
)

// cachePacketSVG answers "display cache-packet ... --svg": the cached
// connection's time–sequence diagram, its silence drawn up to now (the
// daemon's verdicts are given by its clock).
func (d *Daemon) cachePacketSVG(e *cache.Entry) ([]byte, error) {
	var out bytes.Buffer
	err := diagram.WriteSVG(&out, &e.Record, e.Packets(), diagram.Options{
		Until: time.Now().UnixNano(), Dropped: e.Overwritten, Classifier: d.opts.Classifier})
	return out.Bytes(), err
}

// ClassifierConfig is the classifier configuration the daemon gives its
// verdicts with: the sensor's pages draw when a silent sender counted as
// given up by it.
func (d *Daemon) ClassifierConfig() classifier.Config { return d.opts.Classifier }
