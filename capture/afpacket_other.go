//go:build !linux

package capture

import (
	"errors"
	"time"
)

// Live capture is AF_PACKET, Linux only; elsewhere OpenLive says so. The
// types exist so the daemon builds (and its replay tests run) everywhere.

// ErrTimeout is returned by a live source's Next when no packet came within
// the poll timeout.
var ErrTimeout = errors.New("no packet within the poll timeout")

// LiveConfig configures one live capture socket (see afpacket.go).
type LiveConfig struct {
	Interface    string
	Snaplen      int
	BlockSize    int
	NumBlocks    int
	BlockTimeout time.Duration
	PollTimeout  time.Duration
	Promiscuous  bool
	FanoutGroup  uint16
}

// LiveStats are a socket's kernel counters.
type LiveStats struct {
	Packets, Drops, QueueFreezes, LinkDowns uint64
}

// LiveSource is a live capture socket; not available on this system.
type LiveSource struct{}

// OpenLive fails: live capture needs Linux's AF_PACKET.
func OpenLive(cfg LiveConfig) (*LiveSource, error) {
	return nil, errors.New("live capture needs Linux (AF_PACKET); use 'tcptap read' with a capture file")
}

// Next never returns a frame.
func (s *LiveSource) Next() (Frame, error) { return Frame{}, ErrTimeout }

// Stats returns zero counters.
func (s *LiveSource) Stats() (LiveStats, error) { return LiveStats{}, nil }

// Backlog returns 0: no frame ever waits here (see afpacket.go for the
// live source's queue, which feeds tcptap_worker_queue_depth).
func (s *LiveSource) Backlog() int { return 0 }

// ApplyVLAN does nothing.
func (s *LiveSource) ApplyVLAN(p *Packet) {}

// Close does nothing.
func (s *LiveSource) Close() error { return nil }

// Wake does nothing: there is no live source here.
func (s *LiveSource) Wake() {}

// ClearWake does nothing: no live capture here.
func (s *LiveSource) ClearWake() {}
