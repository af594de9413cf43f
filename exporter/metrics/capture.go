package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("capture", newCaptureCollector) }

// captureCollector: frames read and the kernel's socket counters
// (PACKET_STATISTICS) per capture interface, summed over its workers.
type captureCollector struct {
	frames, packets, drops, freezes, linkDowns, workers, queue *prometheus.Desc
}

func newCaptureCollector(Options) collector {
	return &captureCollector{
		frames:    desc("capture_frames_total", "Frames the workers read from the capture interface.", "interface"),
		packets:   desc("capture_kernel_packets_total", "Frames the kernel passed to the capture sockets of the interface (drops included).", "interface"),
		drops:     desc("capture_kernel_drops_total", "Frames the kernel dropped because a capture ring was full: workers too slow or ring too small (capture.ring_size).", "interface"),
		freezes:   desc("capture_kernel_queue_freezes_total", "Times a TPACKET_V3 capture ring filled up (freeze_q_cnt).", "interface"),
		linkDowns: desc("capture_link_downs_total", "Times the capture interface was found down.", "interface"),
		workers:   desc("workers", "Capture workers (connection table shards).", "interface"),
		queue:     desc("worker_queue_depth", "Frames waiting for the interface's workers: those the kernel put in the capture rings that the workers have not read yet (a ring block shows once the kernel retires it), and tunnelled segments handed between workers that wait to be applied. 0 at the end of an offline run.", "interface"),
	}
}

func (c *captureCollector) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.packets, c.drops, c.freezes, c.linkDowns, c.workers, c.queue} {
		ch <- d
	}
}

type ifaceSums struct {
	frames, packets, drops, freezes, linkDowns uint64
	workers, queue                             int
	kernel                                     bool
}

func (c *captureCollector) update(s *Snapshot, ch chan<- prometheus.Metric) {
	var order []string
	sums := map[string]*ifaceSums{}
	for i := range s.Workers {
		w := &s.Workers[i]
		x := sums[w.Interface]
		if x == nil {
			x = &ifaceSums{}
			sums[w.Interface] = x
			order = append(order, w.Interface)
		}
		x.frames += w.Frames
		x.workers++
		x.queue += w.QueueDepth
		if w.HasKernel {
			x.kernel = true
			x.packets += w.Kernel.Packets
			x.drops += w.Kernel.Drops
			x.freezes += w.Kernel.QueueFreezes
			x.linkDowns += w.Kernel.LinkDowns
		}
	}
	for _, name := range order {
		x := sums[name]
		counter(ch, c.frames, x.frames, name)
		gauge(ch, c.workers, float64(x.workers), name)
		gauge(ch, c.queue, float64(x.queue), name)
		if x.kernel {
			counter(ch, c.packets, x.packets, name)
			counter(ch, c.drops, x.drops, name)
			counter(ch, c.freezes, x.freezes, name)
			counter(ch, c.linkDowns, x.linkDowns, name)
		}
	}
}
