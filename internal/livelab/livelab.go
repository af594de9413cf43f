// Package livelab opens a live daemon's capture sockets inside a network
// namespace a test built (internal/netlab), as tcptap run opens them on a
// sensor's own interfaces.
package livelab

import (
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/internal/netlab"
)

// Open returns a daemon.OpenFunc that opens each worker's AF_PACKET socket
// on its interface inside ns, with live's settings. The workers of an
// interface join fanout group when there are several of them; group IDs
// are per network namespace, so any ID unique within ns will do.
func Open(ns *netlab.Namespace, live capture.LiveConfig, group uint16) daemon.OpenFunc {
	return func(iface string, _, workers int) (daemon.Source, error) {
		lc := live
		lc.Interface = iface
		if workers > 1 {
			lc.FanoutGroup = group
		}
		var src *capture.LiveSource
		err := ns.Do(func() error {
			var err error
			src, err = capture.OpenLive(lc)
			return err
		})
		if err != nil {
			return nil, err
		}
		return src, nil
	}
}
