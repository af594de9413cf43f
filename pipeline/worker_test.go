package pipeline

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// conversation is a connection a local client opens, sends one request
// on, and the server resets: SYN, SYN-ACK, ACK, data, RST.
func conversation(ts int64) []*capture.Packet {
	const c, s = "10.0.0.1:40000", "192.0.2.1:80"
	ps := []*capture.Packet{
		segment(c, s, capture.FlagSYN, ts),
		segment(s, c, capture.FlagSYN|capture.FlagACK, ts+1e6),
		segment(c, s, capture.FlagACK, ts+2e6),
		segment(c, s, capture.FlagACK|capture.FlagPSH, ts+3e6),
		segment(s, c, capture.FlagRST|capture.FlagACK, ts+4e6),
	}
	ps[0].Seq = 100
	ps[1].Seq, ps[1].Ack = 500, 101
	ps[2].Seq, ps[2].Ack = 101, 501
	ps[3].Seq, ps[3].Ack, ps[3].PayloadLen = 101, 501, 10
	ps[4].Seq, ps[4].Ack = 501, 111
	for _, p := range ps {
		p.Window, p.Options.WScale = 1000, -1
		p.IPLen = 40 + p.PayloadLen
	}
	return ps
}

// TestWorkerFinishes runs one connection through a worker and checks every
// step downstream of the table: the delivered record, the counters by
// reason, the open, the cache entry with its flight recorder, and the
// published snapshot.
func TestWorkerFinishes(t *testing.T) {
	quota := flightrec.NewQuota(1 << 20)
	c := cache.New(cache.All, quota)
	var got []record.Record
	cls := classifier.New(classifier.Config{LocalNets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	w := New(Config{
		Index: 0, Total: 1, Table: reassembly.Config{CloseLinger: -1}, Classifier: cls,
		Trace: flightrec.Config{Enabled: true, MaxPacketNumber: 100}, Quota: quota, Cache: c,
		Fleet:     &record.Fleet{Sensor: "s1"},
		Interface: func(*reassembly.Conn) string { return "eth9" },
		Deliver:   func(r *record.Record) { got = append(got, *r) },
	})
	for _, p := range conversation(1e9) {
		w.Segment(p, nil)
	}
	w.Table().Flush(10e9)
	if len(got) != 1 {
		t.Fatalf("%d records delivered, want 1", len(got))
	}
	r := got[0]
	if r.Reason != classifier.ReceivedReset || r.Interface != "eth9" || r.Sensor != "s1" || r.UID == "" {
		t.Errorf("record: reason %s interface %q sensor %q uid %q; want RR on eth9 from s1 with a uid", r.Reason, r.Interface, r.Sensor, r.UID)
	}
	var s metrics.Worker
	w.Publish(&s)
	pub := w.Published()
	if pub.Conns.Closed[metrics.ReasonIndex(classifier.ReceivedReset)] != 1 {
		t.Errorf("closed by reason %v: want one RR", pub.Conns.Closed)
	}
	if pub.Opens.Active != 1 || pub.Table.Finalized != 1 || pub.Table.Packets != 5 || pub.Active != 0 {
		t.Errorf("published opens %+v, finalized %d, packets %d, active %d; want 1 active open, 1 finalized, 5 packets, none held",
			pub.Opens, pub.Table.Finalized, pub.Table.Packets, pub.Active)
	}
	es := c.Entries(nil)
	if len(es) != 1 || es[0].Record.ID != r.ID || len(es[0].Packets()) != 5 {
		t.Fatalf("cache holds %d entries, want the connection with its 5 packets", len(es))
	}
}

// TestSegmentDoesNotAllocate: the pipeline's per-packet step (the table's
// update and the handshake count) allocates nothing once the connection
// exists.
func TestSegmentDoesNotAllocate(t *testing.T) {
	w := New(Config{Index: 0, Total: 1, Table: reassembly.DefaultConfig(), Classifier: classifier.New(classifier.Config{}),
		Interface: func(*reassembly.Conn) string { return "" }})
	ps := conversation(1e9)
	for _, p := range ps[:3] {
		w.Segment(p, nil)
	}
	data, ack := ps[3], segment("192.0.2.1:80", "10.0.0.1:40000", capture.FlagACK, 0)
	ack.Seq, ack.Window, ack.Options.WScale = 501, 1000, -1
	seq := uint32(101)
	allocs := testing.AllocsPerRun(1000, func() {
		data.Seq = seq
		ack.Ack = seq + 10
		data.Timestamp += 1000
		ack.Timestamp = data.Timestamp + 500
		w.Segment(data, nil)
		w.Segment(ack, nil)
		seq += 10
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet pair, want 0", allocs)
	}
}

// TestWorkerAddSumsEveryCounter fills every number of two worker
// snapshots with 1 and checks that their sum holds 2 everywhere: a counter
// added to metrics.Worker but forgotten by Add fails here.
func TestWorkerAddSumsEveryCounter(t *testing.T) {
	var a, b metrics.Worker
	fill(reflect.ValueOf(&a).Elem())
	fill(reflect.ValueOf(&b).Elem())
	a.Add(&b)
	check(t, reflect.ValueOf(a), "metrics.Worker")
}

// keyed are the types whose counts are merged by key (capture.ValueCounts,
// the top values of a field): their own tests cover their Add.
var keyed = map[reflect.Type]bool{reflect.TypeFor[capture.ValueCounts](): true}

// fill sets every integer reachable in v (structs, arrays) to 1 and every
// bool to true, skipping maps, slices, strings and keyed counts.
func fill(v reflect.Value) {
	if keyed[v.Type()] {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i))
		}
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32:
		if v.CanInt() {
			v.SetInt(1)
		} else {
			v.SetUint(1)
		}
	case reflect.Bool:
		v.SetBool(true)
	}
}

func check(t *testing.T, v reflect.Value, path string) {
	if keyed[v.Type()] {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				check(t, v.Field(i), path+"."+f.Name)
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			check(t, v.Index(i), path)
		}
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32:
		var n int64
		if v.CanInt() {
			n = v.Int()
		} else {
			n = int64(v.Uint())
		}
		if n != 2 {
			t.Errorf("%s = %d after adding 1 to 1: Add does not sum it", path, n)
		}
	}
}
