package web

import (
	"net/http"

	"github.com/tcptap/tcptap/classifier"
)

// Information is the trace configuration and statistics as JSON
// ("display tcp trace information").
type Information struct {
	Enabled            bool                       `json:"enabled"`
	MaxPacketNumber    int                        `json:"max_packet_number"`
	MemoryQuota        int64                      `json:"memory_quota_bytes"`
	MemoryUsed         int64                      `json:"memory_used_bytes"`
	MemoryPeak         int64                      `json:"memory_peak_bytes"`
	CacheMode          string                     `json:"cache_mode"`
	Filter             []string                   `json:"filter"`
	OnlyNewConnection  bool                       `json:"only_new_connection"`
	ConnectionsTracked uint64                     `json:"connections_tracked"`
	ConnectionsActive  uint64                     `json:"connections_active"`
	Traced             uint64                     `json:"traced"`
	NotTracedQuota     uint64                     `json:"not_traced_quota"`
	NotTracedFilter    uint64                     `json:"not_traced_filter"`
	NotTracedOld       uint64                     `json:"not_traced_old"`
	RecordsWritten     uint64                     `json:"records_written"`
	RecordsOverwritten uint64                     `json:"records_overwritten"`
	Cached             uint64                     `json:"cached"`
	CachedByReason     map[classifier.Code]uint64 `json:"cached_by_reason"`
	RecordsCached      uint64                     `json:"records_cached"`
	NotCachedQuota     uint64                     `json:"not_cached_quota"`
	Skipped            uint64                     `json:"skipped"`
}

func (a *api) information(w http.ResponseWriter, _ *http.Request) {
	in := a.b.Information()
	out := Information(*in)
	if out.Filter == nil {
		out.Filter = []string{}
	}
	writeJSON(w, &out)
}
