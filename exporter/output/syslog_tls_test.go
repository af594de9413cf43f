package output

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA makes a CA and a server certificate for 127.0.0.1 signed by it,
// as PEM files in dir: ca.pem, cert.pem, key.pem.
func writeCA(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tcptap test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{
		"ca.pem":   {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem":  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// rsyslogd receives the records over TLS (RFC 5425, its gtls driver from
// Debian's rsyslog-gnutls); tcptap verifies its certificate against the
// configured CA, and a wrong CA keeps the output down.
func TestRsyslogTLS(t *testing.T) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls); skipping")
	}
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
		t.Skip("rsyslog's TLS driver not installed (apt-get install rsyslog-gnutls); skipping")
	}
	dir := t.TempDir()
	writeCA(t, dir)
	port := freePort(t, "tcp")
	out := filepath.Join(dir, "out.log")
	conf := fmt.Sprintf(`global(workDirectory=%[1]q maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile=%[2]q DefaultNetstreamDriverCertFile=%[3]q DefaultNetstreamDriverKeyFile=%[4]q)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
template(name="raw" type="string" string="%%hostname%%|%%app-name%%|%%msg%%\n")
input(type="imtcp" address="127.0.0.1" port="%[5]d")
*.* action(type="omfile" file=%[6]q template="raw")
`, dir, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), port, out)
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-n", "-f", cf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	// Its complaints about the readiness probe and the wrong-CA attempt
	// are expected: not shown.
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	waitFor(t, 10*time.Second, "rsyslogd's TLS input", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	addr := fmt.Sprintf("tls://127.0.0.1:%d", port)

	// A CA that did not sign the server's certificate: down, nothing sent.
	other := t.TempDir()
	writeCA(t, other)
	bad, err := New(Config{Syslog: &SyslogConfig{Address: addr, Tag: "tcptap", Hostname: "tls-sensor", CAFile: filepath.Join(other, "ca.pem")}},
		Options{QueueBytes: 1 << 20, FlushTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	recs := makeRecords(t, 300)
	bad.Write(&recs[0])
	waitFor(t, 5*time.Second, "a certificate error", func() bool {
		return strings.Contains(statsOf(bad, "syslog").LastFailure, "certificate")
	})
	bad.Close()
	if st := statsOf(bad, "syslog"); st.Sent != 0 {
		t.Errorf("with the wrong CA: %+v", st)
	}

	s, err := New(Config{Syslog: &SyslogConfig{Address: addr, Tag: "tcptap", Hostname: "tls-sensor", CAFile: filepath.Join(dir, "ca.pem")}},
		Options{QueueBytes: 16 << 20, FlushTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		s.Write(&recs[i])
	}
	s.Close()
	if st := statsOf(s, "syslog"); st.Sent != uint64(len(recs)) || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	var got []string
	waitFor(t, 10*time.Second, "300 messages", func() bool {
		data, _ := os.ReadFile(out)
		got = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		return len(data) > 0 && len(got) >= len(recs)
	})
	for i, l := range got {
		want := "tls-sensor|tcptap|" + strings.TrimSuffix(jsonLine(&recs[i]), "\n")
		if strings.Replace(l, "| ", "|", 1) != want {
			t.Fatalf("message %d: %.200s\nwant %.200s", i, l, want)
		}
	}
	t.Logf("TLS: %d records, %d messages, each equal; a wrong CA refused", len(recs), len(got))
}
