package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/daemon"
	"github.com/tcptap/tcptap/snmp"
)

// startSNMP opens every snmp.listen address and serves the agent on each
// until ctx is done. With no community configured, a read-only "public"
// limited to the loopback addresses answers (as Debian's snmpd does).
func startSNMP(ctx context.Context, cfg config.SNMP, d *daemon.Daemon, n *snmp.Notifier, log *slog.Logger, wg *sync.WaitGroup) error {
	if len(cfg.Listen) == 0 {
		return nil
	}
	if len(cfg.Communities) == 0 {
		cfg.Communities = snmp.DefaultCommunities()
	}
	host, _ := os.Hostname()
	h, err := snmp.New(cfg, snmp.DaemonBackend(d), snmp.Info{Version: version, Name: host, Start: time.Now()}, log)
	if err != nil {
		return err
	}
	if n != nil {
		if err := h.Tree.Register(n.Provider()); err != nil {
			return err
		}
	}
	var conns []*net.UDPConn
	for _, addr := range cfg.Listen {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err == nil {
			var c *net.UDPConn
			if c, err = net.ListenUDP("udp", ua); err == nil {
				conns = append(conns, c)
				continue
			}
		}
		for _, c := range conns {
			c.Close()
		}
		return fmt.Errorf("snmp.listen %s: %w (ports below 1024 need CAP_NET_BIND_SERVICE; set snmp.listen to another port, or empty for no agent)", addr, err)
	}
	for _, c := range conns {
		log.Info("SNMP listening", "address", c.LocalAddr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := snmp.Serve(ctx, c, h); err != nil {
				log.Error("SNMP", "address", c.LocalAddr().String(), "err", err)
			}
		}()
	}
	return nil
}
