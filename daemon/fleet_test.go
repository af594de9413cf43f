package daemon

import (
	"sync"
	"testing"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/record"
)

// With Options.Fleet, every record the daemon makes carries the sensor, a
// uid of its own and the Community ID: those handed to OnClose and those
// the cache keeps (served by the HTTP API).
func TestFleetFields(t *testing.T) {
	var mu sync.Mutex
	closed := map[string]record.Record{}
	fleet := record.Fleet{Sensor: "rack1", CommunityIDSeed: 0}
	d, _ := startReplay(t, Options{
		CacheMode: cache.All,
		Fleet:     &fleet,
		OnClose: func(rec *record.Record) {
			mu.Lock()
			closed[rec.UID] = *rec
			mu.Unlock()
		},
	})
	entries := d.Cache().Entries(nil)
	if len(entries) == 0 {
		t.Fatal("nothing cached")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range entries {
		r := e.Record
		if r.Sensor != "rack1" || len(r.UID) != 18 || r.CommunityID != record.CommunityID(0, r.Client, r.Server) {
			t.Errorf("cached record %s %s %s", r.Sensor, r.UID, r.CommunityID)
		}
		if c, ok := closed[r.UID]; !ok || c.Client != r.Client {
			t.Errorf("cached record %s was not handed to OnClose with the same uid", r.UID)
		}
	}
	if len(closed) != len(entries) {
		t.Errorf("%d records to OnClose, %d cached (cache mode all)", len(closed), len(entries))
	}
}
