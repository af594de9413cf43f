package metrics

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func init() { registerCollector("rtt", newRTTCollector) }

// rttCollector: handshake and data RTT, each exposed as a native histogram
// (schema 2) that also carries classic buckets at the powers of two, for
// scrapers without native histogram support.
type rttCollector struct {
	handshake, data *prometheus.Desc
}

func newRTTCollector(Options) collector {
	return &rttCollector{
		handshake: desc("handshake_rtt_seconds", "Handshake round-trip time as seen from the tap (SYN to the ACK of the SYN-ACK), one observation per connection that ended."),
		data:      desc("data_rtt_seconds", "Smoothed data round-trip time (RFC 6298) of each direction with samples, one observation per direction of a connection that ended."),
	}
}

func (c *rttCollector) describe(ch chan<- *prometheus.Desc) {
	ch <- c.handshake
	ch <- c.data
}

func (c *rttCollector) update(s *Snapshot, ch chan<- prometheus.Metric) {
	var hs, data Histogram
	for i := range s.Workers {
		hs.Merge(&s.Workers[i].Conns.HandshakeRTT)
		data.Merge(&s.Workers[i].Conns.DataRTT)
	}
	ch <- &histMetric{desc: c.handshake, h: hs}
	ch <- &histMetric{desc: c.data, h: data}
}

// histMetric is a constant histogram with both native and classic buckets
// (client_golang's const histograms offer one or the other).
type histMetric struct {
	desc *prometheus.Desc
	h    Histogram
}

func (m *histMetric) Desc() *prometheus.Desc { return m.desc }

func (m *histMetric) Write(out *dto.Metric) error {
	h := &m.h
	dh := &dto.Histogram{
		SampleCount:   proto.Uint64(h.Count),
		SampleSum:     proto.Float64(h.Sum),
		Schema:        proto.Int32(histSchema),
		ZeroThreshold: proto.Float64(histZeroThreshold),
		ZeroCount:     proto.Uint64(h.Zero),
	}
	// Classic buckets: le = 2^k, cumulative.
	cum := h.Zero
	for i := histMinIndex; i <= histMaxIndex; i++ {
		cum += h.Buckets[i-histMinIndex]
		if i%4 == 0 {
			dh.Bucket = append(dh.Bucket, &dto.Bucket{
				UpperBound:      proto.Float64(math.Ldexp(1, i/4)),
				CumulativeCount: proto.Uint64(cum),
			})
		}
	}
	// Native buckets: one span from the first to the last populated bucket.
	first, last := -1, -1
	for i, n := range h.Buckets {
		if n > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		// No populated bucket: an empty span marks it native all the same.
		dh.PositiveSpan = []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(0)}}
	} else {
		dh.PositiveSpan = []*dto.BucketSpan{{
			Offset: proto.Int32(int32(first + histMinIndex)),
			Length: proto.Uint32(uint32(last - first + 1)),
		}}
		prev := int64(0)
		for i := first; i <= last; i++ {
			n := int64(h.Buckets[i])
			dh.PositiveDelta = append(dh.PositiveDelta, n-prev)
			prev = n
		}
	}
	out.Histogram = dh
	return nil
}
