//go:build linux

package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/internal/netlab"
	"github.com/tcptap/tcptap/internal/scenarios"
	"github.com/tcptap/tcptap/reassembly"
)

// mirrorVNI is the VNI of TestLiveVXLANMirror's mirror session.
const mirrorVNI = 42

// TestLiveVXLANMirror runs the reason suite while the tap's client port is
// mirrored into VXLAN towards a sensor namespace (remote mirroring, as a
// cloud's traffic mirroring delivers it): the daemon on the sensor's link,
// seeing only tunnelled frames, must give every connection the reason the
// daemon on the bridge port itself gives, and describe its tunnel.
func TestLiveVXLANMirror(t *testing.T) {
	netlab.Require(t)
	began := time.Now()
	lab := netlab.New(t, scenarios.LabOptions())
	sensor := lab.MirrorVXLAN(t, netlab.ClientPort, mirrorVNI, capture.PortVXLAN)
	opts := daemon.Options{
		Table:     reassembly.Config{IdleTimeout: liveIdle},
		Trace:     flightrec.Config{Enabled: true},
		CacheMode: cache.All,
	}
	bridge := startLive(t, lab.Tap, netlab.ClientPort, 2, opts, capture.LiveConfig{Promiscuous: true})
	remote := startLive(t, sensor, netlab.MirrorSensorLink, 2, opts, capture.LiveConfig{Promiscuous: true})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	exps, _ := scenarios.RunConcurrently(ctx, t, lab, liveScenarios, 20*time.Second, 20*time.Millisecond)
	if t.Failed() {
		t.FailNow()
	}
	done := time.Now()
	want := map[connKey]int{}
	for _, e := range exps {
		want[connKey{e.Client, e.Server}]++
	}
	// Both daemons have every connection once it closed and lingered or
	// idled out.
	deadline := done.Add(liveIdle + 20*time.Second)
	for {
		b, r := cachedByKey(bridge.Cache()), cachedByKey(remote.Cache())
		missing := 0
		for k, n := range want {
			if len(b[k]) < n || len(r[k]) < n {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after %v, %d of %d connections are missing from one of the caches", time.Since(done).Round(time.Millisecond), missing, len(want))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	b, r := cachedByKey(bridge.Cache()), cachedByKey(remote.Cache())
	same := 0
	for k := range want {
		if len(b[k]) != len(r[k]) {
			t.Errorf("%v -> %v: %d records on the bridge port, %d through the tunnel", k.client, k.server, len(b[k]), len(r[k]))
			continue
		}
		for i := range b[k] {
			bv, rv := b[k][i], r[k][i]
			if bv.Reason != rv.Reason || bv.Actor != rv.Actor || bv.ConnState != rv.ConnState {
				t.Errorf("%v -> %v: bridge port %s\n  through the tunnel %s", k.client, k.server, describe(bv), describe(rv))
				continue
			}
			same++
		}
	}
	for k := range r {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected connection through the tunnel %v -> %v", k.client, k.server)
		}
	}
	// Every tunnelled record says how it travelled.
	for _, e := range remote.Cache().Entries(nil) {
		tun := e.Record.Tunnel
		if len(tun) != 1 || tun[0].Type != "vxlan" || tun[0].IDName != "vni" || tun[0].ID != mirrorVNI ||
			tun[0].Src.String() != netlab.MirrorTapAddr || tun[0].Dst.String() != netlab.MirrorSensorAddr {
			t.Errorf("%v -> %v: tunnel %+v, want vxlan %s>%s vni %d", e.Record.Client, e.Record.Server, tun, netlab.MirrorTapAddr, netlab.MirrorSensorAddr, mirrorVNI)
			break
		}
	}
	for _, e := range bridge.Cache().Entries(nil) {
		if e.Record.Tunnel != nil {
			t.Errorf("bridge port record with a tunnel: %+v", e.Record.Tunnel)
			break
		}
	}
	bridge.Stop()
	remote.Stop()
	logStats(t, remote.Daemon)
	var rs metrics.ReshardStats
	var tunnelled uint64
	for _, w := range remote.Stats() {
		rs.Sent += w.Reshard.Sent
		rs.Received += w.Reshard.Received
		rs.Full += w.Reshard.Full
		rs.Early += w.Reshard.Early
		tunnelled += w.Decode.Tunnelled
	}
	t.Logf("sensor: %d tunnelled segments, %d handed to the other worker (%d received), %d kept for a full inbox, %d let go early", tunnelled, rs.Sent, rs.Received, rs.Full, rs.Early)
	if rs.Sent == 0 || rs.Sent != rs.Received || rs.Full != 0 {
		t.Errorf("re-sharding: %+v", rs)
	}
	t.Logf("%d of %d connections (%d scenario runs) with the same reason, actor and conn_state on the bridge port and through the VXLAN mirror; took %v",
		same, len(exps), len(liveScenarios), time.Since(began).Round(time.Millisecond))
}
