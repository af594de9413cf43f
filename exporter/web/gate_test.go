package web_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/exporter"
	"github.com/tcptap/tcptap/exporter/web"
	"github.com/tcptap/tcptap/flightrec"
)

// fakeBackend is an empty cache, ready or not.
type fakeBackend struct {
	c     *cache.Cache
	ready error
}

func (f *fakeBackend) Cache() *cache.Cache { return f.c }
func (f *fakeBackend) Information() *exporter.TraceInformation {
	return &exporter.TraceInformation{}
}
func (f *fakeBackend) Ready(context.Context) error { return f.ready }

// request serves GET path as if it reached the listener on local.
func request(h http.Handler, path string, local net.Addr) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if local != nil {
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// exporter.api decides who gets the JSON API by the address the request
// reached; /metrics, /healthz and /readyz are for everyone.
func TestAPIGate(t *testing.T) {
	b := &fakeBackend{c: cache.New(cache.All, flightrec.NewQuota(1<<20))}
	reg := prometheus.NewRegistry()
	lo4 := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9911}
	lo6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 9911}
	node := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 9911}
	node6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::10"), Port: 9911}
	mapped := &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.10"), Port: 9911}
	for _, tc := range []struct {
		api   string
		local net.Addr
		want  int
	}{
		{"", lo4, 200}, {"", lo6, 200}, {"", node, 403}, {"", node6, 403}, {"", mapped, 403}, {"", nil, 200},
		{web.APILoopback, node, 403}, {web.APILoopback, lo4, 200},
		{web.APIAll, node, 200}, {web.APIAll, lo4, 200},
		{web.APINone, lo4, 403}, {web.APINone, node, 403},
	} {
		h := web.NewHandler(reg, b, web.Options{API: tc.api})
		for _, p := range []string{"/api/v1/connections", "/api/v1/information", "/api/v1/connections/7/packets", "/api/v1/connections/7/pcap"} {
			w := request(h, p, tc.local)
			got := w.Code
			if got == http.StatusNotFound && strings.Contains(p, "/7/") {
				got = 200 // allowed through: no connection 7 in the cache
			}
			if got != tc.want || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Errorf("api %q, local %v, %s: %d %s, want %d (JSON)", tc.api, tc.local, p, w.Code, w.Header().Get("Content-Type"), tc.want)
			}
		}
		for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
			if w := request(h, p, tc.local); w.Code != 200 {
				t.Errorf("api %q, local %v, %s: %d, want 200", tc.api, tc.local, p, w.Code)
			}
		}
	}
	// An unknown API path is a JSON 404, as the API's other errors.
	w := request(web.Handler(reg, b), "/api/v2/nothing", lo4)
	if w.Code != 404 || !strings.HasPrefix(w.Body.String(), `{"error":`) {
		t.Errorf("/api/v2/nothing: %d %q", w.Code, w.Body.String())
	}
}

// /readyz is 503 with the reason while the backend is not ready.
func TestReadyz(t *testing.T) {
	b := &fakeBackend{c: cache.New(cache.All, flightrec.NewQuota(1<<20)), ready: errors.New("capture workers not reading")}
	h := web.Handler(prometheus.NewRegistry(), b)
	if w := request(h, "/readyz", nil); w.Code != 503 || !strings.Contains(w.Body.String(), "capture workers not reading") {
		t.Errorf("/readyz not ready: %d %q", w.Code, w.Body.String())
	}
	if w := request(h, "/healthz", nil); w.Code != 200 {
		t.Errorf("/healthz while not ready: %d", w.Code)
	}
	b.ready = nil
	if w := request(h, "/readyz", nil); w.Code != 200 {
		t.Errorf("/readyz ready: %d", w.Code)
	}
}
