package offline

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tcptap/tcptap/cache"
	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// synFlood is a capture.Source of n SYNs from distinct client endpoints to
// one server, 1 µs apart: a flood of new connections, generated on the fly.
type synFlood struct {
	n, i  int
	frame [54]byte
}

func newSYNFlood(n int) *synFlood {
	s := &synFlood{n: n}
	f := s.frame[:]
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	copy(ip[16:20], []byte{10, 99, 0, 1}) // the server
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[2:], 443)
	tcp[12], tcp[13] = 5<<4, 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	return s
}

func (s *synFlood) Next() (capture.Frame, error) {
	if s.i >= s.n {
		return capture.Frame{}, io.EOF
	}
	i := s.i
	s.i++
	ip := s.frame[14:]
	// Client 10.(100+i/2^24).x.y:port — a new 4-tuple every time.
	copy(ip[12:16], []byte{10, byte(100 + i>>24), byte(i >> 16), byte(i >> 8)})
	binary.BigEndian.PutUint16(ip[20:], uint16(1024+i&0xff))
	binary.BigEndian.PutUint32(ip[24:], uint32(i)*2654435761)
	return capture.Frame{Data: s.frame[:], Timestamp: 1_700_000_000e9 + int64(i)*1000, WireLen: 54, LinkType: capture.LinkTypeEthernet}, nil
}

func (s *synFlood) Close() error { return nil }

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// TestSYNFloodStaysWithinBounds feeds a million distinct connections with
// tracing on, a 1 MiB trace quota and a 100,000-connection table bound:
// the quota's accounting never exceeds it, later connections are not traced
// but every one is still classified, and the table evicts instead of growing.
func TestSYNFloodStaysWithinBounds(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	const quotaBytes = 1 << 20
	quota := flightrec.NewQuota(quotaBytes)
	tc := cache.New(cache.All, quota)
	var classified int
	byReason := map[string]int{}
	opts := Options{
		Workers: 2,
		Table:   reassembly.Config{MaxConnections: 100_000},
		Trace:   flightrec.Config{Enabled: true, MaxPacketNumber: 500},
		Quota:   quota,
		Cache:   tc,
	}
	st, err := RunSources(context.Background(), []Input{NewInput("flood", newSYNFlood(n))}, opts, func(r *record.Record) {
		classified++
		byReason[string(r.Reason)]++
	})
	if err != nil {
		t.Fatal(err)
	}
	if classified != n || st.Table.Opened != uint64(n) {
		t.Errorf("%d connections opened, %d classified, want %d", st.Table.Opened, classified, n)
	}
	if quota.Peak() > quotaBytes || quota.Used() > quotaBytes {
		t.Errorf("trace memory peaked at %d bytes (now %d), over the %d-byte quota", quota.Peak(), quota.Used(), quotaBytes)
	}
	tr := st.Table.Trace
	if tr.NotTracedQuota == 0 || tr.Traced == 0 || tr.Traced+tr.NotTracedQuota != uint64(n) {
		t.Errorf("traced %d, not traced for quota %d, of %d", tr.Traced, tr.NotTracedQuota, n)
	}
	if st.Table.Evicted < uint64(n-100_000) {
		t.Errorf("evicted %d connections, want at least %d", st.Table.Evicted, n-100_000)
	}
	cs := tc.Stats()
	t.Logf("%d SYNs: reasons %v; traced %d, not traced (quota) %d; cached %d, not cached (quota) %d; evicted %d; trace memory peak %d of %d bytes; process peak RSS %.1f MiB",
		n, byReason, tr.Traced, tr.NotTracedQuota, cs.Cached, cs.NotCachedQuota, st.Table.Evicted, quota.Peak(), quotaBytes, float64(peakRSS(t))/(1<<20))
}
