package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tcptap/tcptap/exporter/output"
	"github.com/tcptap/tcptap/record"
)

// Output limits.
const (
	minQueueSize = 64 << 10 // a few dozen records
	maxQueueSize = 16 << 30
	maxFiles     = 10000
)

func (s Sensor) validate(v *validator) {
	if s.CommunityIDSeed < 0 || s.CommunityIDSeed > 0xffff {
		v.add("sensor.community_id_seed", "%d: want 0 to 65535", s.CommunityIDSeed)
	}
	if strings.ContainsAny(s.Name, " \t\r\n") {
		v.add("sensor.name", "%q: want a name without white space (it is the syslog HOSTNAME too)", s.Name)
	}
}

// Fleet returns the records' fleet settings: the sensor name (the host name
// when sensor.name is empty) and the Community ID seed.
func (s Sensor) Fleet() record.Fleet {
	name := s.Name
	if name == "" {
		name = record.DefaultSensor()
	}
	return record.Fleet{Sensor: name, CommunityIDSeed: uint16(s.CommunityIDSeed)}
}

// QueueBytes parses output.queue_size.
func (o Output) QueueBytes() (int64, error) {
	n, err := ParseSize(o.QueueSize)
	if err != nil {
		return 0, keyErr("output.queue_size", "%q: %v", o.QueueSize, err)
	}
	if n < minQueueSize || n > maxQueueSize {
		return 0, keyErr("output.queue_size", "%q: want %s to %s", o.QueueSize, FormatSize(minQueueSize), FormatSize(maxQueueSize))
	}
	return n, nil
}

func (o Output) validate(v *validator) {
	if o.Records != "all" && o.Records != "abnormal" {
		v.add("output.records", "%q: want all or abnormal", o.Records)
	}
	_, err := o.QueueBytes()
	v.addErr(err)
	if o.FlushTimeout < 0 {
		v.add("output.flush_timeout", "%s: want zero or a positive duration", FormatDuration(o.FlushTimeout))
	}
	f := o.File
	if f.Path != "" && !filepath.IsAbs(f.Path) {
		v.add("output.file.path", "%q: want an absolute path", f.Path)
	}
	if _, err := ParseSize(f.MaxSize); err != nil {
		v.add("output.file.max_size", "%q: %v", f.MaxSize, err)
	}
	if f.MaxAge < 0 {
		v.add("output.file.max_age", "%s: want zero (never) or a positive duration such as 24h", FormatDuration(f.MaxAge))
	}
	if f.MaxFiles < 0 || f.MaxFiles > maxFiles {
		v.add("output.file.max_files", "%d: want 0 to %d", f.MaxFiles, maxFiles)
	}
	s := o.Syslog
	if s.Address != "" {
		if _, _, err := output.ParseSyslogAddress(s.Address); err != nil {
			v.add("output.syslog.address", "%v", err)
		}
	}
	if s.Format != "rfc5424" && s.Format != "rfc3164" {
		v.add("output.syslog.format", "%q: want rfc5424 or rfc3164", s.Format)
	}
	if _, err := output.ParseFacility(s.Facility); err != nil {
		v.add("output.syslog.facility", "%v", err)
	}
	if s.Tag == "" || len(s.Tag) > 48 || strings.ContainsAny(s.Tag, " \t\r\n[]:") {
		v.add("output.syslog.tag", "%q: want 1 to 48 characters without white space, brackets or colons", s.Tag)
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		v.add("output.syslog.tls_cert_file", "a client certificate needs output.syslog.tls_cert_file and output.syslog.tls_key_file")
	}
	n := o.NATS
	if n.URL != "" {
		for _, u := range strings.Split(n.URL, ",") {
			u = strings.TrimSpace(u)
			if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
				v.add("output.nats.url", "%q: want nats://HOST:PORT or tls://HOST:PORT", u)
			}
		}
	}
	if n.Subject == "" || strings.ContainsAny(n.Subject, " \t\r\n*>") || strings.HasPrefix(n.Subject, ".") || strings.HasSuffix(n.Subject, ".") || strings.Contains(n.Subject, "..") {
		v.add("output.nats.subject", "%q: want a subject such as tcptap.records (no white space or wildcards)", n.Subject)
	}
	if strings.ContainsAny(n.Stream, " \t\r\n.*>/\\") {
		v.add("output.nats.stream", "%q: want a stream name without white space, dots, wildcards or slashes", n.Stream)
	}
	if (n.TLSCertFile == "") != (n.TLSKeyFile == "") {
		v.add("output.nats.tls_cert_file", "a client certificate needs output.nats.tls_cert_file and output.nats.tls_key_file")
	}
}

// Outputs returns the outputs' configuration and options (logger and
// sensor name are the caller's).
func (o Output) Outputs(sensor string) (output.Config, output.Options, error) {
	var v validator
	o.validate(&v)
	if err := v.err(); err != nil {
		return output.Config{}, output.Options{}, err
	}
	q, _ := o.QueueBytes()
	opts := output.Options{AbnormalOnly: o.Records == "abnormal", QueueBytes: int(q), FlushTimeout: o.FlushTimeout}
	cfg := output.Config{Stdout: o.Stdout}
	if o.File.Path != "" {
		size, _ := ParseSize(o.File.MaxSize)
		cfg.File = &output.FileConfig{Path: o.File.Path, MaxSize: size, MaxAge: o.File.MaxAge, MaxFiles: o.File.MaxFiles}
	}
	if s := o.Syslog; s.Address != "" {
		fac, _ := output.ParseFacility(s.Facility)
		cfg.Syslog = &output.SyslogConfig{Address: s.Address, RFC3164: s.Format == "rfc3164", Facility: fac, Tag: s.Tag,
			Hostname: sensor, CAFile: s.TLSCAFile, CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile}
	}
	if n := o.NATS; n.URL != "" {
		cfg.NATS = &output.NATSConfig{URL: n.URL, Subject: n.Subject, Stream: n.Stream, CredentialsFile: n.CredentialsFile,
			CAFile: n.TLSCAFile, CertFile: n.TLSCertFile, KeyFile: n.TLSKeyFile, Name: fmt.Sprintf("tcptap %s", sensor)}
	}
	return cfg, opts, nil
}
