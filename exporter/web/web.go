// Package web is tcptap's read-only HTTP endpoint: /metrics for Prometheus,
// /healthz, /readyz, and a JSON API over the trace cache (the records, the
// flight recorder as JSON or pcap, the trace information). Nothing served
// here changes state: mutating commands go over the control socket only.
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// OpenLister is a Backend that can list the connections still open, a
// page at a time: at most limit (bounded by the backend) with IDs from
// from, in increasing ID order, only those at risk when atRisk (of the
// cause risk, or any when it is classifier.NoRisk); more reports that
// connections with higher IDs remain.
type OpenLister interface {
	OpenPage(ctx context.Context, from uint64, limit int, atRisk bool, risk classifier.Risk) (recs []record.Record, more bool, err error)
}

// Backend is what the API reads (the daemon).
type Backend interface {
	Cache() *cache.Cache
	Information() *exporter.TraceInformation
}

// DefaultLimit and MaxLimit bound /api/v1/connections.
const (
	DefaultLimit = 1000
	MaxLimit     = 100000
)

// Who may use the JSON API (exporter.api).
const (
	// APILoopback serves the API only to requests that reached the
	// listener on a loopback address.
	APILoopback = "loopback"
	// APIAll serves it to every request.
	APIAll = "all"
	// APINone serves no API.
	APINone = "none"
)

// Options configure the handler.
type Options struct {
	// API is APILoopback (also when empty), APIAll or APINone.
	API string
}

// Readier is a Backend that can say whether it is ready to serve: for the
// daemon, every capture worker reading its socket.
type Readier interface {
	Ready(ctx context.Context) error
}

// Handler returns the HTTP handler serving metrics from g and the API from
// b, the API only to loopback requests.
func Handler(g prometheus.Gatherer, b Backend) http.Handler {
	return NewHandler(g, b, Options{})
}

// NewHandler returns the HTTP handler serving metrics from g, /healthz,
// /readyz, and the API from b to those opts.API allows.
//
// The API serves every tracked 4-tuple, packet header and pcap, so by
// default it answers only requests that arrived on a loopback address
// (the local address of the connection, which a client cannot forge): on a
// sensor listening on :9911 with the host's network, Prometheus scrapes
// /metrics from outside while /api/ answers 403 there and works with curl
// on the sensor itself. A request without a local address (served in
// process, not over a network) counts as local.
func NewHandler(g prometheus.Gatherer, b Backend, opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if rd, ok := b.(Readier); ok {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := rd.Ready(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready:", err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	a := &api{b: b}
	mux.Handle("GET /api/v1/connections", apiGate(opts.API, http.HandlerFunc(a.connections)))
	mux.Handle("GET /api/v1/connections/{id}/packets", apiGate(opts.API, http.HandlerFunc(a.packets)))
	mux.Handle("GET /api/v1/connections/{id}/pcap", apiGate(opts.API, http.HandlerFunc(a.pcap)))
	mux.Handle("GET /api/v1/information", apiGate(opts.API, http.HandlerFunc(a.information)))
	// Every other API path: a JSON error like the API's other errors.
	mux.Handle("/api/", apiGate(opts.API, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, http.StatusNotFound, fmt.Sprintf("%s: no such API path (see /api/v1/connections, /api/v1/information)", r.URL.Path))
	})))
	registerUI(mux, b, func(h http.Handler) http.Handler { return apiGate(opts.API, h) }) // /ui/ and /api/v1/connections/{id}/svg (ui.go), exposed as the API is
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, landing)
	})
	return readOnly(mux)
}

// apiGate serves h to the requests api allows, 403 (JSON) to others.
func apiGate(api string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case api == APINone:
			httpError(w, http.StatusForbidden, "the JSON API is disabled (exporter.api: none)")
		case api == APIAll || localRequest(r):
			h.ServeHTTP(w, r)
		default:
			httpError(w, http.StatusForbidden, "the JSON API is served only on loopback addresses (exporter.api: loopback): query it on the sensor (curl localhost:PORT/api/...), or set exporter.api: all with exporter.web_config_file")
		}
	})
}

// localRequest reports whether r reached the server on a loopback
// address; a request without one (served in process) is local.
func localRequest(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return true
	}
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

const landing = `<html><head><title>tcptap</title></head><body><h1>tcptap</h1><ul>
<li><a href="ui/">/ui/</a>: the connections that ended, their diagrams and packets</li>
<li><a href="metrics">/metrics</a></li><li><a href="healthz">/healthz</a></li><li><a href="readyz">/readyz</a></li>
<li><a href="api/v1/connections">/api/v1/connections</a></li>
<li><a href="api/v1/information">/api/v1/information</a></li></ul></body></html>
`

// readOnly refuses every method but GET and HEAD (ServeMux's "GET" patterns
// also match HEAD).
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, "the HTTP API is read-only: use the control socket (tcptap trace ..., tcptap reset cache) to change state")
			return
		}
		h.ServeHTTP(w, r)
	})
}

type api struct{ b Backend }

type errorBody struct {
	Error string `json:"error"`
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(errorBody{msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// connections lists cached (closed) connections, oldest first:
// ?state=closed (default: the trace cache) or open (asked of the workers),
// &reason=RT[,ST...],
// &family=ipv4|ipv6, &limit=N (the newest N).
//
// Open connections come a page at a time in increasing ID order: &limit=N
// (at most the backend's page, 1000 for the daemon), &after=ID (the last
// ID of the previous page; a Link header with rel="next" gives the next
// page's URL while more remain), &risk=any or a cause (retransmitting,
// zero_window, keepalive_unanswered, syn_unanswered) for the connections
// at risk only.
func (a *api) connections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	open := false
	switch q.Get("state") {
	case "", "closed":
	case "open":
		if _, ok := a.b.(OpenLister); !ok {
			httpError(w, http.StatusNotImplemented, "state=open: this server cannot list open connections")
			return
		}
		open = true
	default:
		httpError(w, http.StatusBadRequest, "state: want closed or open")
		return
	}
	reasons := map[classifier.Code]bool{}
	if v := q.Get("reason"); v != "" {
		for _, s := range strings.Split(v, ",") {
			c := classifier.Code(strings.ToUpper(strings.TrimSpace(s)))
			if !c.Valid() {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("reason %q: want a reason code (%s)", s, classifier.CodeList()))
				return
			}
			reasons[c] = true
		}
	}
	family := q.Get("family")
	switch family {
	case "", "ipv4", "ipv6":
	default:
		httpError(w, http.StatusBadRequest, "family: want ipv4 or ipv6")
		return
	}
	limit := DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1 to %d", MaxLimit))
			return
		}
		limit = n
	}
	keep := func(r *record.Record) bool {
		return (len(reasons) == 0 || reasons[r.Reason]) && (family == "" || r.Family == family)
	}
	if open {
		a.openConnections(w, r, keep, limit, q.Get("limit") != "")
		return
	}
	entries := a.b.Cache().Entries(func(e *cache.Entry) bool {
		if len(reasons) > 0 && !reasons[e.Record.Reason] {
			return false
		}
		return family == "" || e.Record.Family == family
	})
	if len(entries) > limit {
		entries = entries[len(entries)-limit:]
	}
	out := make([]*record.Record, len(entries))
	for i, e := range entries {
		out[i] = &e.Record
	}
	writeJSON(w, out)
}

// openConnections serves state=open: one page of the open connections.
func (a *api) openConnections(w http.ResponseWriter, r *http.Request, keep func(*record.Record) bool, limit int, limitSet bool) {
	q := r.URL.Query()
	var from uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == math.MaxUint64 {
			httpError(w, http.StatusBadRequest, "after: want the id of the last connection of the previous page")
			return
		}
		from = n + 1
	}
	atRisk, risk := false, classifier.NoRisk
	switch v := q.Get("risk"); v {
	case "":
	case "any":
		atRisk = true
	default:
		rk, ok := classifier.ParseRisk(v)
		if !ok {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("risk %q: want any, %s", v, riskNames()))
			return
		}
		atRisk, risk = true, rk
	}
	if !limitSet {
		limit = 0 // the backend's page
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	recs, more, err := a.b.(OpenLister).OpenPage(ctx, from, limit, atRisk, risk)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "listing open connections: "+err.Error())
		return
	}
	out := []*record.Record{}
	for i := range recs {
		if keep(&recs[i]) {
			out = append(out, &recs[i])
		}
	}
	if more && len(recs) > 0 {
		next := *r.URL
		nq := next.Query()
		nq.Set("after", strconv.FormatUint(recs[len(recs)-1].ID, 10))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.RequestURI()))
	}
	writeJSON(w, out)
}

// riskNames lists the risk causes the API accepts.
func riskNames() string {
	names := make([]string, len(classifier.Risks))
	for i, r := range classifier.Risks {
		names[i] = r.String()
	}
	return strings.Join(names, ", ")
}

func (a *api) entry(w http.ResponseWriter, r *http.Request) *cache.Entry {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "id: want the connection's numeric id (the record's \"id\")")
		return nil
	}
	es := a.b.Cache().Entries(func(e *cache.Entry) bool { return e.Record.ID == id })
	if len(es) == 0 {
		httpError(w, http.StatusNotFound, fmt.Sprintf("connection %d is not in the trace cache", id))
		return nil
	}
	return es[len(es)-1]
}

// Packet is one flight-recorder record as JSON.
type Packet struct {
	Index        uint64                `json:"index"` // 1-based, counting overwritten records
	Time         time.Time             `json:"time"`
	From         string                `json:"from"` // client or server
	Flags        string                `json:"flags"`
	Seq          uint32                `json:"seq"`
	Ack          uint32                `json:"ack"`
	PayloadLen   uint32                `json:"payload_len"`
	Window       uint16                `json:"window"`
	WindowScaled uint32                `json:"window_scaled"`
	IPID         uint16                `json:"ip_id"`
	Checksum     uint16                `json:"checksum"`
	WireLen      uint32                `json:"wire_len"`
	States       record.Pair[string]   `json:"states"`
	Analysis     []string              `json:"analysis"`
	Seqs         record.Pair[SeqSpace] `json:"seq_space"`
}

// SeqSpace is one direction's sequence space after a packet.
type SeqSpace struct {
	ISN     uint32 `json:"isn"`
	HighSeq uint32 `json:"high_seq"`
	HighAck uint32 `json:"high_ack"`
	Window  uint32 `json:"window"`
}

// Packets is the flight recorder of one connection.
type Packets struct {
	Record      *record.Record `json:"record"`
	Traced      bool           `json:"traced"`
	Overwritten uint64         `json:"overwritten"`
	Packets     []Packet       `json:"packets"`
}

func seqSpace(s flightrec.SeqSnapshot) SeqSpace {
	return SeqSpace{ISN: s.ISN, HighSeq: s.HighSeq, HighAck: s.HighAck, Window: s.Window}
}

func (a *api) packets(w http.ResponseWriter, r *http.Request) {
	e := a.entry(w, r)
	if e == nil {
		return
	}
	out := Packets{Record: &e.Record, Traced: e.Traced, Overwritten: e.Overwritten, Packets: make([]Packet, e.Recorded.Len())}
	for i := range out.Packets {
		p := e.Recorded.At(i)
		an := p.Analysis.Names()
		if an == nil {
			an = []string{}
		}
		out.Packets[i] = Packet{
			Index: e.Overwritten + uint64(i) + 1, Time: time.Unix(0, p.Timestamp).UTC(),
			From: p.From.String(), Flags: p.Flags.String(), Seq: p.Seq, Ack: p.Ack,
			PayloadLen: p.PayloadLen, Window: p.Window, WindowScaled: p.WindowScaled(),
			IPID: p.IPID, Checksum: p.Checksum, WireLen: p.WireLen,
			States:   record.Pair[string]{Client: p.States[reassembly.Client].String(), Server: p.States[reassembly.Server].String()},
			Analysis: an,
			Seqs:     record.Pair[SeqSpace]{Client: seqSpace(p.Snap[reassembly.Client]), Server: seqSpace(p.Snap[reassembly.Server])},
		}
	}
	writeJSON(w, &out)
}

func (a *api) pcap(w http.ResponseWriter, r *http.Request) {
	e := a.entry(w, r)
	if e == nil {
		return
	}
	if e.Recorded.Len() == 0 {
		httpError(w, http.StatusNotFound, fmt.Sprintf("connection %d has no recorded packets (it was not traced: enable tracing with 'tcptap trace enable')", e.Record.ID))
		return
	}
	w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", exporter.PcapFileName(&e.Record)))
	exporter.WritePcap(w, &e.Record, e.Packets())
}
