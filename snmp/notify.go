package snmp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/config"
	"github.com/tcptap/tcptap/record"
)

// Notification OIDs (TCPTAP-MIB.txt).
var (
	tcptapNotifications = TCPTAPMIB.Append(0)
	// abnormalCloseOID is tcptapAbnormalClose.
	abnormalCloseOID    = tcptapNotifications.Append(1)
	tcptapNotifyObjects = tcptapObjects.Append(5)
	notifyAddrTypeOID   = tcptapNotifyObjects.Append(1, 0)
	notifyLocalAddrOID  = tcptapNotifyObjects.Append(2, 0)
	notifyLocalPortOID  = tcptapNotifyObjects.Append(3, 0)
	notifyRemoteAddrOID = tcptapNotifyObjects.Append(4, 0)
	notifyRemotePortOID = tcptapNotifyObjects.Append(5, 0)
	notifyReasonOID     = tcptapNotifyObjects.Append(6, 0)
	// suppressedOID is tcptapNotificationsSuppressed.
	suppressedOID = tcptapStats.Append(12)

	coldStartOID             = MustOID("1.3.6.1.6.3.1.1.5.1")
	authenticationFailureOID = MustOID("1.3.6.1.6.3.1.1.5.5")
	snmpTrapOID              = MustOID("1.3.6.1.6.3.1.1.4.1.0")
	sysUpTimeOID             = system.Append(3, 0)
)

// Rate limit defaults: see [Notifier.Rate].
const (
	DefaultNotifyRate  = config.DefaultNotificationRate
	DefaultNotifyBurst = config.DefaultNotificationBurst
)

// notifyQueue bounds the abnormal closes waiting to be sent.
const notifyQueue = 256

// TrapTarget is one snmp.trap_targets entry:
//
//	[udp:]HOST[:PORT][?OPTIONS]
//
// PORT is 162 by default; IPv6 addresses are written [addr]:port. OPTIONS
// are URL query parameters: version=1|2c|3 (default 2c), community=NAME
// (v1 and v2c; default public), user=NAME (v3, required: one of
// snmp.users), level=noAuthNoPriv|authNoPriv|authPriv (v3; default the
// user's level), inform=true (v2c or v3: an acknowledged inform instead of
// a trap), retries=N (informs; default 3), timeout=DURATION (wait for an
// inform's acknowledgement; default 2s). Examples:
//
//	udp:nms.example.net:10162?version=2c&community=traps&inform=true
//	192.0.2.7?version=3&user=traps&level=authPriv
type TrapTarget struct {
	Address   string // host:port
	Version   gosnmp.SnmpVersion
	Community string
	User      string
	// Level is the v3 security level; with LevelSet false, the user's.
	Level    gosnmp.SnmpV3MsgFlags
	LevelSet bool
	Inform   bool
	Retries  int
	Timeout  time.Duration
}

// ParseTrapTarget parses a snmp.trap_targets entry.
func ParseTrapTarget(s string) (TrapTarget, error) {
	t := TrapTarget{Version: gosnmp.Version2c, Community: "public", Retries: 3, Timeout: 2 * time.Second}
	addr, query, _ := strings.Cut(strings.TrimPrefix(s, "udp:"), "?")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), "162"
	}
	if host == "" {
		return t, fmt.Errorf("trap target %q: want [udp:]HOST[:PORT][?OPTIONS]", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return t, fmt.Errorf("trap target %q: port %q: want 1 to 65535", s, port)
	}
	t.Address = net.JoinHostPort(host, port)
	opts, err := url.ParseQuery(query)
	if err != nil {
		return t, fmt.Errorf("trap target %q: options: %v", s, err)
	}
	for k, vs := range opts {
		v := vs[len(vs)-1]
		switch k {
		case "version":
			switch v {
			case "1":
				t.Version = gosnmp.Version1
			case "2c":
				t.Version = gosnmp.Version2c
			case "3":
				t.Version = gosnmp.Version3
			default:
				return t, fmt.Errorf("trap target %q: version %q: want 1, 2c or 3", s, v)
			}
		case "community":
			t.Community = v
		case "user":
			t.User = v
		case "level":
			switch strings.ToLower(v) {
			case "noauthnopriv":
				t.Level = levelNoAuth
			case "authnopriv":
				t.Level = levelAuth
			case "authpriv":
				t.Level = levelAuthPriv
			default:
				return t, fmt.Errorf("trap target %q: level %q: want noAuthNoPriv, authNoPriv or authPriv", s, v)
			}
			t.LevelSet = true
		case "inform":
			if t.Inform, err = strconv.ParseBool(v); err != nil {
				return t, fmt.Errorf("trap target %q: inform %q: want true or false", s, v)
			}
		case "retries":
			if t.Retries, err = strconv.Atoi(v); err != nil || t.Retries < 0 {
				return t, fmt.Errorf("trap target %q: retries %q: want a number >= 0", s, v)
			}
		case "timeout":
			if t.Timeout, err = time.ParseDuration(v); err != nil || t.Timeout <= 0 {
				return t, fmt.Errorf("trap target %q: timeout %q: want a duration such as 2s", s, v)
			}
		default:
			return t, fmt.Errorf("trap target %q: unknown option %q (version, community, user, level, inform, retries, timeout)", s, k)
		}
	}
	switch {
	case t.Inform && t.Version == gosnmp.Version1:
		return t, fmt.Errorf("trap target %q: inform needs version 2c or 3", s)
	case t.Version == gosnmp.Version3 && t.User == "":
		return t, fmt.Errorf("trap target %q: version 3 needs user=NAME, one of snmp.users", s)
	case t.Version != gosnmp.Version3 && (t.User != "" || t.LevelSet):
		return t, fmt.Errorf("trap target %q: user and level need version=3", s)
	}
	return t, nil
}

// Notifier sends tcptap's notifications to the trap targets: coldStart
// when started, tcptapAbnormalClose for abnormal closes handed to
// [Notifier.AbnormalClose] and authenticationFailure for
// [Notifier.AuthenticationFailure], the last two rate-limited by one token
// bucket. Abnormal closes dropped (rate limit or full queue) are counted
// in tcptapNotificationsSuppressed.
type Notifier struct {
	// Targets are replaced whole under targetsMu once running
	// (SetTargets).
	Targets   []TrapTarget
	targetsMu sync.RWMutex
	// Rate is the notifications per second beyond bursts of Burst; 0:
	// DefaultNotifyRate and DefaultNotifyBurst.
	Rate  float64
	Burst int
	Start time.Time // sysUpTime counts from it
	Log   *slog.Logger
	// USM signs v3 notifications: ours is the authoritative engine of v3
	// traps (RFC 3412 §6.4).
	USM *USM

	once           sync.Once
	queue          chan record.Record
	authPending    chan struct{}
	suppressed     atomic.Uint64
	authSuppressed atomic.Uint64
	tokens         float64
	last           time.Time
	requestID      atomic.Uint32
}

// NewNotifier parses the trap targets (v1 and v2c); nil when there are
// none.
func NewNotifier(targets []string, start time.Time, log *slog.Logger) (*Notifier, error) {
	return NewNotifierUSM(targets, nil, start, log)
}

// NewNotifierUSM parses the trap targets, whose v3 users are usm's; nil
// when there are none.
func NewNotifierUSM(targets []string, usm *USM, start time.Time, log *slog.Logger) (*Notifier, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	n := &Notifier{Start: start, Log: log, USM: usm}
	for i, s := range targets {
		t, err := ParseTrapTarget(s)
		if err != nil {
			return nil, fmt.Errorf("snmp.trap_targets[%d]: %w", i, err)
		}
		if t.Version == gosnmp.Version3 {
			var u *usmUser
			if usm != nil {
				u = usm.user(t.User)
			}
			if u == nil {
				return nil, fmt.Errorf("snmp.trap_targets[%d]: user %q: not in snmp.users", i, t.User)
			}
			if !t.LevelSet {
				t.Level = u.level()
			}
			if t.Level > u.level() {
				return nil, fmt.Errorf("snmp.trap_targets[%d]: level %s: user %q has no key for it (its level is %s)", i, levelName(t.Level), t.User, levelName(u.level()))
			}
		}
		n.Targets = append(n.Targets, t)
	}
	return n, nil
}

func (n *Notifier) init() {
	n.once.Do(func() {
		n.queue = make(chan record.Record, notifyQueue)
		n.authPending = make(chan struct{}, 1)
	})
}

// Suppressed returns the abnormal-close notifications not sent.
func (n *Notifier) Suppressed() uint64 { return n.suppressed.Load() }

// AuthFailuresSuppressed returns the authentication failures not
// notified: beyond the rate limit, or while one was waiting to be sent.
func (n *Notifier) AuthFailuresSuppressed() uint64 { return n.authSuppressed.Load() }

// Provider serves tcptapNotificationsSuppressed.
func (n *Notifier) Provider() Provider {
	return (&Scalar{OID: suppressedOID, Get: func(*Request) Value { return Counter64(n.Suppressed()) }}).Provider()
}

// AbnormalClose queues a notification of rec if it closed abnormally,
// never blocking: when the queue is full it is dropped and counted.
func (n *Notifier) AbnormalClose(rec *record.Record) {
	if n == nil || !rec.Reason.Abnormal() {
		return
	}
	n.init()
	select {
	case n.queue <- *rec:
	default:
		n.suppressed.Add(1)
	}
}

// AuthenticationFailure asks for an authenticationFailure notification,
// never blocking. Failures arriving while one is pending are counted,
// not queued, so a flood of bad requests costs no memory and never
// crowds out abnormal closes.
func (n *Notifier) AuthenticationFailure() {
	if n == nil {
		return
	}
	n.init()
	select {
	case n.authPending <- struct{}{}:
	default:
		n.authSuppressed.Add(1)
	}
}

// allow takes a token from the bucket.
func (n *Notifier) allow(now time.Time) bool {
	rate, burst := n.Rate, float64(n.Burst)
	if rate <= 0 {
		rate = DefaultNotifyRate
	}
	if burst < 1 {
		burst = DefaultNotifyBurst
	}
	if n.last.IsZero() {
		n.tokens = burst
	} else {
		n.tokens = min(burst, n.tokens+now.Sub(n.last).Seconds()*rate)
	}
	n.last = now
	if n.tokens < 1 {
		return false
	}
	n.tokens--
	return true
}

// Run sends coldStart, then the queued notifications, until ctx is done.
func (n *Notifier) Run(ctx context.Context) {
	n.init()
	n.Send(coldStartOID, nil)
	for {
		select {
		case <-ctx.Done():
			return
		case rec := <-n.queue:
			if !n.allow(time.Now()) {
				n.suppressed.Add(1)
				continue
			}
			n.Send(abnormalCloseOID, abnormalCloseVars(&rec))
		case <-n.authPending:
			if !n.allow(time.Now()) {
				n.authSuppressed.Add(1)
				continue
			}
			n.Send(authenticationFailureOID, nil)
		}
	}
}

func abnormalCloseVars(rec *record.Record) []gosnmp.SnmpPDU {
	l, r := ends(rec)
	pdu := func(o OID, v Value) gosnmp.SnmpPDU { return gosnmp.SnmpPDU{Name: o.String(), Type: v.Type, Value: v.V} }
	return []gosnmp.SnmpPDU{
		pdu(notifyAddrTypeOID, Integer(inetType(rec))),
		pdu(notifyLocalAddrOID, OctetString(l.Addr().Unmap().AsSlice())),
		pdu(notifyLocalPortOID, Gauge32(uint64(l.Port()))),
		pdu(notifyRemoteAddrOID, OctetString(r.Addr().Unmap().AsSlice())),
		pdu(notifyRemotePortOID, Gauge32(uint64(r.Port()))),
		pdu(notifyReasonOID, String(string(rec.Reason))),
	}
}

// Send sends notification oid with vars to every target, returning the
// first error (an inform not acknowledged after its retries, among
// others); errors are logged too.
func (n *Notifier) Send(oid OID, vars []gosnmp.SnmpPDU) error {
	var first error
	n.targetsMu.RLock()
	targets := n.Targets
	n.targetsMu.RUnlock()
	for _, t := range targets {
		if err := n.sendTo(t, oid, vars); err != nil {
			if n.Log != nil {
				n.Log.Warn("SNMP notification", "target", t.Address, "notification", oid.String(), "err", err)
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

func (n *Notifier) sendTo(t TrapTarget, oid OID, vars []gosnmp.SnmpPDU) error {
	up := uptime(n.Start)
	// SNMPv2 notifications start with sysUpTime.0 and snmpTrapOID.0
	// (RFC 3416 §4.2.6).
	v2vars := append([]gosnmp.SnmpPDU{
		{Name: sysUpTimeOID.String(), Type: gosnmp.TimeTicks, Value: up},
		{Name: snmpTrapOID.String(), Type: gosnmp.ObjectIdentifier, Value: oid.String()},
	}, vars...)
	if t.Version == gosnmp.Version3 && !t.Inform {
		return n.sendV3Trap(t, v2vars)
	}
	host, port, _ := net.SplitHostPort(t.Address)
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Transport: "udp", Community: t.Community,
		Version: t.Version, Timeout: t.Timeout, Retries: t.Retries, MaxOids: gosnmp.MaxOids}
	if !t.Inform {
		g.Retries = 0
	}
	if t.Version == gosnmp.Version3 {
		// An inform's receiver is the authoritative engine: gosnmp
		// discovers it and localises the keys from the passwords.
		u := n.USM.user(t.User)
		sp := &gosnmp.UsmSecurityParameters{UserName: u.name, AuthenticationProtocol: gosnmp.NoAuth, PrivacyProtocol: gosnmp.NoPriv}
		if t.Level&levelAuth != 0 {
			sp.AuthenticationProtocol, sp.AuthenticationPassphrase = u.auth.id, u.authPass
		}
		if t.Level == levelAuthPriv {
			sp.PrivacyProtocol, sp.PrivacyPassphrase = u.priv.id, u.privPass
		}
		g.SecurityModel, g.MsgFlags, g.SecurityParameters = gosnmp.UserSecurityModel, t.Level, sp
	}
	if err := g.Connect(); err != nil {
		return err
	}
	defer g.Conn.Close()
	trap := gosnmp.SnmpTrap{IsInform: t.Inform, Variables: v2vars}
	if t.Version == gosnmp.Version1 {
		// RFC 3584 §3.2: a standard trap maps to a generic trap, an
		// enterprise one to enterprise = the OID without its last two
		// subidentifiers (…0.N), specific = N.
		trap.Variables = vars
		trap.Timestamp = uint(up)
		trap.AgentAddress = "0.0.0.0"
		if la, ok := g.Conn.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
			trap.AgentAddress = la.IP.String()
		}
		last := oid[len(oid)-1]
		if len(oid) > 2 && oid[len(oid)-2] == 0 {
			trap.Enterprise = oid[:len(oid)-2].String()
			trap.GenericTrap, trap.SpecificTrap = 6, int(last)
		} else {
			trap.Enterprise = SysObjectID.String()
			trap.GenericTrap = int(last) - 1
		}
	}
	resp, err := g.SendTrap(trap)
	if err != nil {
		return err
	}
	if t.Inform && (resp == nil || resp.Error != gosnmp.NoError) {
		return fmt.Errorf("inform not acknowledged")
	}
	return nil
}

// sendV3Trap sends an SNMPv3 trap from our engine, the authoritative one
// (RFC 3412 §6.4): the receiver knows the user's keys localised to our
// engine ID and takes our boots and time.
func (n *Notifier) sendV3Trap(t TrapTarget, vars []gosnmp.SnmpPDU) error {
	u := n.USM.user(t.User)
	p := n.USM.packet(u, u.name, t.Level, n.USM.nextMsgID())
	p.PDUType, p.RequestID, p.Variables = gosnmp.SNMPv2Trap, n.requestID.Add(1)&0x7fffffff, vars
	msg, err := p.MarshalMsg()
	if err != nil {
		return err
	}
	c, err := net.Dial("udp", t.Address)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(msg)
	return err
}

// SetTargets replaces the trap targets with from's (a Notifier built by
// NewNotifierUSM; nil: none), as a reload does.
func (n *Notifier) SetTargets(from *Notifier) {
	var targets []TrapTarget
	if from != nil {
		targets = from.Targets
	}
	n.targetsMu.Lock()
	n.Targets = targets
	n.targetsMu.Unlock()
}
