package output

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcptap/tcptap/internal/peers"
)

// Standard output gets JSON Lines, abnormal closes only with
// output.records abnormal.
func TestStdoutAbnormalOnly(t *testing.T) {
	recs := makeRecords(t, 200)
	s, err := New(Config{Stdout: true}, Options{AbnormalOnly: true, QueueBytes: 1 << 20, FlushTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var buf peers.Output
	s.outs[0].s.(*stdout).w = &buf
	var want strings.Builder
	abnormal := 0
	for i := range recs {
		s.Write(&recs[i])
		if recs[i].Reason.Abnormal() {
			want.WriteString(jsonLine(&recs[i]))
			abnormal++
		}
	}
	s.Close()
	if abnormal == 0 || abnormal == len(recs) {
		t.Fatalf("%d abnormal of %d: the test needs both kinds", abnormal, len(recs))
	}
	if buf.String() != want.String() {
		t.Errorf("standard output is not the %d abnormal records' lines", abnormal)
	}
	if st := statsOf(s, "stdout"); st.Sent != uint64(abnormal) {
		t.Errorf("stats %+v", st)
	}
}

// A record too large for a UDP datagram is counted failed, not retried;
// the records around it go through.
func TestSyslogUDPTooLarge(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	recs := makeRecords(t, 3)
	recs[1].Interface = strings.Repeat("x", 70000)
	s, err := New(Config{Syslog: &SyslogConfig{Address: "udp://" + pc.LocalAddr().String(), Tag: "tcptap", Hostname: "h"}},
		Options{QueueBytes: 1 << 20, FlushTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		s.Write(&recs[i])
	}
	buf := make([]byte, 70000)
	for _, i := range []int{0, 2} {
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(jsonLine(&recs[i]), "\n")
		if !strings.HasSuffix(string(buf[:n]), " conn - "+want) {
			t.Errorf("datagram %.120s", buf[:n])
		}
	}
	s.Close()
	if st := statsOf(s, "syslog"); st.Sent != 2 || st.Failed != 1 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 2 sent and 1 failed", st)
	}
}
