package snmp

import (
	"time"
)

// OID arcs.
var (
	mib2   = MustOID("1.3.6.1.2.1")
	system = mib2.Append(1)
	tcp    = mib2.Append(6)
	snmpG  = mib2.Append(11)

	// Enterprise is tcptap's private enterprise arc. 64399 is a
	// PLACEHOLDER: the number must be registered with IANA
	// (https://www.iana.org/assignments/enterprise-numbers) before release,
	// and TCPTAP-MIB changed with it.
	Enterprise = MustOID("1.3.6.1.4.1.64399")
	// TCPTAPMIB is the module identity of TCPTAP-MIB.
	TCPTAPMIB = Enterprise.Append(1)
	// SysObjectID identifies the agent: tcptapAgent in TCPTAP-MIB.
	SysObjectID = Enterprise.Append(2, 1)
)

// Info describes the agent in the system group.
type Info struct {
	Version  string // tcptap's version, in sysDescr
	Contact  string
	Name     string // sysName; usually the host name
	Location string
	Start    time.Time // sysUpTime counts from it
	// Modules are sysORTable rows after those of the MIB modules every
	// agent serves (SNMPv2-MIB, TCP-MIB, TCPTAP-MIB): e.g. the SNMPv3
	// modules when users are configured.
	Modules []Module
}

// Module is a sysORTable row: a MIB module the agent serves.
type Module struct {
	ID    OID    // sysORID: the module's MODULE-IDENTITY
	Descr string // sysORDescr
}

// servedModules are the MIB modules every agent serves.
var servedModules = []Module{
	{MustOID("1.3.6.1.6.3.1"), "SNMPv2-MIB (RFC 3418): the system and snmp groups"},
	{MustOID("1.3.6.1.2.1.49"), "TCP-MIB (RFC 4022): the TCP connections of the tapped link"},
	{TCPTAPMIB, "TCPTAP-MIB: tcptap's trace configuration, statistics, cache and notifications"},
}

// systemGroup is SNMPv2-MIB's system group (RFC 3418), read-only. The
// sysORTable rows are fixed when the agent starts, so sysORLastChange and
// every sysORUpTime are 0.
func systemGroup(info Info) []Provider {
	str := func(s string) func(*Request) Value { return func(*Request) Value { return String(s) } }
	s := func(id uint32, get func(*Request) Value) Provider {
		return (&Scalar{OID: system.Append(id), Get: get}).Provider()
	}
	return []Provider{
		s(1, str("tcptap "+info.Version+" passive TCP tap analyzer")),
		s(2, func(*Request) Value { return ObjectIdentifier(SysObjectID) }),
		s(3, func(*Request) Value { return TimeTicks(uptime(info.Start)) }),
		s(4, str(info.Contact)),
		s(5, str(info.Name)),
		s(6, str(info.Location)),
		// applications(64) + end-to-end(8): a host that observes TCP.
		s(7, func(*Request) Value { return Integer(72) }),
		s(8, func(*Request) Value { return TimeTicks(0) }),
		sysORTable(append(append([]Module(nil), servedModules...), info.Modules...)).Provider(),
	}
}

// sysORTable is system.9, indexed by sysORIndex from 1.
func sysORTable(mods []Module) *Table {
	rows := make([]Row, len(mods))
	for i := range mods {
		rows[i] = Row{Index: OID{uint32(i + 1)}, Data: &mods[i]}
	}
	mod := func(r Row) *Module { return r.Data.(*Module) }
	return &Table{
		Entry: system.Append(9, 1),
		Columns: []Column{
			{ID: 2, Get: func(r Row) Value { return ObjectIdentifier(mod(r).ID) }},
			{ID: 3, Get: func(r Row) Value { return String(mod(r).Descr) }},
			{ID: 4, Get: func(Row) Value { return TimeTicks(0) }},
		},
		Rows: func(*Request) []Row { return rows },
	}
}

// uptime is the time since start in hundredths of a second, wrapping as
// TimeTicks do.
func uptime(start time.Time) uint32 {
	return uint32(uint64(time.Since(start)/(10*time.Millisecond)) % (1 << 32))
}

// snmpGroup is the SNMPv2-MIB snmp group: the agent's counters and
// snmpEnableAuthenTraps (mib_usm.go).
func snmpGroup(c *Counters) []Provider {
	ctr := func(id uint32, f func() uint64) Provider {
		return (&Scalar{OID: snmpG.Append(id), Get: func(*Request) Value { return Counter32(f()) }}).Provider()
	}
	return []Provider{
		ctr(1, c.InPkts.Load),
		ctr(3, c.InBadVersions.Load),
		ctr(4, c.InBadCommunityNames.Load),
		ctr(5, c.InBadCommunityUses.Load),
		ctr(6, c.InASNParseErrs.Load),
		enableAuthenTraps(c),
		ctr(31, c.SilentDrops.Load),
		ctr(32, c.ProxyDrops.Load),
	}
}
