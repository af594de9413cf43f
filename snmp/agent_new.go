package snmp

import (
	"log/slog"

	"github.com/tcptap/tcptap/config"
)

// New returns the handler of tcptap's agent: the communities and users of
// cfg and the MIB modules reading b, with an SNMPv3 engine that lives in
// memory (boots 1); tcptap run uses [NewAgent] with the engine of
// [OpenEngine].
func New(cfg config.SNMP, b Backend, info Info, log *slog.Logger) (*Handler, error) {
	engine, err := memoryEngine(cfg)
	if err != nil {
		return nil, err
	}
	usm, err := NewUSM(cfg, engine)
	if err != nil {
		return nil, err
	}
	return NewAgent(cfg, usm, b, info, log)
}

// NewAgent returns the handler of tcptap's agent with the SNMPv3 security
// usm (of cfg's users), shared with the notifier.
func NewAgent(cfg config.SNMP, usm *USM, b Backend, info Info, log *slog.Logger) (*Handler, error) {
	coms, err := Communities(cfg)
	if err != nil {
		return nil, err
	}
	h := &Handler{Tree: &Tree{}, Communities: coms, USM: usm, Log: log}
	h.Counters.EnableAuthenTraps.Store(cfg.AuthenticationTraps)
	var provs []Provider
	provs = append(provs, systemGroup(info)...)
	provs = append(provs, tcpMIB(b)...)
	provs = append(provs, snmpGroup(&h.Counters)...)
	provs = append(provs, tcptapMIB(b)...)
	provs = append(provs, v3MIB(h)...)
	if err := h.Tree.Register(provs...); err != nil {
		return nil, err
	}
	return h, nil
}

// DefaultCommunities is the agent's access when neither snmp.communities
// nor snmp.users are configured: a read-only "public" for requests from
// the loopback addresses.
func DefaultCommunities() []config.Community {
	return []config.Community{{Name: "public", Access: "ro", Sources: []string{"127.0.0.0/8", "::1/128"}}}
}

// SetCommunities replaces the communities the agent answers (a reload),
// parsed by [Communities].
func (h *Handler) SetCommunities(coms []Community) {
	h.comMu.Lock()
	h.Communities = coms
	h.comMu.Unlock()
}
