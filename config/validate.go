package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tcptap/tcptap/capture"
	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/flightrec"
	"github.com/tcptap/tcptap/reassembly"
)

// KeyError is a problem with one key: Key is the key's name, with an index
// for list elements (snmp.communities[1].access).
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *KeyError) Unwrap() error { return e.Err }

func keyErr(key, format string, args ...any) *KeyError {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// KeyErrors returns the *KeyError values in err, which may be one or a join
// of several (as Validate returns).
func KeyErrors(err error) []*KeyError {
	var out []*KeyError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ke, ok := err.(*KeyError); ok {
			out = append(out, ke)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ke *KeyError
		if errors.As(err, &ke) {
			out = append(out, ke)
		}
	}
	walk(err)
	return out
}

// validator collects the problems of a configuration.
type validator struct{ errs []error }

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, keyErr(key, format, args...))
}

// addErr adds err, which is a *KeyError or a join of them.
func (v *validator) addErr(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		v.errs = append(v.errs, j.Unwrap()...)
		return
	}
	v.errs = append(v.errs, err)
}

func (v *validator) err() error { return errors.Join(v.errs...) }

// Limits.
const (
	maxPacketNumber = flightrec.MaxPacketNumberLimit
	maxWorkers      = 1024
	minSnaplen      = 128                 // Ethernet + VLAN tags + IPv6 + the largest TCP header, roughly
	maxSnaplen      = 262144              // capture.MaxRecordLen
	maxPortLabels   = metrics.MaxServices // the counters have this many slots
	maxUnixPath     = 107                 // sun_path is 108 bytes with the terminating NUL
	minUSMPassword  = 8                   // RFC 3414 §11.2
	maxUSMName      = 32                  // SnmpAdminString (SIZE(1..32))

	maxNotificationRate = 100000 // per second, or in one burst
)

// Validate reports every problem of the configuration, each as a *KeyError
// naming the key ("trace.cache_mode: \"some\": want abnormal-close or
// all"), joined with errors.Join. It does not require capture interfaces:
// see Capture.RequireInterfaces.
func (c *Config) Validate() error {
	var v validator
	c.Capture.validate(&v)
	c.Trace.validate(&v)
	c.Exporter.validate(&v)
	c.SNMP.validate(&v)
	c.Control.validate(&v)
	c.Sensor.validate(&v)
	c.Output.validate(&v)
	c.Log.validate(&v)
	return v.err()
}

func (c Capture) validate(v *validator) {
	seen := map[string]bool{}
	for i, name := range c.Interfaces {
		key := fmt.Sprintf("capture.interfaces[%d]", i)
		switch {
		case name == "":
			v.add(key, "empty interface name")
		case len(name) > 15:
			v.add(key, "%q: longer than 15 bytes, the kernel's limit for an interface name", name)
		case strings.ContainsAny(name, "/ \t\n") || name == "." || name == "..":
			v.add(key, "%q: not an interface name", name)
		case seen[name]:
			v.add(key, "%q: given twice", name)
		}
		seen[name] = true
	}
	if c.Workers < 0 || c.Workers > maxWorkers {
		v.add("capture.workers", "%d: want 0 (one per CPU) to %d", c.Workers, maxWorkers)
	}
	if c.Snaplen < minSnaplen || c.Snaplen > maxSnaplen {
		v.add("capture.snaplen", "%d: want %d to %d bytes", c.Snaplen, minSnaplen, maxSnaplen)
	}
	ring, ringErr := c.RingBytes()
	v.addErr(ringErr)
	block, blockErr := c.BlockBytes()
	v.addErr(blockErr)
	page := int64(os.Getpagesize())
	if blockErr == nil {
		switch {
		case block < page || block&(block-1) != 0:
			v.add("capture.block_size", "%q: want a power of two of at least the page size (%d bytes), such as 1MiB", c.BlockSize, page)
		case c.Snaplen > 0 && int64(c.Snaplen) > block/2:
			v.add("capture.snaplen", "%d: larger than half of capture.block_size (%s); raise the block size", c.Snaplen, c.BlockSize)
		}
	}
	if ringErr == nil && blockErr == nil && block > 0 {
		switch {
		case ring < block:
			v.add("capture.ring_size", "%q: smaller than capture.block_size (%s)", c.RingSize, c.BlockSize)
		case ring%block != 0:
			v.add("capture.ring_size", "%q: want a multiple of capture.block_size (%s)", c.RingSize, c.BlockSize)
		case ring/block > 1<<20:
			v.add("capture.ring_size", "%q: more than %d blocks of capture.block_size (%s); raise the block size", c.RingSize, 1<<20, c.BlockSize)
		}
	}
	if _, err := capture.ParseUDPTunnelPorts(c.UDPTunnels); err != nil {
		v.add("capture.udp_tunnels", "%v", err)
	}
	if _, ok := capture.ParseDuplicatePolicy(c.Duplicates); !ok {
		v.add("capture.duplicates", "%q: want drop or keep", c.Duplicates)
	}
	if last := c.FanoutGroup + max(len(c.Interfaces), 1) - 1; c.FanoutGroup < 0 || last > 0xffff {
		v.add("capture.fanout_group", "%d: want 0 (derived from the process ID) or a group id 1 to %d (one id per interface, counting up)", c.FanoutGroup, 0xffff-max(len(c.Interfaces), 1)+1)
	}
}

func (t Trace) validate(v *validator) {
	_, err := t.localNets()
	v.addErr(err)
	_, err = t.ACL()
	v.addErr(err)
	if t.MaxPacketNumber < 1 || t.MaxPacketNumber > maxPacketNumber {
		v.add("trace.max_packet_number", "%d: want 1 to %d", t.MaxPacketNumber, maxPacketNumber)
	}
	_, err = t.QuotaBytes()
	v.addErr(err)
	_, err = t.Mode()
	v.addErr(err)
	if t.IdleTimeout <= 0 {
		v.add("trace.idle_timeout", "%s: want a positive duration such as 5m", FormatDuration(t.IdleTimeout))
	}
	if t.CloseLinger < 0 {
		v.add("trace.close_linger", "%s: want zero or a positive duration such as 5s", FormatDuration(t.CloseLinger))
	}
	if t.MaxConnections < 1 {
		v.add("trace.max_connections", "%d: want at least 1", t.MaxConnections)
	}
	if _, err := reassembly.ParseVLANPolicy(t.VLANPolicy); err != nil {
		v.add("trace.vlan_policy", "%v", err)
	}
	t.validateThresholds(v)
}

func (t Trace) validateThresholds(v *validator) {
	if t.RTMinRetransmissions < 1 {
		v.add("trace.rt_min_retransmissions", "%d: want at least 1", t.RTMinRetransmissions)
	}
	if t.PTMinProbes < 1 {
		v.add("trace.pt_min_probes", "%d: want at least 1", t.PTMinProbes)
	}
	if t.KTMinProbes < 1 {
		v.add("trace.kt_min_probes", "%d: want at least 1", t.KTMinProbes)
	}
	if !finite(t.SilenceFactor) || t.SilenceFactor < 1 {
		v.add("trace.silence_factor", "%g: want a number of at least 1", t.SilenceFactor)
	}
	if t.MinSilence < 0 {
		v.add("trace.min_silence", "%s: want zero or a positive duration", FormatDuration(t.MinSilence))
	}
	if t.SYNSilence < 0 {
		v.add("trace.syn_silence", "%s: want zero or a positive duration", FormatDuration(t.SYNSilence))
	}
}

func (e Exporter) validate(v *validator) {
	if e.Listen != "" {
		if err := checkListen(e.Listen); err != nil {
			v.add("exporter.listen", "%q: %v", e.Listen, err)
		}
	}
	if len(e.PortLabels) > maxPortLabels {
		v.add("exporter.port_labels", "%d ports: want at most %d (each is a label value on every per-port metric)", len(e.PortLabels), maxPortLabels)
	}
	seen := map[int]bool{}
	for i, p := range e.PortLabels {
		key := fmt.Sprintf("exporter.port_labels[%d]", i)
		switch {
		case p < 1 || p > 65535:
			v.add(key, "%d: want a port 1 to 65535", p)
		case seen[p]:
			v.add(key, "%d: given twice", p)
		}
		seen[p] = true
	}
	switch e.API {
	case APILoopback, APIAll, APINone:
	default:
		v.add("exporter.api", "%q: want %s, %s or %s", e.API, APILoopback, APIAll, APINone)
	}
	if e.WebConfigFile != "" {
		if fi, err := os.Stat(e.WebConfigFile); err != nil {
			v.add("exporter.web_config_file", "%v", err)
		} else if !fi.Mode().IsRegular() {
			v.add("exporter.web_config_file", "%q: not a regular file", e.WebConfigFile)
		}
	}
}

// checkListen checks a listen address host:port: an empty host (all
// addresses), an IP address or a host name, and a numeric port.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port such as :9911, 127.0.0.1:9911 or [::1]:9911")
	}
	if err := checkHost(host); err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return nil
}

func checkHost(host string) error {
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("host %q: want an IP address or a host name", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("host %q: want an IP address or a host name", host)
			}
		}
	}
	return nil
}

func (s SNMP) validate(v *validator) {
	seen := map[string]bool{}
	for i, l := range s.Listen {
		key := fmt.Sprintf("snmp.listen[%d]", i)
		if err := checkListen(l); err != nil {
			v.add(key, "%q: %v", l, err)
		} else if seen[l] {
			v.add(key, "%q: given twice", l)
		}
		seen[l] = true
	}

	views := map[string]bool{}
	for i, w := range s.Views {
		key := fmt.Sprintf("snmp.views[%d]", i)
		switch {
		case w.Name == "":
			v.add(key+".name", "empty: every view needs a name")
		case views[w.Name]:
			v.add(key+".name", "%q: defined twice", w.Name)
		}
		views[w.Name] = true
		if len(w.Included) == 0 {
			v.add(key+".included", "empty: a view includes at least one OID subtree, such as 1.3.6.1.2.1")
		}
		for j, oid := range w.Included {
			if err := checkOID(oid); err != nil {
				v.add(fmt.Sprintf("%s.included[%d]", key, j), "%q: %v", oid, err)
			}
		}
		for j, oid := range w.Excluded {
			if err := checkOID(oid); err != nil {
				v.add(fmt.Sprintf("%s.excluded[%d]", key, j), "%q: %v", oid, err)
			}
		}
	}
	checkView := func(key, view string) {
		if view != "" && !views[view] {
			v.add(key, "%q: no such view in snmp.views", view)
		}
	}
	checkAccess := func(key, access string) {
		switch access {
		case "", "ro", "rw":
		default:
			v.add(key, "%q: want ro or rw", access)
		}
	}

	names := map[string]bool{}
	for i, c := range s.Communities {
		key := fmt.Sprintf("snmp.communities[%d]", i)
		switch {
		case c.Name == "":
			v.add(key+".name", "empty: every community needs a name")
		case names[c.Name]:
			v.add(key+".name", "community given twice")
		}
		names[c.Name] = true
		checkAccess(key+".access", c.Access)
		checkView(key+".view", c.View)
		for j, src := range c.Sources {
			if _, err := parsePrefixOrAddr(src); err != nil {
				v.add(fmt.Sprintf("%s.sources[%d]", key, j), "%q: want an address or a CIDR prefix such as 10.0.0.0/8", src)
			}
		}
	}

	users := map[string]bool{}
	for i, u := range s.Users {
		key := fmt.Sprintf("snmp.users[%d]", i)
		switch {
		case u.Name == "":
			v.add(key+".name", "empty: every user needs a name")
		case len(u.Name) > maxUSMName:
			v.add(key+".name", "%q: longer than %d bytes", u.Name, maxUSMName)
		case users[u.Name]:
			v.add(key+".name", "%q: given twice", u.Name)
		}
		users[u.Name] = true
		auth := u.AuthProtocol != "" && u.AuthProtocol != "none"
		priv := u.PrivProtocol != "" && u.PrivProtocol != "none"
		switch u.AuthProtocol {
		case "", "none", "md5", "sha", "sha224", "sha256", "sha384", "sha512":
		default:
			v.add(key+".auth_protocol", "%q: want none, md5, sha, sha224, sha256, sha384 or sha512", u.AuthProtocol)
		}
		switch u.PrivProtocol {
		case "", "none", "des", "aes", "aes192", "aes256":
		default:
			v.add(key+".priv_protocol", "%q: want none, des, aes, aes192 or aes256", u.PrivProtocol)
		}
		if auth && len(u.AuthPassword) < minUSMPassword {
			v.add(key+".auth_password", "want at least %d characters", minUSMPassword)
		}
		if !auth && u.AuthPassword != "" {
			v.add(key+".auth_password", "set without auth_protocol")
		}
		if priv && !auth {
			v.add(key+".priv_protocol", "%q without auth_protocol: privacy needs authentication", u.PrivProtocol)
		}
		if priv && len(u.PrivPassword) < minUSMPassword {
			v.add(key+".priv_password", "want at least %d characters", minUSMPassword)
		}
		if !priv && u.PrivPassword != "" {
			v.add(key+".priv_password", "set without priv_protocol")
		}
		checkAccess(key+".access", u.Access)
		checkView(key+".view", u.View)
	}

	for i, t := range s.TrapTargets {
		if err := checkTrapTarget(t); err != nil {
			v.add(fmt.Sprintf("snmp.trap_targets[%d]", i), "%q: %v", t, err)
		}
	}
	if s.StateDir == "" || !filepath.IsAbs(s.StateDir) {
		v.add("snmp.state_dir", "%q: want an absolute directory path such as %s", s.StateDir, DefaultSNMPStateDir)
	}
	if s.EngineID != "" {
		if err := checkEngineID(s.EngineID); err != nil {
			v.add("snmp.engine_id", "%q: %v", s.EngineID, err)
		}
	}
	if !(s.NotificationRate > 0 && s.NotificationRate <= maxNotificationRate) {
		v.add("snmp.notification_rate", "%v: want a number above 0, at most %d", s.NotificationRate, maxNotificationRate)
	}
	if s.NotificationBurst < 1 || s.NotificationBurst > maxNotificationRate {
		v.add("snmp.notification_burst", "%d: want 1 to %d", s.NotificationBurst, maxNotificationRate)
	}
}

// checkEngineID checks an snmpEngineID in hexadecimal (optional 0x): 5 to
// 32 bytes, not all zeros or all ff (RFC 3411 SnmpEngineID).
func checkEngineID(s string) error {
	id, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	switch {
	case err != nil:
		return fmt.Errorf("want hexadecimal digits such as 8000fb8f05a1b2c3d4e5f60708")
	case len(id) < 5 || len(id) > 32:
		return fmt.Errorf("%d bytes, want 5 to 32", len(id))
	case bytes.Count(id, []byte{0}) == len(id) || bytes.Count(id, []byte{0xff}) == len(id):
		return fmt.Errorf("all zeros or all ff: not a valid engine ID")
	}
	return nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkOID checks a numeric OID such as 1.3.6.1.2.1 (a leading dot is
// allowed).
func checkOID(s string) error {
	t := strings.TrimPrefix(s, ".")
	parts := strings.Split(t, ".")
	if t == "" || len(parts) < 2 || len(parts) > 128 {
		return fmt.Errorf("want a numeric OID such as 1.3.6.1.2.1")
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return fmt.Errorf("want a numeric OID such as 1.3.6.1.2.1")
		}
	}
	if parts[0] != "0" && parts[0] != "1" && parts[0] != "2" {
		return fmt.Errorf("want a numeric OID starting with 0, 1 or 2")
	}
	return nil
}

// checkTrapTarget checks [udp:]HOST[:PORT][?OPTIONS] (IPv6 as [addr]:port
// or a bare address); the options are checked when the agent starts
// (snmp.ParseTrapTarget).
func checkTrapTarget(s string) error {
	s, _, _ = strings.Cut(strings.TrimPrefix(s, "udp:"), "?")
	if s == "" {
		return fmt.Errorf("empty: want HOST or HOST:PORT")
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	}
	if host == "" {
		return fmt.Errorf("want HOST or HOST:PORT such as 192.0.2.1:162")
	}
	if err := checkHost(host); err != nil {
		return err
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1 to 65535", port)
		}
	}
	return nil
}

func (c Control) validate(v *validator) {
	switch {
	case c.Socket == "":
		v.add("control.socket", "empty: want the path of the control socket, such as %s", DefaultControlSocket)
	case !filepath.IsAbs(c.Socket):
		v.add("control.socket", "%q: want an absolute path", c.Socket)
	case len(c.Socket) > maxUnixPath:
		v.add("control.socket", "%q: longer than %d bytes, the limit of a Unix socket path", c.Socket, maxUnixPath)
	}
}

func (l Log) validate(v *validator) {
	if _, err := l.SlogLevel(); err != nil {
		v.addErr(err)
	}
	switch l.Format {
	case "text", "json":
	default:
		v.add("log.format", "%q: want text or json", l.Format)
	}
}

// SlogLevel parses log.level.
func (l Log) SlogLevel() (slog.Level, error) {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, keyErr("log.level", "%q: want debug, info, warn or error", l.Level)
}
