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

	"github.com/tcptap/tcptap/exporter"
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

	coldStartOID = MustOID("1.3.6.1.6.3.1.1.5.1")
	snmpTrapOID  = MustOID("1.3.6.1.6.3.1.1.4.1.0")
	sysUpTimeOID = system.Append(3, 0)
)

// DefaultNotifyRate is the default rate limit of abnormal-close
// notifications, per second (bursts of as many).
const DefaultNotifyRate = 10

// notifyQueue bounds the abnormal closes waiting to be sent.
const notifyQueue = 256

// TrapTarget is one snmp.trap_targets entry:
//
//	[udp:]HOST[:PORT][?OPTIONS]
//
// PORT is 162 by default; IPv6 addresses are written [addr]:port. OPTIONS
// are URL query parameters: version=1|2c (default 2c), community=NAME
// (default public), inform=true (v2c only: an acknowledged inform instead
// of a trap), retries=N (informs; default 3), timeout=DURATION (wait for
// an inform's acknowledgement; default 2s). Example:
//
//	udp:nms.example.net:10162?version=2c&community=traps&inform=true
type TrapTarget struct {
	Address   string // host:port
	Version   gosnmp.SnmpVersion
	Community string
	Inform    bool
	Retries   int
	Timeout   time.Duration
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
			default:
				return t, fmt.Errorf("trap target %q: version %q: want 1 or 2c (v3 is not supported yet)", s, v)
			}
		case "community":
			t.Community = v
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
			return t, fmt.Errorf("trap target %q: unknown option %q (version, community, inform, retries, timeout)", s, k)
		}
	}
	if t.Inform && t.Version != gosnmp.Version2c {
		return t, fmt.Errorf("trap target %q: inform needs version 2c", s)
	}
	return t, nil
}

// Notifier sends tcptap's notifications to the trap targets: coldStart
// when started, tcptapAbnormalClose for abnormal closes handed to
// [Notifier.AbnormalClose], rate-limited by a token bucket; those dropped
// (rate limit or full queue) are counted in tcptapNotificationsSuppressed.
type Notifier struct {
	Targets []TrapTarget
	// Rate is the abnormal-close notifications per second (bursts of
	// as many); 0: DefaultNotifyRate.
	Rate  float64
	Start time.Time // sysUpTime counts from it
	Log   *slog.Logger

	once       sync.Once
	queue      chan exporter.Record
	suppressed atomic.Uint64
	tokens     float64
	last       time.Time
}

// NewNotifier parses the trap targets; nil when there are none.
func NewNotifier(targets []string, start time.Time, log *slog.Logger) (*Notifier, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	n := &Notifier{Start: start, Log: log}
	for _, s := range targets {
		t, err := ParseTrapTarget(s)
		if err != nil {
			return nil, err
		}
		n.Targets = append(n.Targets, t)
	}
	return n, nil
}

func (n *Notifier) init() {
	n.once.Do(func() { n.queue = make(chan exporter.Record, notifyQueue) })
}

// Suppressed returns the abnormal-close notifications not sent.
func (n *Notifier) Suppressed() uint64 { return n.suppressed.Load() }

// Provider serves tcptapNotificationsSuppressed.
func (n *Notifier) Provider() Provider {
	return (&Scalar{OID: suppressedOID, Get: func(*Request) Value { return Counter64(n.Suppressed()) }}).Provider()
}

// AbnormalClose queues a notification of rec if it closed abnormally,
// never blocking: when the queue is full it is dropped and counted.
func (n *Notifier) AbnormalClose(rec *exporter.Record) {
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

// allow takes a token from the bucket.
func (n *Notifier) allow(now time.Time) bool {
	rate := n.Rate
	if rate <= 0 {
		rate = DefaultNotifyRate
	}
	if n.last.IsZero() {
		n.tokens = rate
	} else {
		n.tokens = min(rate, n.tokens+now.Sub(n.last).Seconds()*rate)
	}
	n.last = now
	if n.tokens < 1 {
		return false
	}
	n.tokens--
	return true
}

// Run sends coldStart, then the queued abnormal closes, until ctx is done.
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
		}
	}
}

func abnormalCloseVars(rec *exporter.Record) []gosnmp.SnmpPDU {
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
	for _, t := range n.Targets {
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
	host, port, _ := net.SplitHostPort(t.Address)
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Transport: "udp", Community: t.Community,
		Version: t.Version, Timeout: t.Timeout, Retries: t.Retries, MaxOids: gosnmp.MaxOids}
	if !t.Inform {
		g.Retries = 0
	}
	if err := g.Connect(); err != nil {
		return err
	}
	defer g.Conn.Close()
	up := uptime(n.Start)
	trap := gosnmp.SnmpTrap{IsInform: t.Inform}
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
	} else {
		trap.Variables = append([]gosnmp.SnmpPDU{
			{Name: sysUpTimeOID.String(), Type: gosnmp.TimeTicks, Value: up},
			{Name: snmpTrapOID.String(), Type: gosnmp.ObjectIdentifier, Value: oid.String()},
		}, vars...)
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
