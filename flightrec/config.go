package flightrec

import (
	"fmt"

	"github.com/tcptap/tcptap/acl"
)

// Trace defaults, the switch vendor's (docs/trace.md).
const (
	DefaultMaxPacketNumber = 500
	DefaultMemoryQuota     = 100 << 20 // bytes
	// ringStart is the first size of a connection's record ring; it grows
	// by as much up to MaxPacketNumber while the quota allows.
	ringStart = 8
)

// Config is the trace feature's configuration (docs/trace.md).
type Config struct {
	Enabled bool
	// MaxPacketNumber is the size of each connection's packet record ring;
	// when full, new records overwrite the oldest.
	MaxPacketNumber int
	// Filter traces only connections its rules permit (empty: all).
	Filter acl.List
	// OnlyNewConnection traces only connections whose handshake (the
	// client's SYN) is seen after tracing was enabled.
	OnlyNewConnection bool
	// EnabledAt is the packet time tracing was enabled; with
	// OnlyNewConnection, connections whose SYN came earlier are not traced.
	EnabledAt int64
}

// MaxPacketNumberLimit is the largest max-packet-number (the vendor's
// range, 1 to 1048576): the one bound every way of setting it checks —
// the configuration, the control socket, SNMP and tcptap read's flag.
const MaxPacketNumberLimit = 1 << 20

// CheckMaxPacketNumber reports a max-packet-number outside 1 to
// MaxPacketNumberLimit.
func CheckMaxPacketNumber(n int) error {
	if n < 1 || n > MaxPacketNumberLimit {
		return fmt.Errorf("%d: want 1 to %d", n, MaxPacketNumberLimit)
	}
	return nil
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := CheckMaxPacketNumber(c.MaxPacketNumber); err != nil {
		return fmt.Errorf("max_packet_number %w", err)
	}
	return nil
}

// Stats count one connection table's trace decisions and records.
type Stats struct {
	Traced         uint64 // connections given a recorder
	NotTracedQuota uint64 // not traced: the memory quota was used up
	NotTracedACL   uint64 // not traced: the filter denied them
	NotTracedOld   uint64 // not traced: only-new-connection and no SYN seen after enabling
	Records        uint64 // packet records written
	Overwritten    uint64 // records that overwrote an older one
}

// Add adds o's counts to s.
func (s *Stats) Add(o *Stats) {
	s.Traced += o.Traced
	s.NotTracedQuota += o.NotTracedQuota
	s.NotTracedACL += o.NotTracedACL
	s.NotTracedOld += o.NotTracedOld
	s.Records += o.Records
	s.Overwritten += o.Overwritten
}
