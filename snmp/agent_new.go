package snmp

import (
	"log/slog"

	"github.com/tcptap/tcptap/config"
)

// New returns the handler of tcptap's agent: the communities of cfg and
// the MIB modules reading b.
func New(cfg config.SNMP, b Backend, info Info, log *slog.Logger) (*Handler, error) {
	coms, err := Communities(cfg)
	if err != nil {
		return nil, err
	}
	h := &Handler{Tree: &Tree{}, Communities: coms, Log: log}
	var provs []Provider
	provs = append(provs, systemGroup(info)...)
	provs = append(provs, tcpMIB(b)...)
	provs = append(provs, snmpGroup(&h.Counters)...)
	provs = append(provs, tcptapMIB(b)...)
	if err := h.Tree.Register(provs...); err != nil {
		return nil, err
	}
	return h, nil
}

// DefaultCommunities is the agent's access when snmp.communities is
// empty: a read-only "public" for requests from the loopback addresses.
func DefaultCommunities() []config.Community {
	return []config.Community{{Name: "public", Access: "ro", Sources: []string{"127.0.0.0/8", "::1/128"}}}
}
