package daemon

import (
	"bytes"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/exporter/diagram"
)

// cachePacketSVG answers "display cache-packet ... --svg": the cached
// connection's time–sequence diagram, its silence drawn up to now (the
// daemon's verdicts are given by its clock).
func cachePacketSVG(e *cache.Entry) ([]byte, error) {
	var out bytes.Buffer
	err := diagram.WriteSVG(&out, &e.Record, e.Packets(), diagram.Options{Until: time.Now().UnixNano(), Dropped: e.Overwritten})
	return out.Bytes(), err
}
