package snmp

import (
	"context"
	"net/netip"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/record"
)

// Backend is what the MIB modules read and set: the daemon in tcptap run
// ([DaemonBackend]), a fake in tests.
type Backend interface {
	Settings() daemon.TraceSettings
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

// DaemonBackend serves the daemon's state.
func DaemonBackend(d *daemon.Daemon) Backend { return daemonBackend{d} }

type daemonBackend struct{ *daemon.Daemon }

func (b daemonBackend) CacheEntries() []*cache.Entry { return b.Cache().Entries(nil) }

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
