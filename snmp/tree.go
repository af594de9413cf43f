package snmp

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"github.com/gosnmp/gosnmp"
)

// Value is a typed SNMP value, as gosnmp marshals it: Integer int,
// OctetString []byte, ObjectIdentifier string, IPAddress string,
// Counter32/Gauge32/TimeTicks uint32, Counter64 uint64; the exceptions
// NoSuchObject, NoSuchInstance and EndOfMibView have no value.
type Value struct {
	Type gosnmp.Asn1BER
	V    any
}

// Value constructors.
func Integer(n int) Value              { return Value{gosnmp.Integer, n} }
func OctetString(b []byte) Value       { return Value{gosnmp.OctetString, b} }
func String(s string) Value            { return Value{gosnmp.OctetString, []byte(s)} }
func Counter32(n uint64) Value         { return Value{gosnmp.Counter32, uint32(n)} }
func Gauge32(n uint64) Value           { return Value{gosnmp.Gauge32, uint32(min(n, 1<<32-1))} }
func TimeTicks(n uint32) Value         { return Value{gosnmp.TimeTicks, n} }
func Counter64(n uint64) Value         { return Value{gosnmp.Counter64, n} }
func ObjectIdentifier(o OID) Value     { return Value{gosnmp.ObjectIdentifier, o.String()} }
func IPAddress(a netip.Addr) Value     { return Value{gosnmp.IPAddress, a.Unmap().String()} }
func exception(t gosnmp.Asn1BER) Value { return Value{Type: t} }

var (
	noSuchObject   = exception(gosnmp.NoSuchObject)
	noSuchInstance = exception(gosnmp.NoSuchInstance)
	endOfMibView   = exception(gosnmp.EndOfMibView)
)

// IsException reports whether v is noSuchObject, noSuchInstance or
// endOfMibView.
func (v Value) IsException() bool {
	return v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance || v.Type == gosnmp.EndOfMibView
}

// Request is the context of one PDU: providers memoize their live rows in
// it, so a get-bulk computes a table once, and set checks see the whole
// PDU.
type Request struct {
	Ctx  context.Context
	memo map[any]any
	// Sets are the varbinds of a set-request, in order.
	Sets []Binding
}

// Binding is a varbind.
type Binding struct {
	OID   OID
	Value Value
}

// NewRequest returns the context of one PDU.
func NewRequest(ctx context.Context) *Request { return &Request{Ctx: ctx, memo: map[any]any{}} }

// Commit applies one validated set varbind. Commits run in ascending
// Order, then in varbind order.
type Commit struct {
	Order int
	Apply func() error
}

// Provider serves a subtree of the MIB (its Root). Providers of one tree
// have disjoint subtrees.
type Provider interface {
	Root() OID
	// Get returns the value of the instance oid (under Root), or
	// noSuchObject / noSuchInstance.
	Get(r *Request, oid OID) Value
	// Next returns the first instance after oid under Root, if any.
	Next(r *Request, oid OID) (OID, Value, bool)
	// Set validates a set of oid (under Root) to v and returns what
	// commits it, or an SNMPv2 error status (gosnmp.NoError when valid).
	Set(r *Request, oid OID, v Value) (Commit, gosnmp.SNMPError)
}

// Tree is the MIB: providers ordered by root.
type Tree struct {
	provs []Provider
}

// Register adds providers; it fails when a subtree overlaps another.
func (t *Tree) Register(ps ...Provider) error {
	for _, p := range ps {
		for _, q := range t.provs {
			if p.Root().HasPrefix(q.Root()) || q.Root().HasPrefix(p.Root()) {
				return fmt.Errorf("snmp: provider at %s overlaps %s", p.Root(), q.Root())
			}
		}
		t.provs = append(t.provs, p)
	}
	sort.Slice(t.provs, func(i, j int) bool { return t.provs[i].Root().Compare(t.provs[j].Root()) < 0 })
	return nil
}

func (t *Tree) owner(oid OID) Provider {
	for _, p := range t.provs {
		if oid.HasPrefix(p.Root()) {
			return p
		}
	}
	return nil
}

// Get returns the value of oid, or noSuchObject / noSuchInstance.
func (t *Tree) Get(r *Request, oid OID) Value {
	if p := t.owner(oid); p != nil {
		return p.Get(r, oid)
	}
	return noSuchObject
}

// Next returns the first instance after oid in the whole tree.
func (t *Tree) Next(r *Request, oid OID) (OID, Value, bool) {
	for _, p := range t.provs {
		root := p.Root()
		// A subtree whose root sorts before oid without containing it
		// holds nothing after oid.
		if root.Compare(oid) < 0 && !oid.HasPrefix(root) {
			continue
		}
		if o, v, ok := p.Next(r, oid); ok {
			return o, v, true
		}
	}
	return nil, Value{}, false
}

// Set validates a set varbind; see [Provider.Set].
func (t *Tree) Set(r *Request, oid OID, v Value) (Commit, gosnmp.SNMPError) {
	p := t.owner(oid)
	if p == nil {
		return Commit{}, gosnmp.NotWritable
	}
	return p.Set(r, oid, v)
}

// Scalar is a scalar object; its only instance is OID.0.
type Scalar struct {
	OID OID
	Get func(r *Request) Value
	// Set validates v and returns its commit; nil: read-only
	// (notWritable).
	Set func(r *Request, v Value) (Commit, gosnmp.SNMPError)
}

func (s *Scalar) instance() OID { return s.OID.Append(0) }

// Provider returns the scalar as a provider.
func (s *Scalar) Provider() Provider { return scalarProvider{s} }

type scalarProvider struct{ s *Scalar }

func (p scalarProvider) Root() OID { return p.s.OID }

func (p scalarProvider) value(r *Request) Value {
	v := p.s.Get(r)
	if v.Type == 0 {
		return noSuchInstance
	}
	return v
}

func (p scalarProvider) Get(r *Request, oid OID) Value {
	if oid.Compare(p.s.instance()) == 0 {
		return p.value(r)
	}
	return noSuchInstance
}

func (p scalarProvider) Next(r *Request, oid OID) (OID, Value, bool) {
	inst := p.s.instance()
	if oid.Compare(inst) >= 0 {
		return nil, Value{}, false
	}
	v := p.value(r)
	if v.IsException() {
		return nil, Value{}, false
	}
	return inst, v, true
}

func (p scalarProvider) Set(r *Request, oid OID, v Value) (Commit, gosnmp.SNMPError) {
	if p.s.Set == nil {
		return Commit{}, gosnmp.NotWritable
	}
	if oid.Compare(p.s.instance()) != 0 {
		// No instance can be created here.
		return Commit{}, gosnmp.NoCreation
	}
	return p.s.Set(r, v)
}

// Row is a table row: its index (the instance suffix of every cell) and
// whatever the columns read.
type Row struct {
	Index OID
	Data  any
}

// Column is an accessible column of a table.
type Column struct {
	ID  uint32
	Get func(row Row) Value
	// Set validates setting the cell of row to v; nil: read-only.
	Set func(r *Request, row Row, v Value) (Commit, gosnmp.SNMPError)
}

// Table is a conceptual table whose rows are computed for each request.
type Table struct {
	Entry   OID      // the entry object, e.g. tcpConnectionEntry
	Columns []Column // ascending ID
	// Rows returns the live rows, in any order.
	Rows func(r *Request) []Row
}

// Provider returns the table as a provider.
func (t *Table) Provider() Provider { return tableProvider{t} }

type tableProvider struct{ t *Table }

func (p tableProvider) Root() OID { return p.t.Entry }

// rows returns the request's rows sorted by index, computed once per
// request. Rows with an index too long for an OID are left out.
func (p tableProvider) rows(r *Request) []Row {
	if v, ok := r.memo[p.t]; ok {
		return v.([]Row)
	}
	all := p.t.Rows(r)
	rows := all[:0:0]
	for _, row := range all {
		if len(p.t.Entry)+1+len(row.Index) <= MaxOIDLen {
			rows = append(rows, row)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Index.Compare(rows[j].Index) < 0 })
	r.memo[p.t] = rows
	return rows
}

func (p tableProvider) column(id uint32) *Column {
	for i := range p.t.Columns {
		if p.t.Columns[i].ID == id {
			return &p.t.Columns[i]
		}
	}
	return nil
}

func (p tableProvider) find(r *Request, oid OID) (*Column, *Row, Value) {
	n := len(p.t.Entry)
	if len(oid) <= n {
		return nil, nil, noSuchObject
	}
	col := p.column(oid[n])
	if col == nil {
		return nil, nil, noSuchObject
	}
	idx := oid[n+1:]
	rows := p.rows(r)
	i := sort.Search(len(rows), func(i int) bool { return rows[i].Index.Compare(idx) >= 0 })
	if i == len(rows) || rows[i].Index.Compare(idx) != 0 {
		return col, nil, noSuchInstance
	}
	return col, &rows[i], Value{}
}

func (p tableProvider) Get(r *Request, oid OID) Value {
	col, row, exc := p.find(r, oid)
	if row == nil {
		return exc
	}
	return col.Get(*row)
}

func (p tableProvider) Next(r *Request, oid OID) (OID, Value, bool) {
	var rows []Row
	for ci := range p.t.Columns {
		col := &p.t.Columns[ci]
		colOID := p.t.Entry.Append(col.ID)
		var start int
		switch {
		case oid.HasPrefix(colOID):
			rest := oid[len(colOID):]
			if rows == nil {
				rows = p.rows(r)
			}
			start = sort.Search(len(rows), func(i int) bool { return rows[i].Index.Compare(rest) > 0 })
		case oid.Compare(colOID) < 0:
			start = 0
		default:
			continue // the whole column sorts before oid
		}
		if rows == nil {
			rows = p.rows(r)
		}
		for i := start; i < len(rows); i++ {
			if v := col.Get(rows[i]); !v.IsException() && v.Type != 0 {
				return colOID.Append(rows[i].Index...), v, true
			}
		}
	}
	return nil, Value{}, false
}

func (p tableProvider) Set(r *Request, oid OID, v Value) (Commit, gosnmp.SNMPError) {
	col, row, exc := p.find(r, oid)
	if col == nil {
		return Commit{}, gosnmp.NotWritable
	}
	if col.Set == nil {
		return Commit{}, gosnmp.NotWritable
	}
	if row == nil {
		_ = exc
		return Commit{}, gosnmp.NoCreation
	}
	return col.Set(r, *row, v)
}
