package snmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/config"
)

// Message sizes. There is no msgMaxSize in SNMPv1/v2c: the agent answers
// within what one unfragmented UDP datagram carries on Ethernet (1500 − 20
// − 8 = 1472 bytes). 484 bytes is what every SNMP entity must accept (RFC
// 3417 §3); MaxMessageSize is never set below it.
const (
	DefaultMaxMessageSize = 1472
	MinMaxMessageSize     = 484
)

// MaxBulkVarbinds clamps get-bulk: non-repeaters + repetitions × repeaters
// never exceed it (net-snmp's default maxGetbulkResponses).
const MaxBulkVarbinds = 100

// Counters are the SNMPv2-MIB snmp group (RFC 3418): the agent's counters
// and snmpEnableAuthenTraps.
type Counters struct {
	InPkts              atomic.Uint64 // messages delivered to the agent
	InBadVersions       atomic.Uint64 // messages of an unsupported version
	InBadCommunityNames atomic.Uint64 // unknown community, or a source outside its prefixes
	InBadCommunityUses  atomic.Uint64 // an operation the community may not do (set with ro)
	InASNParseErrs      atomic.Uint64 // messages that failed to decode
	SilentDrops         atomic.Uint64 // responses too big even as tooBig with no varbinds
	ProxyDrops          atomic.Uint64 // always 0: tcptap is no proxy
	OutPkts             atomic.Uint64 // responses sent
	// EnableAuthenTraps is snmpEnableAuthenTraps: whether authentication
	// failures are notified (snmp.authentication_traps; writable).
	EnableAuthenTraps atomic.Bool
}

// Community is a parsed config.Community.
type Community struct {
	Name string
	// Label names the community in the audit log without its name (a
	// v1/v2c community is a password): snmp.communities[1].
	Label   string
	Write   bool
	View    *View // nil: everything
	Sources []netip.Prefix
}

// View is a MIB view: an OID is in it when an included subtree holds it
// and no excluded subtree does.
type View struct {
	Included, Excluded []OID
}

// Contains reports whether oid is in the view (a nil view holds
// everything).
func (v *View) Contains(oid OID) bool {
	if v == nil {
		return true
	}
	for _, e := range v.Excluded {
		if oid.HasPrefix(e) {
			return false
		}
	}
	for _, in := range v.Included {
		if oid.HasPrefix(in) {
			return true
		}
	}
	return false
}

// Handler answers SNMP messages from a [Tree].
type Handler struct {
	Tree        *Tree
	Communities []Community
	// USM is SNMPv3's security: the engine and the users.
	USM *USM
	// MaxMessageSize bounds responses; 0: DefaultMaxMessageSize.
	MaxMessageSize int
	Counters       Counters
	// OnAuthFailure, if set, is called for each authentication failure
	// while snmpEnableAuthenTraps is enabled: an unknown community or one
	// used from outside its sources, an unknown SNMPv3 user, a wrong
	// digest, a message that does not decrypt. It must not block.
	OnAuthFailure func()
	Log           *slog.Logger

	comMu sync.RWMutex // guards Communities once serving (SetCommunities)
}

// parseViews parses snmp.views by name.
func parseViews(cfg config.SNMP) (map[string]*View, error) {
	views := map[string]*View{}
	for _, v := range cfg.Views {
		w := &View{}
		for _, s := range v.Included {
			o, err := ParseOID(s)
			if err != nil {
				return nil, fmt.Errorf("snmp.views %s: %w", v.Name, err)
			}
			w.Included = append(w.Included, o)
		}
		for _, s := range v.Excluded {
			o, err := ParseOID(s)
			if err != nil {
				return nil, fmt.Errorf("snmp.views %s: %w", v.Name, err)
			}
			w.Excluded = append(w.Excluded, o)
		}
		views[v.Name] = w
	}
	return views, nil
}

// Communities parses the configured communities and views (config has
// validated them).
func Communities(cfg config.SNMP) ([]Community, error) {
	views, err := parseViews(cfg)
	if err != nil {
		return nil, err
	}
	var out []Community
	for _, c := range cfg.Communities {
		if len(c.Name) > 255 {
			return nil, fmt.Errorf("snmp.communities %q: longer than 255 bytes", c.Name)
		}
		k := Community{Name: c.Name, Write: c.Access == "rw", Label: fmt.Sprintf("snmp.communities[%d]", len(out))}
		if c.View != "" {
			k.View = views[c.View]
			if k.View == nil {
				return nil, fmt.Errorf("snmp.communities %s: no view %q in snmp.views", c.Name, c.View)
			}
		}
		for _, s := range c.Sources {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, err2 := netip.ParseAddr(s)
				if err2 != nil {
					return nil, fmt.Errorf("snmp.communities %s: source %q: %w", c.Name, s, err)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			k.Sources = append(k.Sources, p.Masked())
		}
		out = append(out, k)
	}
	return out, nil
}

func (h *Handler) maxSize() int {
	if h.MaxMessageSize == 0 {
		return DefaultMaxMessageSize
	}
	return max(h.MaxMessageSize, MinMaxMessageSize)
}

func (h *Handler) community(name string, from netip.Addr) *Community {
	from = from.Unmap()
	h.comMu.RLock()
	coms := h.Communities
	h.comMu.RUnlock()
	for i := range coms {
		c := &coms[i]
		if c.Name != name {
			continue
		}
		if len(c.Sources) == 0 {
			return c
		}
		for _, p := range c.Sources {
			if p.Contains(from) {
				return c
			}
		}
		return nil
	}
	return nil
}

// peekVersion reads the version of an SNMP message: SEQUENCE { INTEGER
// version, ... }.
func peekVersion(msg []byte) (int, bool) {
	if len(msg) < 2 || msg[0] != 0x30 {
		return 0, false
	}
	i := 2
	if msg[1]&0x80 != 0 {
		n := int(msg[1] & 0x7f)
		if n == 0 || n > 4 {
			return 0, false
		}
		i += n
	}
	if len(msg) < i+3 || msg[i] != 0x02 || msg[i+1] != 1 {
		return 0, false
	}
	return int(msg[i+2]), true
}

var errDecode = errors.New("undecodable message")

func decode(msg []byte) (p *gosnmp.SnmpPacket, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: %v", errDecode, r)
		}
	}()
	g := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Logger: gosnmp.NewLogger(nil)}
	return g.SnmpDecodePacket(msg)
}

// Handle answers one message from the address from; nil: no answer (the
// message is dropped and counted).
func (h *Handler) Handle(ctx context.Context, msg []byte, from netip.Addr) []byte {
	h.Counters.InPkts.Add(1)
	ver, ok := peekVersion(msg)
	if !ok {
		h.Counters.InASNParseErrs.Add(1)
		return nil
	}
	switch ver {
	case int(gosnmp.Version1), int(gosnmp.Version2c):
	case int(gosnmp.Version3):
		if h.USM != nil {
			return h.handleV3(withSource(ctx, from), msg)
		}
		fallthrough
	default:
		h.Counters.InBadVersions.Add(1)
		return nil
	}
	req, err := decode(msg)
	if err != nil || req == nil {
		h.Counters.InASNParseErrs.Add(1)
		return nil
	}
	com := h.community(req.Community, from)
	if com == nil {
		h.Counters.InBadCommunityNames.Add(1)
		h.authFailure("bad community", "from", from)
		return nil
	}
	resp := &gosnmp.SnmpPacket{
		Version:   req.Version,
		Community: req.Community,
		PDUType:   gosnmp.GetResponse,
		RequestID: req.RequestID,
	}
	ctx = withActor(ctx, "via", "snmp", "community", com.Label, "source", from.Unmap().String())
	bulk, ok := h.serve(ctx, req, com, req.Version == gosnmp.Version1, resp)
	if !ok {
		return nil
	}
	return h.send(resp, bulk, h.maxSize())
}

// serve answers the PDU of req with the access of com into resp, whose
// message fields are set; false: no answer.
func (h *Handler) serve(ctx context.Context, req *gosnmp.SnmpPacket, com *Community, v1 bool, resp *gosnmp.SnmpPacket) (bulk, ok bool) {
	vbs := make([]Binding, len(req.Variables))
	for i, pdu := range req.Variables {
		o, err := ParseOID(pdu.Name)
		if err != nil {
			h.Counters.InASNParseErrs.Add(1)
			return false, false
		}
		vbs[i] = Binding{OID: o, Value: Value{pdu.Type, pdu.Value}}
	}
	r := NewRequest(ctx)
	switch req.PDUType {
	case gosnmp.GetRequest:
		h.get(r, com, v1, vbs, resp)
	case gosnmp.GetNextRequest:
		h.getNext(r, com, v1, vbs, resp)
	case gosnmp.GetBulkRequest:
		if v1 {
			h.Counters.InASNParseErrs.Add(1) // no such PDU in SNMPv1 (RFC 3584 §4.1)
			return false, false
		}
		h.getBulk(r, com, vbs, int(req.NonRepeaters), int(req.MaxRepetitions), resp)
		return true, true
	case gosnmp.SetRequest:
		h.set(r, com, v1, vbs, resp)
	default:
		return false, false // responses, traps, informs, reports: not for an agent
	}
	return false, true
}

// send encodes resp within limit (see [Handler.marshal]) and counts it.
func (h *Handler) send(resp *gosnmp.SnmpPacket, bulk bool, limit int) []byte {
	out := h.marshal(resp, bulk, limit)
	if out != nil {
		h.Counters.OutPkts.Add(1)
	}
	return out
}

func (h *Handler) debug(msg string, args ...any) {
	if h.Log != nil {
		h.Log.Debug("snmp: "+msg, args...)
	}
}

// marshal encodes resp within limit bytes: get-bulk drops trailing
// varbinds; anything else turns into tooBig with no varbinds. SNMPv3
// responses are authenticated and encrypted by the encoder, so the limit
// holds for what is sent.
func (h *Handler) marshal(resp *gosnmp.SnmpPacket, bulk bool, limit int) []byte {
	out, err := resp.MarshalMsg()
	if err == nil && len(out) <= limit {
		return out
	}
	if err != nil {
		h.debug("marshal", "err", err)
	}
	if bulk && err == nil {
		all := resp.Variables
		// The largest prefix of the varbinds that fits.
		n := sort.Search(len(all), func(n int) bool {
			resp.Variables = all[:n+1]
			b, err := resp.MarshalMsg()
			return err != nil || len(b) > limit
		})
		resp.Variables = all[:n]
		if out, err = resp.MarshalMsg(); err == nil && len(out) <= limit {
			return out
		}
	}
	resp.Error, resp.ErrorIndex, resp.Variables = gosnmp.TooBig, 0, nil
	if out, err = resp.MarshalMsg(); err == nil && len(out) <= limit {
		return out
	}
	h.Counters.SilentDrops.Add(1)
	return nil
}

func pdus(vbs []Binding) []gosnmp.SnmpPDU {
	out := make([]gosnmp.SnmpPDU, len(vbs))
	for i, b := range vbs {
		out[i] = gosnmp.SnmpPDU{Name: b.OID.String(), Type: b.Value.Type, Value: b.Value.V}
	}
	return out
}

// v1Error is the SNMPv1 error status of an SNMPv2 one (RFC 3584 §4.4).
func v1Error(e gosnmp.SNMPError) gosnmp.SNMPError {
	switch e {
	case gosnmp.NoError, gosnmp.TooBig, gosnmp.NoSuchName, gosnmp.BadValue, gosnmp.ReadOnly, gosnmp.GenErr:
		return e
	case gosnmp.WrongValue, gosnmp.WrongEncoding, gosnmp.WrongType, gosnmp.WrongLength, gosnmp.InconsistentValue:
		return gosnmp.BadValue
	case gosnmp.NoAccess, gosnmp.NotWritable, gosnmp.NoCreation, gosnmp.InconsistentName, gosnmp.AuthorizationError:
		return gosnmp.NoSuchName
	default: // resourceUnavailable, commitFailed, undoFailed
		return gosnmp.GenErr
	}
}

// fail sets an error response: the request's varbinds, the status and
// the 1-based index.
func fail(resp *gosnmp.SnmpPacket, v1 bool, vbs []Binding, st gosnmp.SNMPError, i int) {
	if v1 {
		st = v1Error(st)
	}
	resp.Error = st
	resp.ErrorIndex = uint8(min(i+1, 255))
	resp.Variables = pdus(vbs)
}

func (h *Handler) get(r *Request, com *Community, v1 bool, vbs []Binding, resp *gosnmp.SnmpPacket) {
	out := make([]Binding, len(vbs))
	for i, b := range vbs {
		v := noSuchObject
		if com.View.Contains(b.OID) {
			v = h.Tree.Get(r, b.OID)
		}
		if v1 && (v.IsException() || v.Type == gosnmp.Counter64) {
			fail(resp, v1, vbs, gosnmp.NoSuchName, i)
			return
		}
		out[i] = Binding{b.OID, v}
	}
	resp.Variables = pdus(out)
}

// next returns the first instance after oid in the community's view; in
// SNMPv1 Counter64 objects are skipped (RFC 3584 §4.2.2.1).
func (h *Handler) next(r *Request, com *Community, v1 bool, oid OID) (Binding, bool) {
	for {
		o, v, ok := h.Tree.Next(r, oid)
		if !ok {
			return Binding{}, false
		}
		if com.View.Contains(o) && !(v1 && v.Type == gosnmp.Counter64) {
			return Binding{o, v}, true
		}
		oid = o
	}
}

func (h *Handler) getNext(r *Request, com *Community, v1 bool, vbs []Binding, resp *gosnmp.SnmpPacket) {
	out := make([]Binding, len(vbs))
	for i, b := range vbs {
		n, ok := h.next(r, com, v1, b.OID)
		if !ok {
			if v1 {
				fail(resp, v1, vbs, gosnmp.NoSuchName, i)
				return
			}
			n = Binding{b.OID, endOfMibView}
		}
		out[i] = n
	}
	resp.Variables = pdus(out)
}

// getBulk follows RFC 3416 §4.2.3, with repetitions clamped so at most
// MaxBulkVarbinds are returned; marshal truncates to fit.
func (h *Handler) getBulk(r *Request, com *Community, vbs []Binding, nonRep, maxRep int, resp *gosnmp.SnmpPacket) {
	n := min(max(nonRep, 0), len(vbs))
	m := len(vbs) - n
	reps := max(maxRep, 0)
	if m == 0 {
		reps = 0
	} else if n+m*reps > MaxBulkVarbinds {
		reps = max(MaxBulkVarbinds-n, 0) / m
	}
	var out []Binding
	for _, b := range vbs[:min(n, MaxBulkVarbinds)] {
		nb, ok := h.next(r, com, false, b.OID)
		if !ok {
			nb = Binding{b.OID, endOfMibView}
		}
		out = append(out, nb)
	}
	cur := make([]Binding, m)
	copy(cur, vbs[n:])
	ended := make([]bool, m)
	for rep := 0; rep < reps; rep++ {
		all := true
		for j := range cur {
			if !ended[j] {
				nb, ok := h.next(r, com, false, cur[j].OID)
				if ok {
					cur[j] = nb
				} else {
					cur[j].Value, ended[j] = endOfMibView, true
				}
			}
			all = all && ended[j]
			out = append(out, cur[j])
		}
		if all {
			break // further repetitions would only repeat endOfMibView
		}
	}
	resp.Variables = pdus(out)
}

func (h *Handler) set(r *Request, com *Community, v1 bool, vbs []Binding, resp *gosnmp.SnmpPacket) {
	if len(vbs) > 255 {
		resp.Error, resp.ErrorIndex = gosnmp.TooBig, 0
		return
	}
	r.Sets = vbs
	commits := make([]Commit, len(vbs))
	for i, b := range vbs {
		if !com.Write || !com.View.Contains(b.OID) {
			if !com.Write {
				h.Counters.InBadCommunityUses.Add(1)
			}
			fail(resp, v1, vbs, gosnmp.NoAccess, i)
			return
		}
		c, st := h.Tree.Set(r, b.OID, b.Value)
		if st != gosnmp.NoError {
			fail(resp, v1, vbs, st, i)
			return
		}
		commits[i] = c
	}
	order := make([]int, len(vbs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return commits[order[a]].Order < commits[order[b]].Order })
	for _, i := range order {
		if commits[i].Apply == nil {
			continue
		}
		if err := commits[i].Apply(); err != nil {
			h.debug("set commit", "oid", vbs[i].OID.String(), "err", err)
			h.auditSet(r, vbs, err)
			fail(resp, v1, vbs, gosnmp.CommitFailed, i)
			return
		}
	}
	h.auditSet(r, vbs, nil)
	resp.Variables = pdus(vbs)
}
