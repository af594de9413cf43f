package snmp

import (
	"context"
	"net/netip"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/record"
)

// Backend is what the MIB modules read and set: the daemon
// (*daemon.Daemon) in tcptap run, a fake in tests. The agent sits below the
// daemon: it knows only this interface.
type Backend interface {
	Settings() config.TraceSettings
	SetEnabled(on bool) error
	SetMaxPacketNumber(n int) error
	SetMemoryQuota(n int64) error
	SetCacheMode(m cache.Mode) error
	MetricsSnapshot() *metrics.Snapshot
	Information() *exporter.TraceInformation
	// OpenConnections returns records of open connections, at most max.
	OpenConnections(ctx context.Context, max int) ([]record.Record, error)
	// CacheEntries returns the trace cache's closed connections.
	CacheEntries() []*cache.Entry
	// Listeners returns the local-side endpoints seen answering SYNs
	// (tcpListenerTable).
	Listeners() []netip.AddrPort
}

// snapshot returns the backend's metrics snapshot, taken once per request
// so every object of one PDU reads the same counters.
func snapshot(b Backend, r *Request) *metrics.Snapshot {
	if v, ok := r.memo[snapshotMemo{}]; ok {
		return v.(*metrics.Snapshot)
	}
	s := b.MetricsSnapshot()
	r.memo[snapshotMemo{}] = s
	return s
}

type snapshotMemo struct{}
