package output

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// SyslogConfig is the syslog output.
type SyslogConfig struct {
	// Address: unix:PATH, udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT.
	Address  string
	RFC3164  bool // else RFC 5424
	Facility int  // ParseFacility
	Tag      string
	Hostname string // empty: os.Hostname
	// TLS files (PEM), for tls://.
	CAFile, CertFile, KeyFile string
}

// Facilities are the syslog facility names and codes (RFC 5424 table 1,
// with the names of syslog.conf).
var Facilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
	"", "", "", "", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// ParseFacility returns the code of a facility name.
func ParseFacility(s string) (int, error) {
	for i, n := range Facilities {
		if n != "" && n == strings.ToLower(s) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q: want kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp or local0 to local7", s)
}

// ParseSyslogAddress splits an output.syslog.address into the network
// (unixgram, udp, tcp or tls) and address.
func ParseSyslogAddress(s string) (network, addr string, err error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("%q: want unix:PATH, udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT", s)
	}
	switch scheme {
	case "unix":
		rest = strings.TrimPrefix(rest, "//")
		if !strings.HasPrefix(rest, "/") {
			return "", "", fmt.Errorf("%q: want an absolute socket path, unix:/dev/log", s)
		}
		return "unixgram", rest, nil
	case "udp", "tcp", "tls":
		if !strings.HasPrefix(rest, "//") {
			return "", "", fmt.Errorf("%q: want %s://HOST:PORT", s, scheme)
		}
		hp := rest[2:]
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			return "", "", fmt.Errorf("%q: want %s://HOST:PORT", s, scheme)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("%q: port %q: want 1 to 65535", s, port)
		}
		return scheme, hp, nil
	}
	return "", "", fmt.Errorf("%q: scheme %q: want unix, udp, tcp or tls", s, scheme)
}

// TLSConfig builds a client TLS configuration from PEM files: the CAs
// that sign the server's certificate (empty: the system's) and a client
// certificate and key (both or neither).
func TLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	c := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both the certificate and the key file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// maxUDPMessage is the largest UDP payload (IPv4).
const maxUDPMessage = 65507

// syslog sends one record per message: RFC 5424 (or RFC 3164) header and
// the JSON record as the message. Over TCP and TLS messages are framed by
// octet counting (RFC 6587 3.4.1, RFC 5425), a batch in one write; over
// UDP and unix datagram sockets each is a datagram. Abnormal closes have
// severity warning, others notice.
type syslog struct {
	cfg     SyslogConfig
	network string
	addr    string
	tls     *tls.Config
	host    string
	pid     string
	conn    net.Conn
	buf     []byte
}

func newSyslog(cfg SyslogConfig) (*syslog, error) {
	network, addr, err := ParseSyslogAddress(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("output.syslog.address: %w", err)
	}
	s := &syslog{cfg: cfg, network: network, addr: addr, host: cfg.Hostname, pid: strconv.Itoa(os.Getpid())}
	if s.host == "" {
		s.host, _ = os.Hostname()
	}
	if s.host == "" {
		s.host = "-"
	}
	if s.cfg.Tag == "" {
		s.cfg.Tag = "tcptap"
	}
	if network == "tls" {
		host, _, _ := net.SplitHostPort(addr)
		if s.tls, err = TLSConfig(cfg.CAFile, cfg.CertFile, cfg.KeyFile, host); err != nil {
			return nil, fmt.Errorf("output.syslog TLS: %w", err)
		}
	}
	return s, nil
}

func (s *syslog) open() error {
	d := net.Dialer{Timeout: 5 * time.Second}
	var err error
	if s.network == "tls" {
		s.conn, err = tls.DialWithDialer(&d, "tcp", s.addr, s.tls)
	} else {
		s.conn, err = d.Dial(s.network, s.addr)
	}
	return err
}

func (s *syslog) close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

const (
	sevWarning = 4
	sevNotice  = 5
)

// appendMessage appends the syslog message of one record (without its
// newline) to dst.
func (s *syslog) appendMessage(dst []byte, rec []byte, flags byte, now time.Time) []byte {
	sev := sevNotice
	if flags&flagAbnormal != 0 {
		sev = sevWarning
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(s.cfg.Facility*8+sev), 10)
	dst = append(dst, '>')
	if s.cfg.RFC3164 {
		dst = now.AppendFormat(dst, time.Stamp)
		dst = append(dst, ' ')
		dst = append(dst, s.host...)
		dst = append(dst, ' ')
		dst = append(dst, s.cfg.Tag...)
		dst = append(dst, '[')
		dst = append(dst, s.pid...)
		dst = append(dst, "]: "...)
	} else {
		dst = append(dst, "1 "...)
		dst = now.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
		dst = append(dst, ' ')
		dst = append(dst, s.host...)
		dst = append(dst, ' ')
		dst = append(dst, s.cfg.Tag...)
		dst = append(dst, ' ')
		dst = append(dst, s.pid...)
		dst = append(dst, " conn - "...)
	}
	return append(dst, bytes.TrimSuffix(rec, []byte{'\n'})...)
}

func (s *syslog) send(b *batch) (int, int, error) {
	now := time.Now()
	_ = s.conn.SetWriteDeadline(now.Add(10 * time.Second))
	if s.network == "tcp" || s.network == "tls" {
		s.buf = s.buf[:0]
		var msg []byte
		for i := range b.len() {
			msg = s.appendMessage(msg[:0], b.record(i), b.flags[i], now)
			s.buf = strconv.AppendInt(s.buf, int64(len(msg)), 10)
			s.buf = append(s.buf, ' ')
			s.buf = append(s.buf, msg...)
		}
		if _, err := s.conn.Write(s.buf); err != nil {
			// Whether the server got part of the batch is unknown:
			// the whole batch goes again after the reconnection.
			return 0, 0, err
		}
		return b.len(), 0, nil
	}
	for i := range b.len() {
		s.buf = s.appendMessage(s.buf[:0], b.record(i), b.flags[i], now)
		if len(s.buf) > maxUDPMessage {
			// Refused for good; the rest follow in the next send.
			return i, 1, nil
		}
		if _, err := s.conn.Write(s.buf); err != nil {
			return i, 0, err
		}
	}
	return b.len(), 0, nil
}
