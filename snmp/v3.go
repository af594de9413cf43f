package snmp

import (
	"bytes"
	"context"
	"crypto/subtle"
	"sync/atomic"

	"github.com/gosnmp/gosnmp"
)

// SNMPv3 message processing (RFC 3412 §7.2) with the USM (RFC 3414
// §3.2): the order of the checks, and the counter and Report each failure
// gives, follow the RFCs step by step.

// Report counters (1.3.6.1.6.3.15.1.1: usmStats; 1.3.6.1.6.3.11.2.1:
// snmpMPDStats; snmpUnknownContexts in SNMP-TARGET-MIB).
var (
	usmStats                 = MustOID("1.3.6.1.6.3.15.1.1")
	usmStatsUnsupportedSecLv = usmStats.Append(1)
	usmStatsNotInTimeWindows = usmStats.Append(2)
	usmStatsUnknownUserNames = usmStats.Append(3)
	usmStatsUnknownEngineIDs = usmStats.Append(4)
	usmStatsWrongDigests     = usmStats.Append(5)
	usmStatsDecryptionErrors = usmStats.Append(6)
	snmpMPDStats             = MustOID("1.3.6.1.6.3.11.2.1")
	snmpUnknownPDUHandlers   = snmpMPDStats.Append(3)
	snmpUnknownContexts      = MustOID("1.3.6.1.6.3.12.1.5")
)

// v3Request is what the USM learnt of a request, for its response or
// Report.
type v3Request struct {
	m         *v3Message
	user      *usmUser // nil until the user is known
	level     gosnmp.SnmpV3MsgFlags
	requestID uint32
	context   string
}

// handleV3 answers an SNMPv3 message; see [Handler.Handle].
func (h *Handler) handleV3(ctx context.Context, msg []byte) []byte {
	usm, st := h.USM, &h.USM.Stats
	m, ps, pe, err := parseV3Header(msg)
	if err != nil {
		h.Counters.InASNParseErrs.Add(1)
		return nil
	}
	// RFC 3412 §7.2 steps 3 and 4.
	if m.secModel != uint32(gosnmp.UserSecurityModel) {
		st.UnknownSecurityModels.Add(1)
		return nil
	}
	level := gosnmp.SnmpV3MsgFlags(m.flags) & flagsLevel
	if level == levelAuthPriv&^levelAuth {
		st.InvalidMsgs.Add(1) // privacy without authentication
		return nil
	}
	// RFC 3414 §3.2 step 1.
	if err := m.parseUSM(msg, ps, pe); err != nil {
		h.Counters.InASNParseErrs.Add(1)
		return nil
	}
	req := &v3Request{m: m, level: levelNoAuth}
	// Step 3: discovery lands here (an empty engine ID).
	if !bytes.Equal(m.engineID, usm.Engine.ID) {
		return h.report(req, usmStatsUnknownEngineIDs, &st.UnknownEngineIDs)
	}
	// Step 4.
	user := usm.user(string(m.userName))
	if user == nil {
		h.authFailure("unknown SNMPv3 user", "user", string(m.userName))
		return h.report(req, usmStatsUnknownUserNames, &st.UnknownUserNames)
	}
	// Step 5.
	if level > user.level() {
		return h.report(req, usmStatsUnsupportedSecLv, &st.UnsupportedSecLevels)
	}
	if level&levelAuth != 0 {
		// Step 6.
		if !authentic(user, msg, m) {
			h.authFailure("wrong SNMPv3 digest", "user", user.name)
			return h.report(req, usmStatsWrongDigests, &st.WrongDigests)
		}
		// Step 7: the Report is authenticated, so that the manager may
		// trust our boots and time.
		req.user, req.level = user, levelAuth
		if !usm.Engine.inTimeWindow(m.boots, m.engineTime) {
			return h.report(req, usmStatsNotInTimeWindows, &st.NotInTimeWindows)
		}
		req.level = levelNoAuth
	}
	scoped, padded := m.dataTLV, false
	if level == levelAuthPriv {
		// Step 8.
		if m.dataTag != tagOctetString {
			h.authFailure("SNMPv3 decryption error", "user", user.name)
			return h.report(req, usmStatsDecryptionErrors, &st.DecryptionErrors)
		}
		scoped, err = user.priv.decrypt(user.privKey, m.boots, m.engineTime, m.privParams, m.data)
		if err == nil {
			// A wrong key gives garbage, seen as a ScopedPDU that does
			// not parse.
			if tag, _, _, e := berTLV(scoped, 0, len(scoped)); e != nil || tag != tagSequence {
				err = errDecrypt
			}
		}
		if err != nil {
			h.authFailure("SNMPv3 decryption error", "user", user.name)
			return h.report(req, usmStatsDecryptionErrors, &st.DecryptionErrors)
		}
		padded = true
	} else if m.dataTag != tagSequence {
		h.Counters.InASNParseErrs.Add(1)
		return nil
	}
	req.user, req.level = user, level
	contextEngineID, contextName, pdu, err := parseScopedPDU(scoped, padded)
	if err != nil {
		h.Counters.InASNParseErrs.Add(1)
		return nil
	}
	p, err := decode(v2cWrap(pdu))
	if err != nil || p == nil {
		h.Counters.InASNParseErrs.Add(1)
		return nil
	}
	req.requestID, req.context = p.RequestID, string(contextName)
	switch p.PDUType {
	case gosnmp.GetRequest, gosnmp.GetNextRequest, gosnmp.GetBulkRequest, gosnmp.SetRequest:
	case gosnmp.InformRequest:
		// RFC 3412 §7.2 step 13: no notification receiver here.
		return h.report(req, snmpUnknownPDUHandlers, &st.UnknownPDUHandlers)
	case gosnmp.Trap:
		h.Counters.InASNParseErrs.Add(1) // the SNMPv1 trap PDU cannot be in an SNMPv3 message
		return nil
	default:
		st.UnknownPDUHandlers.Add(1) // responses, reports, traps: not for a command responder
		return nil
	}
	// RFC 3412 §4.2.2.1: the command responder registered our engine
	// ID; RFC 3413 §3.2 step 3: the only context is the default "".
	if !bytes.Equal(contextEngineID, usm.Engine.ID) {
		return h.report(req, snmpUnknownPDUHandlers, &st.UnknownPDUHandlers)
	}
	if len(contextName) != 0 {
		return h.report(req, snmpUnknownContexts, &st.UnknownContexts)
	}

	resp := usm.packet(user, user.name, level, m.msgID)
	resp.PDUType, resp.RequestID = gosnmp.GetResponse, p.RequestID
	limit := min(h.maxSize(), int(m.maxSize))
	// Access control (RFC 3415's role): a request below the user's
	// security level, or a set by a read-only user, is denied as a whole.
	if level < user.level() || p.PDUType == gosnmp.SetRequest && !user.access.Write {
		h.debug("SNMPv3 access denied", "user", user.name, "level", levelName(level), "pdu", p.PDUType.String())
		resp.Error, resp.ErrorIndex, resp.Variables = gosnmp.AuthorizationError, 0, p.Variables
		return h.send(resp, false, limit)
	}
	ctx = withActor(ctx, "via", "snmp", "user", user.name, "security_level", levelName(level), "source", sourceOf(ctx))
	bulk, ok := h.serve(ctx, p, &user.access, false, resp)
	if !ok {
		return nil
	}
	return h.send(resp, bulk, limit)
}

// authentic verifies a message's digest: the HMAC of the whole message
// with msgAuthenticationParameters zeroed (RFC 3414 §6.3.2, §7.3.2; RFC
// 7860 §4.2.2), in constant time.
func authentic(u *usmUser, msg []byte, m *v3Message) bool {
	if len(m.authParams) != u.auth.macLen {
		return false
	}
	zeroed := bytes.Clone(msg)
	clear(zeroed[m.authAt : m.authAt+len(m.authParams)])
	return subtle.ConstantTimeCompare(u.auth.mac(u.authKey, zeroed), m.authParams) == 1
}

// report answers req with a Report PDU carrying the incremented counter
// (RFC 3412 §7.1 step 3), if the request asked for reports.
func (h *Handler) report(req *v3Request, oid OID, counter *atomic.Uint64) []byte {
	n := counter.Add(1)
	m := req.m
	if gosnmp.SnmpV3MsgFlags(m.flags)&gosnmp.Reportable == 0 {
		return nil
	}
	if req.user == nil && m.dataTag == tagSequence {
		// The request-id of an unauthenticated plaintext request, for
		// managers that match Reports by it.
		if _, _, pdu, err := parseScopedPDU(m.dataTLV, false); err == nil {
			if p, err := decode(v2cWrap(pdu)); err == nil && p != nil {
				req.requestID = p.RequestID
			}
		}
	}
	name := string(m.userName)
	if req.user != nil {
		name = req.user.name
	}
	resp := h.USM.packet(req.user, name, req.level, m.msgID)
	resp.PDUType, resp.RequestID, resp.ContextName = gosnmp.Report, req.requestID, req.context
	resp.Variables = []gosnmp.SnmpPDU{{Name: oid.Append(0).String(), Type: gosnmp.Counter32, Value: uint32(n)}}
	h.debug("SNMPv3 report", "oid", oid.String(), "user", name)
	return h.send(resp, false, h.maxSize())
}

// authFailure counts an authentication failure toward an
// authenticationFailure notification.
func (h *Handler) authFailure(what string, args ...any) {
	h.debug(what, args...)
	if h.OnAuthFailure != nil && h.Counters.EnableAuthenTraps.Load() {
		h.OnAuthFailure()
	}
}
