package output

import (
	"strings"
	"testing"
)

// FuzzParseSyslogAddress: any text gives an address or an error naming
// it, never a panic; an accepted address names its network and an
// address the dialer can take.
func FuzzParseSyslogAddress(f *testing.F) {
	for _, s := range []string{"unix:/dev/log", "unix:///run/systemd/journal/syslog", "udp://127.0.0.1:514", "tcp://[::1]:601",
		"tls://logs.example.net:6514", "udp:host", "tcp://:514", "tls://h:0", "ftp://h:1", "", ":", "unix:rel"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		network, addr, err := ParseSyslogAddress(s)
		if err != nil {
			if network != "" || addr != "" {
				t.Fatalf("%q: error %v with %q %q", s, err, network, addr)
			}
			return
		}
		switch network {
		case "unixgram":
			if !strings.HasPrefix(addr, "/") {
				t.Fatalf("%q: socket path %q", s, addr)
			}
		case "udp", "tcp", "tls":
			if !strings.HasSuffix(s, addr) || !strings.HasPrefix(s, network+"://") {
				t.Fatalf("%q: %s %q", s, network, addr)
			}
		default:
			t.Fatalf("%q: network %q", s, network)
		}
	})
}
