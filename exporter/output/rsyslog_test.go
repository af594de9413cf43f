package output

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freePort returns a TCP (or UDP) port on 127.0.0.1 free a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rsyslog is a Debian rsyslogd the test started: a unix socket, a UDP and
// a TCP input on 127.0.0.1, every message written to out with the input,
// facility, severity, host, app name and message.
type rsyslog struct {
	dir, sock, out string
	udp, tcp       int
}

func startRsyslog(t testing.TB) *rsyslog {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed (apt-get install rsyslog); skipping")
	}
	dir := t.TempDir()
	r := &rsyslog{dir: dir, sock: filepath.Join(dir, "log.sock"), out: filepath.Join(dir, "out.log"),
		udp: freePort(t, "udp"), tcp: freePort(t, "tcp")}
	conf := fmt.Sprintf(`global(workDirectory=%[1]q maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
template(name="raw" type="string" string="%%inputname%%|%%syslogfacility-text%%|%%syslogseverity-text%%|%%hostname%%|%%app-name%%|%%msg%%\n")
input(type="imuxsock" Socket=%[2]q UseSpecialParser="off" ParseHostname="on")
input(type="imudp" address="127.0.0.1" port="%[3]d")
input(type="imtcp" address="127.0.0.1" port="%[4]d")
*.* action(type="omfile" file=%[5]q template="raw")
`, dir, r.sock, r.udp, r.tcp, r.out)
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-n", "-f", cf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	waitFor(t, 10*time.Second, "rsyslogd's inputs", func() bool {
		if _, err := os.Stat(r.sock); err != nil {
			return false
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.tcp))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return r
}

// lines returns what rsyslogd wrote for one input.
func (r *rsyslog) lines(t testing.TB, input string) []string {
	data, err := os.ReadFile(r.out)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, input+"|") {
			out = append(out, l)
		}
	}
	return out
}

// rsyslogd receives every record, one per message, over its unix socket,
// UDP and TCP (octet-counting framing), in RFC 5424 and RFC 3164, with
// the facility, the severity by reason, the sensor as host name and the
// tag as app name.
func TestRsyslogReceives(t *testing.T) {
	r := startRsyslog(t)
	for _, c := range []struct {
		input, address string
		rfc3164        bool
		n              int
	}{
		{"imuxsock", "unix:" + r.sock, false, 200},
		{"imudp", fmt.Sprintf("udp://127.0.0.1:%d", r.udp), false, 100},
		{"imtcp", fmt.Sprintf("tcp://127.0.0.1:%d", r.tcp), false, 500},
		{"imtcp", fmt.Sprintf("tcp://127.0.0.1:%d", r.tcp), true, 200},
	} {
		format := "rfc5424"
		if c.rfc3164 {
			format = "rfc3164"
		}
		t.Run(c.input+"-"+format, func(t *testing.T) {
			before := len(r.lines(t, c.input))
			recs := makeRecords(t, c.n)
			fac, _ := ParseFacility("local3")
			s, err := New(Config{Syslog: &SyslogConfig{Address: c.address, RFC3164: c.rfc3164, Facility: fac, Tag: "tcptap", Hostname: "sensor-7"}},
				Options{QueueBytes: 16 << 20, FlushTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				s.Write(&recs[i])
				if c.input == "imudp" && i%5 == 4 {
					time.Sleep(5 * time.Millisecond) // no burst beyond the socket buffer
				}
			}
			s.Close()
			if st := statsOf(s, "syslog"); st.Sent != uint64(c.n) || st.Dropped != 0 || st.Failed != 0 {
				t.Fatalf("stats %+v", st)
			}
			var got []string
			waitFor(t, 10*time.Second, fmt.Sprintf("%d messages in rsyslogd's file", c.n), func() bool {
				got = r.lines(t, c.input)[before:]
				return len(got) >= c.n
			})
			for i, l := range got {
				f := strings.SplitN(l, "|", 6)
				rec := &recs[i]
				sev := "notice"
				if rec.Reason.Abnormal() {
					sev = "warning"
				}
				want := strings.TrimSuffix(jsonLine(rec), "\n")
				if f[1] != "local3" || f[2] != sev || f[3] != "sensor-7" || f[4] != "tcptap" || strings.TrimPrefix(f[5], " ") != want {
					t.Fatalf("message %d: %q\nwant local3|%s|sensor-7|tcptap|%s", i, l, sev, want)
				}
			}
			if len(got) != c.n {
				t.Errorf("%d messages, want %d", len(got), c.n)
			}
			t.Logf("%s %s: %d records, %d messages, each equal", c.input, format, c.n, len(got))
		})
	}
}
