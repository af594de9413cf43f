package daemon

import (
	"encoding/xml"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/flightrec"
)

// TestControlSVG: "display cache-packet ... --svg" over the control socket
// returns the RT connection's diagram, well-formed, with one
// retransmission mark per retransmission of its record.
func TestControlSVG(t *testing.T) {
	d, sock := startReplay(t, Options{Trace: flightrec.Config{Enabled: true}, CacheMode: cache.All})
	out, err := Call(sock, &Request{Cmd: "display cache-packet", Source: "10.201.0.1:20004", Destination: "10.201.0.2:45991", Svg: true})
	if err != nil {
		t.Fatal(err)
	}
	svg := string(out)
	if !strings.HasPrefix(svg, "<svg") {
		t.Fatalf("not an SVG: %.200s", svg)
	}
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("the SVG is not well-formed XML: %v", err)
			}
			break
		}
	}
	es := d.Cache().Find(netip.MustParseAddrPort("10.201.0.1:20004"), netip.MustParseAddrPort("10.201.0.2:45991"))
	if len(es) != 1 {
		t.Fatalf("%d cached entries for the RT connection", len(es))
	}
	want := int(es[0].Record.Retransmissions.Client + es[0].Record.Retransmissions.Server)
	if got := strings.Count(svg, `<line class="retrans" data-packet=`); got != want || want == 0 {
		t.Errorf("%d retransmission marks, the record counts %d", got, want)
	}
}
