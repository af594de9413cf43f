package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/capture"
)

func init() { registerCollector("decode", newDecodeCollector) }

// decodeCollector: frames the decoder could not use, by cause, and IP
// fragments.
type decodeCollector struct {
	errors, ignored, fragments, reassembled, fragDropped *prometheus.Desc
}

func newDecodeCollector(Options) collector {
	return &decodeCollector{
		errors:      desc("decode_errors_total", "Frames skipped as malformed or unsupported, by cause.", "cause"),
		ignored:     desc("decode_ignored_frames_total", "Frames that are not TCP, by kind.", "kind"),
		fragments:   desc("ip_fragments_total", "Fragments of TCP datagrams received, by family.", "family"),
		reassembled: desc("ip_fragments_reassembled_total", "TCP datagrams rebuilt from fragments, by family.", "family"),
		fragDropped: desc("ip_fragments_dropped_total", "Fragments dropped: table full, timeout, overlap or malformed, by family.", "family"),
	}
}

func (c *decodeCollector) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.errors, c.ignored, c.fragments, c.reassembled, c.fragDropped} {
		ch <- d
	}
}

func (c *decodeCollector) update(s *Snapshot, ch chan<- prometheus.Metric) {
	var d capture.DecodeStats
	for i := range s.Workers {
		d.Add(&s.Workers[i].Decode)
	}
	counter(ch, c.errors, d.UnsupportedLink, "unsupported_link")
	counter(ch, c.errors, d.TruncatedLink, "truncated_link")
	counter(ch, c.errors, d.TruncatedIP, "truncated_ip")
	counter(ch, c.errors, d.BadIPHeader, "bad_ip_header")
	counter(ch, c.errors, d.TruncatedTCP, "truncated_tcp")
	counter(ch, c.errors, d.BadTCPHeader, "bad_tcp_header")
	counter(ch, c.errors, d.BadTCPOption, "bad_tcp_option")
	counter(ch, c.errors, d.TruncatedTCPOptions, "truncated_tcp_options")
	counter(ch, c.ignored, d.NonIP, "non_ip")
	counter(ch, c.ignored, d.NonTCP, "non_tcp")
	counter(ch, c.fragments, d.Fragments, "ipv4")
	counter(ch, c.fragments, d.IPv6Fragments, "ipv6")
	counter(ch, c.reassembled, d.FragmentsDone, "ipv4")
	counter(ch, c.reassembled, d.IPv6FragmentsDone, "ipv6")
	counter(ch, c.fragDropped, d.FragmentsDropped, "ipv4")
	counter(ch, c.fragDropped, d.IPv6FragmentsDropped, "ipv6")
}
