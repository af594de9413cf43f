package snmp

import (
	"sync/atomic"

	"github.com/gosnmp/gosnmp"
)

// The SNMPv3 objects of the agent, read-only:
//
//	snmpEngine   1.3.6.1.6.3.10.2.1    SNMP-FRAMEWORK-MIB (RFC 3411): ID, boots, time, max message size
//	snmpMPDStats 1.3.6.1.6.3.11.2.1    SNMP-MPD-MIB (RFC 3412): unknown security models, invalid messages, unknown PDU handlers
//	snmpUnknownContexts 1.3.6.1.6.3.12.1.5  SNMP-TARGET-MIB (RFC 3413)
//	usmStats     1.3.6.1.6.3.15.1.1    SNMP-USM-MIB (RFC 3414): the Report counters
//
// and snmpEnableAuthenTraps (SNMPv2-MIB), read-write.
var snmpEngine = MustOID("1.3.6.1.6.3.10.2.1")

// v3MIB serves the SNMPv3 objects of h's USM (read when asked: h.USM may
// be replaced before the agent serves).
func v3MIB(h *Handler) []Provider {
	scalar := func(oid OID, get func() Value) Provider {
		return (&Scalar{OID: oid, Get: func(*Request) Value { return get() }}).Provider()
	}
	ctr := func(oid OID, c func(*USMStats) *atomic.Uint64) Provider {
		return scalar(oid, func() Value { return Counter32(c(&h.USM.Stats).Load()) })
	}
	return []Provider{
		scalar(snmpEngine.Append(1), func() Value { return OctetString(h.USM.Engine.ID) }),
		scalar(snmpEngine.Append(2), func() Value { return Integer(int(h.USM.Engine.Boots)) }),
		scalar(snmpEngine.Append(3), func() Value { return Integer(int(h.USM.Engine.Time())) }),
		scalar(snmpEngine.Append(4), func() Value { return Integer(MaxInMessageSize) }),
		ctr(snmpMPDStats.Append(1), func(s *USMStats) *atomic.Uint64 { return &s.UnknownSecurityModels }),
		ctr(snmpMPDStats.Append(2), func(s *USMStats) *atomic.Uint64 { return &s.InvalidMsgs }),
		ctr(snmpUnknownPDUHandlers, func(s *USMStats) *atomic.Uint64 { return &s.UnknownPDUHandlers }),
		ctr(snmpUnknownContexts, func(s *USMStats) *atomic.Uint64 { return &s.UnknownContexts }),
		ctr(usmStatsUnsupportedSecLv, func(s *USMStats) *atomic.Uint64 { return &s.UnsupportedSecLevels }),
		ctr(usmStatsNotInTimeWindows, func(s *USMStats) *atomic.Uint64 { return &s.NotInTimeWindows }),
		ctr(usmStatsUnknownUserNames, func(s *USMStats) *atomic.Uint64 { return &s.UnknownUserNames }),
		ctr(usmStatsUnknownEngineIDs, func(s *USMStats) *atomic.Uint64 { return &s.UnknownEngineIDs }),
		ctr(usmStatsWrongDigests, func(s *USMStats) *atomic.Uint64 { return &s.WrongDigests }),
		ctr(usmStatsDecryptionErrors, func(s *USMStats) *atomic.Uint64 { return &s.DecryptionErrors }),
	}
}

// enableAuthenTraps is snmpEnableAuthenTraps (SNMPv2-MIB): enabled(1) or
// disabled(2), starting at snmp.authentication_traps; a set changes it
// until the next start.
func enableAuthenTraps(c *Counters) Provider {
	return (&Scalar{
		OID: snmpG.Append(30),
		Get: func(*Request) Value {
			if c.EnableAuthenTraps.Load() {
				return Integer(1)
			}
			return Integer(2)
		},
		Set: func(_ *Request, v Value) (Commit, gosnmp.SNMPError) {
			n, ok := v.V.(int)
			switch {
			case v.Type != gosnmp.Integer || !ok:
				return Commit{}, gosnmp.WrongType
			case n != 1 && n != 2:
				return Commit{}, gosnmp.WrongValue
			}
			return Commit{Apply: func() error { c.EnableAuthenTraps.Store(n == 1); return nil }}, gosnmp.NoError
		},
	}).Provider()
}
