package snmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/config"
)

// testUsers are the SNMPv3 users of v3Agent.
var testUsers = []config.User{
	{Name: "ro-priv", AuthProtocol: "sha", AuthPassword: "auth-pass-1", PrivProtocol: "aes", PrivPassword: "priv-pass-1"},
	{Name: "rw-auth", AuthProtocol: "sha256", AuthPassword: "auth-pass-2", Access: "rw"},
	{Name: "noauth"},
	{Name: "tcp-des", AuthProtocol: "md5", AuthPassword: "auth-pass-3", PrivProtocol: "des", PrivPassword: "priv-pass-3", View: "tcp"},
	{Name: "rw-aes256", AuthProtocol: "sha", AuthPassword: "auth-pass-4", PrivProtocol: "aes256", PrivPassword: "priv-pass-4", Access: "rw"},
	{Name: "sha512", AuthProtocol: "sha512", AuthPassword: "auth-pass-5"},
}

// v3Agent is testAgent with testUsers; authentication failures are
// counted in fails.
func v3Agent(t testing.TB) (h *Handler, f *fake, fails *atomic.Int64) {
	t.Helper()
	h, f = testAgent(t)
	usm, err := NewUSM(config.SNMP{Users: testUsers, Views: []config.View{{Name: "tcp", Included: []string{"1.3.6.1.2.1.6"}}}}, h.USM.Engine)
	if err != nil {
		t.Fatal(err)
	}
	h.USM = usm
	fails = new(atomic.Int64)
	h.OnAuthFailure = func() { fails.Add(1) }
	h.Counters.EnableAuthenTraps.Store(true)
	return h, f, fails
}

// v3Msg is a request as a manager sends it.
type v3Msg struct {
	user        *usmUser // keys; nil: none
	userName    string
	level       gosnmp.SnmpV3MsgFlags
	notReport   bool // clear the reportable flag
	engineID    []byte
	boots, time uint32
	contextID   []byte
	contextName string
	pdu         gosnmp.PDUType
	vbs         []gosnmp.SnmpPDU
	maxRep      uint32 // get-bulk
	salt        uint64
}

// to addresses the message to h's engine, in its time window.
func (m v3Msg) to(h *Handler) v3Msg {
	m.engineID, m.contextID = h.USM.Engine.ID, h.USM.Engine.ID
	m.boots, m.time = h.USM.Engine.Boots, h.USM.Engine.Time()
	return m
}

// encode encodes m with gosnmp's (client side) encoder.
func (m v3Msg) encode(t testing.TB) []byte {
	t.Helper()
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID: string(m.engineID), AuthoritativeEngineBoots: m.boots, AuthoritativeEngineTime: m.time,
		UserName: m.userName, AuthenticationProtocol: gosnmp.NoAuth, PrivacyProtocol: gosnmp.NoPriv,
	}
	if m.level&levelAuth != 0 {
		sp.AuthenticationProtocol, sp.SecretKey = m.user.auth.id, m.user.authKey
	}
	if m.level == levelAuthPriv {
		sp.PrivacyProtocol, sp.PrivacyKey = m.user.priv.id, m.user.privKey
		sp.PrivacyParameters = binary.BigEndian.AppendUint64(nil, m.salt+1)
	}
	flags := m.level | gosnmp.Reportable
	if m.notReport {
		flags = m.level
	}
	p := &gosnmp.SnmpPacket{Version: gosnmp.Version3, MsgID: 77, MsgMaxSize: 65507, MsgFlags: flags,
		SecurityModel: gosnmp.UserSecurityModel, SecurityParameters: sp,
		ContextEngineID: string(m.contextID), ContextName: m.contextName,
		PDUType: m.pdu, RequestID: 4242, Variables: m.vbs, MaxRepetitions: m.maxRep}
	if p.PDUType == 0 {
		p.PDUType = gosnmp.GetRequest
	}
	b, err := p.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// v3Reply is an answer as the manager reads it.
type v3Reply struct {
	m   *v3Message
	pdu *gosnmp.SnmpPacket
}

// reportOID is the counter a Report carries.
func (r *v3Reply) reportOID() string {
	if r.pdu.PDUType != gosnmp.Report || len(r.pdu.Variables) != 1 {
		return ""
	}
	return r.pdu.Variables[0].Name
}

// v3Exchange hands msg to h and reads the answer (nil: none), verifying
// it with u's keys when authenticated.
func v3Exchange(t testing.TB, h *Handler, msg []byte, u *usmUser) *v3Reply {
	t.Helper()
	out := h.Handle(context.Background(), msg, localhost)
	if out == nil {
		return nil
	}
	m, ps, pe, err := parseV3Header(out)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if err := m.parseUSM(out, ps, pe); err != nil {
		t.Fatalf("answer: %v", err)
	}
	if !bytes.Equal(m.engineID, h.USM.Engine.ID) || m.boots != h.USM.Engine.Boots || m.msgID != 77 {
		t.Fatalf("answer from engine %x boots %d, msgID %d", m.engineID, m.boots, m.msgID)
	}
	level := gosnmp.SnmpV3MsgFlags(m.flags)
	if level&gosnmp.Reportable != 0 {
		t.Error("answer is reportable")
	}
	scoped := m.dataTLV
	if level&levelAuth != 0 && !authentic(u, out, m) {
		t.Fatalf("answer at %s: wrong digest", levelName(level))
	}
	if level&levelAuthPriv == levelAuthPriv {
		if scoped, err = u.priv.decrypt(u.privKey, m.boots, m.engineTime, m.privParams, m.data); err != nil {
			t.Fatal(err)
		}
	}
	ctxID, _, pdu, err := parseScopedPDU(scoped, level&levelAuthPriv == levelAuthPriv)
	if err != nil || !bytes.Equal(ctxID, h.USM.Engine.ID) {
		t.Fatalf("answer: scoped PDU %v, context engine %x", err, ctxID)
	}
	p, err := decode(v2cWrap(pdu))
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	return &v3Reply{m: m, pdu: p}
}

const sysDescr0 = ".1.3.6.1.2.1.1.1.0"

func TestV3Discovery(t *testing.T) {
	h, _, fails := v3Agent(t)
	// net-snmp's probe: noAuthNoPriv, empty engine ID and user, an
	// empty get.
	r := v3Exchange(t, h, v3Msg{}.encode(t), nil)
	if r == nil || r.reportOID() != usmStatsUnknownEngineIDs.Append(0).String() {
		t.Fatalf("discovery: %+v", r)
	}
	if r.m.flags != 0 || r.pdu.RequestID != 4242 || r.pdu.Variables[0].Value.(uint) != 1 || len(r.m.userName) != 0 {
		t.Errorf("discovery report: flags %#x, request-id %d, %v", r.m.flags, r.pdu.RequestID, r.pdu.Variables)
	}
	if r.m.engineTime > 1 {
		t.Errorf("engine time %d", r.m.engineTime)
	}
	// Another engine's ID, even authenticated: the same Report.
	ro := h.USM.user("ro-priv")
	msg := v3Msg{user: ro, userName: "ro-priv", level: levelAuthPriv, vbs: oids(sysDescr0)}.to(h)
	msg.engineID = []byte("\x80\x00\x00\x01\x05other")
	if r = v3Exchange(t, h, msg.encode(t), nil); r == nil || r.reportOID() != usmStatsUnknownEngineIDs.Append(0).String() || r.m.flags != 0 {
		t.Errorf("foreign engine ID: %+v", r)
	}
	// Without the reportable flag: counted, unanswered.
	if v3Exchange(t, h, v3Msg{notReport: true}.encode(t), nil) != nil || h.USM.Stats.UnknownEngineIDs.Load() != 3 {
		t.Error("unreportable discovery answered")
	}
	if fails.Load() != 0 {
		t.Errorf("%d authentication failures for discovery", fails.Load())
	}
}

func TestV3Get(t *testing.T) {
	h, _, _ := v3Agent(t)
	for _, c := range []struct {
		user  string
		level gosnmp.SnmpV3MsgFlags
	}{
		{"ro-priv", levelAuthPriv},
		{"ro-priv", levelAuth}, // below the user's level: refused below
		{"rw-auth", levelAuth},
		{"noauth", levelNoAuth},
		{"tcp-des", levelAuthPriv},
		{"rw-aes256", levelAuthPriv},
	} {
		u := h.USM.user(c.user)
		for i := range 3 { // fresh salts each time
			r := v3Exchange(t, h, v3Msg{user: u, userName: c.user, level: c.level, vbs: oids(sysDescr0, ".1.3.6.1.2.1.6.9.0"), salt: uint64(i) << 40}.to(h).encode(t), u)
			if r == nil || r.pdu.PDUType != gosnmp.GetResponse || r.pdu.RequestID != 4242 {
				t.Fatalf("%s %s: %+v", c.user, levelName(c.level), r)
			}
			if gosnmp.SnmpV3MsgFlags(r.m.flags) != c.level || string(r.m.userName) != c.user {
				t.Errorf("%s: answered at %s as %q", c.user, levelName(gosnmp.SnmpV3MsgFlags(r.m.flags)), r.m.userName)
			}
			vbs := r.pdu.Variables
			switch {
			case c.level < u.level():
				if r.pdu.Error != gosnmp.AuthorizationError || r.pdu.ErrorIndex != 0 {
					t.Errorf("%s at %s: %v index %d, want authorizationError", c.user, levelName(c.level), r.pdu.Error, r.pdu.ErrorIndex)
				}
			case u.access.View != nil: // tcp only
				if vbs[0].Type != gosnmp.NoSuchObject || vbs[1].Value.(uint) != 2 {
					t.Errorf("%s: %v", c.user, vbs)
				}
			default:
				if r.pdu.Error != gosnmp.NoError || string(vbs[0].Value.([]byte)) != "tcptap test passive TCP tap analyzer" || vbs[1].Value.(uint) != 2 {
					t.Errorf("%s: %v %v", c.user, r.pdu.Error, vbs)
				}
			}
		}
	}
	// A v3 walk sees what v2c sees.
	u := h.USM.user("ro-priv")
	v2 := walk(t, h, gosnmp.Version2c, "public", ".1.3.6.1.2.1.6", nil)
	prev, n := ".1.3.6.1.2.1.6", 0
	for ; n < 1000; n++ {
		r := v3Exchange(t, h, v3Msg{user: u, userName: "ro-priv", level: levelAuthPriv, pdu: gosnmp.GetNextRequest, vbs: oids(prev)}.to(h).encode(t), u)
		vb := r.pdu.Variables[0]
		if vb.Type == gosnmp.EndOfMibView || !MustOID(vb.Name).HasPrefix(tcp) {
			break
		}
		if n >= len(v2) || vb.Name != v2[n].Name || vb.Type != v2[n].Type {
			t.Fatalf("v3 walk step %d: %s, v2c %v", n, vb.Name, v2[n])
		}
		prev = vb.Name
	}
	if n != len(v2) {
		t.Errorf("v3 walk: %d objects, v2c %d", n, len(v2))
	}
	// Get-bulk is clamped and truncated to the manager's msgMaxSize too.
	r := v3Exchange(t, h, v3Msg{user: u, userName: "ro-priv", level: levelAuthPriv, pdu: gosnmp.GetBulkRequest, vbs: oids(".1.3"), maxRep: 1000}.to(h).encode(t), u)
	if r.pdu.Error != gosnmp.NoError || len(r.pdu.Variables) < 10 || len(r.pdu.Variables) == MaxBulkVarbinds {
		t.Errorf("bulk: %v, %d varbinds", r.pdu.Error, len(r.pdu.Variables))
	}
	t.Logf("authPriv get-bulk: %d varbinds in %d bytes", len(r.pdu.Variables), len(r.m.dataTLV))
}

func TestV3Reports(t *testing.T) {
	h, _, fails := v3Agent(t)
	st := &h.USM.Stats
	ro, rw := h.USM.user("ro-priv"), h.USM.user("rw-auth")
	get := v3Msg{user: ro, userName: "ro-priv", level: levelAuthPriv, vbs: oids(sysDescr0)}
	check := func(what string, r *v3Reply, oid OID, level gosnmp.SnmpV3MsgFlags, fail int64) {
		t.Helper()
		if r == nil || r.reportOID() != oid.Append(0).String() {
			t.Fatalf("%s: %+v", what, r)
		}
		if got := gosnmp.SnmpV3MsgFlags(r.m.flags); got != level {
			t.Errorf("%s: report at %s, want %s", what, levelName(got), levelName(level))
		}
		if fails.Load() != fail {
			t.Errorf("%s: %d authentication failures, want %d", what, fails.Load(), fail)
		}
	}

	msg := get.to(h)
	msg.userName = "nobody"
	check("unknown user", v3Exchange(t, h, msg.encode(t), nil), usmStatsUnknownUserNames, levelNoAuth, 1)

	msg = get.to(h)
	msg.user = &usmUser{auth: ro.auth, priv: ro.priv, authKey: bytes.Repeat([]byte{1}, 20), privKey: ro.privKey}
	check("wrong auth key", v3Exchange(t, h, msg.encode(t), nil), usmStatsWrongDigests, levelNoAuth, 2)

	msg = get.to(h)
	msg.user = &usmUser{auth: ro.auth, priv: ro.priv, authKey: ro.authKey, privKey: bytes.Repeat([]byte{7}, 16)}
	check("wrong priv key", v3Exchange(t, h, msg.encode(t), nil), usmStatsDecryptionErrors, levelNoAuth, 3)

	// SHA-256 digests are 24 bytes: a 12-byte one is wrong.
	msg = v3Msg{user: &usmUser{auth: authProtocols["sha"], authKey: rw.authKey}, userName: "rw-auth", level: levelAuth, vbs: oids(sysDescr0)}.to(h)
	check("MAC length", v3Exchange(t, h, msg.encode(t), nil), usmStatsWrongDigests, levelNoAuth, 4)

	noauth := &usmUser{auth: rw.auth, authKey: rw.authKey}
	msg = v3Msg{user: noauth, userName: "noauth", level: levelAuth, vbs: oids(sysDescr0)}.to(h)
	check("unsupported level", v3Exchange(t, h, msg.encode(t), nil), usmStatsUnsupportedSecLv, levelNoAuth, 4)

	// Time window: boots, then ±150 s. The Report is authenticated and
	// carries our boots and time.
	msg = get.to(h)
	msg.boots++
	r := v3Exchange(t, h, msg.encode(t), ro)
	check("other boots", r, usmStatsNotInTimeWindows, levelAuth, 4)
	if r.m.boots != h.USM.Engine.Boots || r.m.engineTime != h.USM.Engine.Time() {
		t.Errorf("notInTimeWindow report: boots %d time %d", r.m.boots, r.m.engineTime)
	}
	base := time.Now()
	h.USM.Engine.now = func() time.Time { return base.Add(1000 * time.Second) }
	for _, c := range []struct {
		delta int64
		ok    bool
	}{{-150, true}, {150, true}, {-151, false}, {151, false}, {-1000, false}} {
		msg = get.to(h)
		msg.time = uint32(int64(msg.time) + c.delta)
		r = v3Exchange(t, h, msg.encode(t), ro)
		if ok := r.pdu.PDUType == gosnmp.GetResponse; ok != c.ok {
			t.Errorf("manager time %+d s: %v %s", c.delta, r.pdu.PDUType, r.reportOID())
		}
	}
	if n := st.NotInTimeWindows.Load(); n != 4 {
		t.Errorf("usmStatsNotInTimeWindows %d", n)
	}

	// Contexts: only ours, only "".
	msg = get.to(h)
	msg.contextName = "other"
	r = v3Exchange(t, h, msg.encode(t), ro)
	check("context name", r, snmpUnknownContexts, levelAuthPriv, 4)
	if r.pdu.RequestID != 4242 {
		t.Errorf("report request-id %d", r.pdu.RequestID)
	}
	msg = get.to(h)
	msg.contextID = []byte("\x80\x00\x00\x01\x05other")
	check("context engine", v3Exchange(t, h, msg.encode(t), ro), snmpUnknownPDUHandlers, levelAuthPriv, 4)
	msg = get.to(h)
	msg.pdu = gosnmp.InformRequest
	check("inform", v3Exchange(t, h, msg.encode(t), ro), snmpUnknownPDUHandlers, levelAuthPriv, 4)

	// Disabled notifications: counted, not notified.
	h.Counters.EnableAuthenTraps.Store(false)
	msg = get.to(h)
	msg.userName = "nobody"
	check("unknown user, traps disabled", v3Exchange(t, h, msg.encode(t), nil), usmStatsUnknownUserNames, levelNoAuth, 4)

	want := map[string]uint64{"unknown users": 2, "wrong digests": 2, "decryption errors": 1, "unsupported levels": 1, "contexts": 1, "PDU handlers": 2}
	got := map[string]uint64{"unknown users": st.UnknownUserNames.Load(), "wrong digests": st.WrongDigests.Load(), "decryption errors": st.DecryptionErrors.Load(),
		"unsupported levels": st.UnsupportedSecLevels.Load(), "contexts": st.UnknownContexts.Load(), "PDU handlers": st.UnknownPDUHandlers.Load()}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %d, want %d", k, got[k], w)
		}
	}
	// The counters as a manager reads them.
	resp := exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.GetRequest, oids(".1.3.6.1.6.3.15.1.1.3.0", ".1.3.6.1.6.3.15.1.1.5.0", ".1.3.6.1.6.3.12.1.5.0")...))
	if v := resp.Variables; v[0].Value.(uint) != 2 || v[1].Value.(uint) != 2 || v[2].Value.(uint) != 1 {
		t.Errorf("served counters: %v", v)
	}
}

func TestV3Malformed(t *testing.T) {
	h, _, fails := v3Agent(t)
	st := &h.USM.Stats
	ro := h.USM.user("ro-priv")
	good := v3Msg{user: ro, userName: "ro-priv", level: levelAuthPriv, vbs: oids(sysDescr0)}.to(h).encode(t)
	// The msgFlags byte follows the tag and length 04 01 in msgGlobalData.
	flagsAt := bytes.Index(good, []byte{0x04, 0x01, 0x07}) + 2
	secModelAt := flagsAt + 3
	if flagsAt < 2 || good[secModelAt] != 3 {
		t.Fatalf("no msgFlags in %x", good)
	}
	privOnly := bytes.Clone(good)
	privOnly[flagsAt] = 0x06
	if h.Handle(context.Background(), privOnly, localhost) != nil || st.InvalidMsgs.Load() != 1 {
		t.Error("privacy without authentication")
	}
	otherModel := bytes.Clone(good)
	otherModel[secModelAt] = 2
	if h.Handle(context.Background(), otherModel, localhost) != nil || st.UnknownSecurityModels.Load() != 1 {
		t.Error("security model 2")
	}
	parse := h.Counters.InASNParseErrs.Load()
	for i := 1; i < len(good); i += 7 {
		if h.Handle(context.Background(), good[:i], localhost) != nil {
			t.Errorf("answered a message cut at %d", i)
		}
	}
	// A flipped bit in the ciphertext fails the digest.
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 1
	if r := v3Exchange(t, h, flipped, nil); r == nil || r.reportOID() != usmStatsWrongDigests.Append(0).String() {
		t.Errorf("flipped bit: %+v", r)
	}
	if h.Counters.InASNParseErrs.Load() == parse || fails.Load() != 1 {
		t.Errorf("parse errors %d, authentication failures %d", h.Counters.InASNParseErrs.Load()-parse, fails.Load())
	}
	// gosnmp's client bugs must not crash us: a msgMaxSize below 484.
	small := bytes.Clone(good)
	small[bytes.Index(small, []byte{0x02, 0x03, 0x00, 0xff, 0xe3})+3] = 0
	if h.Handle(context.Background(), small, localhost) != nil {
		t.Error("msgMaxSize 227 answered")
	}
}

func TestV3Set(t *testing.T) {
	h, f, _ := v3Agent(t)
	set := func(name string, level gosnmp.SnmpV3MsgFlags, vb gosnmp.SnmpPDU) *gosnmp.SnmpPacket {
		u := h.USM.user(name)
		r := v3Exchange(t, h, v3Msg{user: u, userName: name, level: level, pdu: gosnmp.SetRequest, vbs: []gosnmp.SnmpPDU{vb}}.to(h).encode(t), u)
		if r == nil || r.pdu.PDUType != gosnmp.GetResponse {
			t.Fatalf("%s set: %+v", name, r)
		}
		return r.pdu
	}
	if p := set("ro-priv", levelAuthPriv, integer(oidEnable, 1)); p.Error != gosnmp.AuthorizationError || f.Settings().Enabled {
		t.Errorf("read-only user: %v", p.Error)
	}
	if h.Counters.InBadCommunityUses.Load() != 0 {
		t.Error("a v3 user counted in snmpInBadCommunityUses")
	}
	if p := set("rw-auth", levelAuth, integer(oidEnable, 1)); p.Error != gosnmp.NoError || !f.Settings().Enabled {
		t.Errorf("read-write user: %v", p.Error)
	}
	// v3 keeps the SNMPv2 error statuses.
	if p := set("rw-aes256", levelAuthPriv, integer(oidMPN, 100)); p.Error != gosnmp.InconsistentValue || p.ErrorIndex != 1 {
		t.Errorf("max-packet-number while enabled: %v %d", p.Error, p.ErrorIndex)
	}
	if p := set("rw-aes256", levelAuthPriv, integer(oidEnable, 2)); p.Error != gosnmp.NoError || f.Settings().Enabled {
		t.Errorf("disable: %v", p.Error)
	}
	// snmpEnableAuthenTraps.
	if p := set("rw-auth", levelAuth, integer(".1.3.6.1.2.1.11.30.0", 2)); p.Error != gosnmp.NoError || h.Counters.EnableAuthenTraps.Load() {
		t.Errorf("snmpEnableAuthenTraps disabled(2): %v", p.Error)
	}
	if p := set("rw-auth", levelAuth, integer(".1.3.6.1.2.1.11.30.0", 3)); p.Error != gosnmp.WrongValue {
		t.Errorf("snmpEnableAuthenTraps 3: %v", p.Error)
	}
	if p := set("rw-auth", levelAuth, integer(".1.3.6.1.2.1.11.30.0", 1)); p.Error != gosnmp.NoError || !h.Counters.EnableAuthenTraps.Load() {
		t.Errorf("snmpEnableAuthenTraps enabled(1): %v", p.Error)
	}
}

func TestV3MIB(t *testing.T) {
	h, _, _ := v3Agent(t)
	h.USM.Engine.Boots = 7
	resp := exchange(t, h, packet(gosnmp.Version2c, "public", gosnmp.GetRequest, oids(".1.3.6.1.6.3.10.2.1.1.0", ".1.3.6.1.6.3.10.2.1.2.0", ".1.3.6.1.6.3.10.2.1.3.0", ".1.3.6.1.6.3.10.2.1.4.0", ".1.3.6.1.2.1.11.30.0")...))
	v := resp.Variables
	if !bytes.Equal(v[0].Value.([]byte), h.USM.Engine.ID) || v[1].Value.(int) != 7 || v[2].Value.(int) > 1 || v[3].Value.(int) != MaxInMessageSize || v[4].Value.(int) != 1 {
		t.Errorf("snmpEngine: %v", v)
	}
	if id := h.USM.Engine.ID; len(id) != 13 || !bytes.Equal(id[:5], []byte{0x80, 0x00, 0xfb, 0x8f, 5}) {
		t.Errorf("engine ID %x", id)
	}
	// All of it walks in order.
	got := walk(t, h, gosnmp.Version2c, "public", ".1.3.6.1.6.3", nil)
	if len(got) != 14 {
		t.Errorf("walked %d SNMPv3 objects: %v", len(got), got)
	}
}

// gosnmp's client (its own key localisation, digests and ciphers, engine
// discovery) against the agent on loopback.
func TestV3GoSNMPClient(t *testing.T) {
	h, _, _ := v3Agent(t)
	addr := serveLoopback(t, h)
	for _, c := range []struct {
		user       string
		auth       gosnmp.SnmpV3AuthProtocol
		authPass   string
		priv       gosnmp.SnmpV3PrivProtocol
		privPass   string
		level      gosnmp.SnmpV3MsgFlags
		wantWalked int
	}{
		{"ro-priv", gosnmp.SHA, "auth-pass-1", gosnmp.AES, "priv-pass-1", gosnmp.AuthPriv, 30},
		{"rw-auth", gosnmp.SHA256, "auth-pass-2", gosnmp.NoPriv, "", gosnmp.AuthNoPriv, 30},
		{"tcp-des", gosnmp.MD5, "auth-pass-3", gosnmp.DES, "priv-pass-3", gosnmp.AuthPriv, 30},
		{"rw-aes256", gosnmp.SHA, "auth-pass-4", gosnmp.AES256, "priv-pass-4", gosnmp.AuthPriv, 30},
		{"sha512", gosnmp.SHA512, "auth-pass-5", gosnmp.NoPriv, "", gosnmp.AuthNoPriv, 30},
	} {
		g := &gosnmp.GoSNMP{Target: addr.Addr().String(), Port: addr.Port(), Version: gosnmp.Version3, Timeout: 2 * time.Second, Retries: 1,
			SecurityModel: gosnmp.UserSecurityModel, MsgFlags: c.level, MaxOids: gosnmp.MaxOids, MaxRepetitions: 20,
			SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: c.user, AuthenticationProtocol: c.auth, AuthenticationPassphrase: c.authPass,
				PrivacyProtocol: c.priv, PrivacyPassphrase: c.privPass}}
		if err := g.Connect(); err != nil {
			t.Fatal(err)
		}
		res, err := g.Get([]string{".1.3.6.1.2.1.6.9.0"})
		if err != nil || res.Error != gosnmp.NoError || res.Variables[0].Value.(uint) != 2 {
			t.Errorf("%s get: %v %+v", c.user, err, res)
		}
		all, err := g.BulkWalkAll(".1.3.6.1.2.1.6")
		if err != nil || len(all) < c.wantWalked {
			t.Errorf("%s bulk walk: %v, %d objects", c.user, err, len(all))
		}
		g.Conn.Close()
	}
}
