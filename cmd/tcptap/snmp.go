package main

import (
	"context"
	"encoding/hex"
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

// openSNMP opens the SNMP engine (its boots incremented in
// snmp.state_dir when SNMPv3 is configured) and the notifier of the trap
// targets (nil without targets). Without an agent and targets there is
// nothing to open.
func openSNMP(cfg config.SNMP, log *slog.Logger) (*snmp.USM, *snmp.Notifier, error) {
	if len(cfg.Listen) == 0 && len(cfg.TrapTargets) == 0 {
		return nil, nil, nil
	}
	engine, err := snmp.OpenEngine(cfg)
	if err != nil {
		return nil, nil, err
	}
	if snmp.UsesV3(cfg) {
		log.Info("SNMPv3 engine", "engine_id", hex.EncodeToString(engine.ID), "boots", engine.Boots, "state_dir", cfg.StateDir)
	}
	usm, err := snmp.NewUSM(cfg, engine)
	if err != nil {
		return nil, nil, err
	}
	n, err := snmp.NewNotifierUSM(cfg.TrapTargets, usm, time.Now(), log)
	if err != nil {
		return nil, nil, err
	}
	if n != nil {
		n.Rate, n.Burst = cfg.NotificationRate, cfg.NotificationBurst
	}
	return usm, n, nil
}

// startSNMP opens every snmp.listen address and serves the agent on each
// until ctx is done. With no community and no user configured, a
// read-only "public" limited to the loopback addresses answers (as
// Debian's snmpd does).
func startSNMP(ctx context.Context, cfg config.SNMP, usm *snmp.USM, d *daemon.Daemon, n *snmp.Notifier, log *slog.Logger, wg *sync.WaitGroup) (*snmp.Handler, error) {
	if len(cfg.Listen) == 0 {
		return nil, nil
	}
	if len(cfg.Communities) == 0 && len(cfg.Users) == 0 {
		cfg.Communities = snmp.DefaultCommunities()
	}
	host, _ := os.Hostname()
	h, err := snmp.NewAgent(cfg, usm, d, snmp.Info{Version: version, Name: host, Start: time.Now()}, log)
	if err != nil {
		return nil, err
	}
	if n != nil {
		if err := h.Tree.Register(n.Provider()); err != nil {
			return nil, err
		}
		h.OnAuthFailure = n.AuthenticationFailure
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
		return nil, fmt.Errorf("snmp.listen %s: %w (ports below 1024 need CAP_NET_BIND_SERVICE; set snmp.listen to another port, or empty for no agent)", addr, err)
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
	return h, nil
}

// snmpReloader applies a reloaded snmp section to the running agent and
// notifier: communities and views, SNMPv3 users, trap targets and
// authentication traps. The other snmp keys (listen addresses, the engine,
// its state directory, the notification rate) need a restart.
type snmpReloader struct {
	started config.SNMP // as the daemon started
	usm     *snmp.USM
	agent   *snmp.Handler  // nil: no agent
	n       *snmp.Notifier // nil: no trap targets at start
	log     *slog.Logger
}

// applicable returns which snmp keys (communities, views, users, trap
// targets, authentication traps) next may change without a restart: none without an agent or notifier; users only while SNMPv3's
// engine state was set up at start (or is not needed); trap targets only
// with a notifier running.
func (r *snmpReloader) applicable(next config.SNMP) map[string]bool {
	ok := map[string]bool{}
	if r == nil || r.usm == nil {
		return ok
	}
	v3 := !snmp.UsesV3(next) || snmp.UsesV3(r.started)
	if r.agent != nil {
		ok["snmp.communities"], ok["snmp.views"], ok["snmp.authentication_traps"] = true, true, true
	}
	ok["snmp.users"] = v3
	ok["snmp.trap_targets"] = r.n != nil && v3
	return ok
}

// apply parses everything first and changes nothing on an error; then
// swaps the users, the communities and the targets, each only where
// applicable says it may (the users and targets of SNMPv3 that was not set
// up at start stay as they started).
func (r *snmpReloader) apply(next config.SNMP) error {
	ok := r.applicable(next)
	if !ok["snmp.users"] {
		next.Users = r.started.Users
	}
	users, err := snmp.NewUSM(next, r.usm.Engine)
	if err != nil {
		return err
	}
	var coms []snmp.Community
	if r.agent != nil {
		c := next
		if len(c.Communities) == 0 && len(c.Users) == 0 {
			c.Communities = snmp.DefaultCommunities()
		}
		if coms, err = snmp.Communities(c); err != nil {
			return err
		}
	}
	var targets *snmp.Notifier
	if ok["snmp.trap_targets"] {
		if targets, err = snmp.NewNotifierUSM(next.TrapTargets, users, r.n.Start, r.log); err != nil {
			return err
		}
	}
	r.usm.SetUsers(users)
	if r.agent != nil {
		r.agent.SetCommunities(coms)
		r.agent.Counters.EnableAuthenTraps.Store(next.AuthenticationTraps)
	}
	if ok["snmp.trap_targets"] {
		r.n.SetTargets(targets)
	}
	return nil
}
