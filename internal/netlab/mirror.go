package netlab

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// Remote mirroring: the tap's bridge port traffic copied into a VXLAN
// tunnel towards a sensor namespace, as a switch's remote SPAN or a cloud's
// traffic mirroring delivers it.

// Addresses of the mirror link between the tap and the sensor (a /30 of
// their own, inside the lab's namespaces only).
const (
	MirrorTapAddr    = "10.202.0.1"
	MirrorSensorAddr = "10.202.0.2"
	// MirrorSensorLink is the sensor's interface that receives the tunnel.
	MirrorSensorLink = "mir1"
	mirrorTapLink    = "mir0"
	mirrorVXLAN      = "vxlan0"
	// mirrorMTU leaves room for the 50 bytes of VXLAN encapsulation of a
	// full-size frame, so the outer packets are not fragmented.
	mirrorMTU = 1600
)

// MirrorVXLAN creates a sensor namespace linked to the tap by a veth pair
// and mirrors every frame that enters or leaves the tap's bridge port port
// (ClientPort or ServerPort) into a VXLAN tunnel (VNI vni, UDP port
// dstPort) to the sensor (tc's mirred action on the port's ingress and
// egress). The sensor receives the tunnelled frames on MirrorSensorLink;
// it is removed with the lab.
func (l *Lab) MirrorVXLAN(t testing.TB, port string, vni uint32, dstPort uint16) *Namespace {
	t.Helper()
	sensor := &Namespace{Name: strings.TrimSuffix(l.Tap.Name, "t") + "m", Role: RoleTap, Link: MirrorSensorLink, fd: -1}
	l.extra = append(l.extra, sensor)
	if err := l.mirrorVXLAN(sensor, port, vni, dstPort); err != nil {
		t.Fatalf("netlab: VXLAN mirror of %s to %s: %v", port, sensor.Name, err)
	}
	return sensor
}

func (l *Lab) mirrorVXLAN(sensor *Namespace, port string, vni uint32, dstPort uint16) error {
	if err := sensor.create(); err != nil {
		return err
	}
	tap, sn := l.Tap.Name, sensor.Name
	mtu := strconv.Itoa(mirrorMTU)
	cmds := [][]string{
		{"ip", "-n", tap, "link", "add", mirrorTapLink, "mtu", mtu, "type", "veth", "peer", "name", MirrorSensorLink, "mtu", mtu, "netns", sn},
		{"ip", "-n", tap, "addr", "add", MirrorTapAddr + "/30", "dev", mirrorTapLink},
		{"ip", "-n", sn, "addr", "add", MirrorSensorAddr + "/30", "dev", MirrorSensorLink},
		{"ip", "-n", tap, "link", "set", mirrorTapLink, "up"},
		{"ip", "-n", sn, "link", "set", MirrorSensorLink, "up"},
		{"ip", "-n", sn, "link", "set", "lo", "up"},
		{"ip", "-n", tap, "link", "add", mirrorVXLAN, "type", "vxlan", "id", strconv.FormatUint(uint64(vni), 10),
			"local", MirrorTapAddr, "remote", MirrorSensorAddr, "dstport", strconv.Itoa(int(dstPort)), "dev", mirrorTapLink},
		{"ip", "-n", tap, "link", "set", mirrorVXLAN, "up"},
		{"tc", "-n", tap, "qdisc", "add", "dev", port, "clsact"},
		{"tc", "-n", tap, "filter", "add", "dev", port, "ingress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", mirrorVXLAN},
		{"tc", "-n", tap, "filter", "add", "dev", port, "egress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", mirrorVXLAN},
	}
	for _, c := range cmds {
		if out, err := run(c[0], c[1:]...); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, out)
		}
	}
	if err := l.Tap.Do(func() error { return disableOffloads(mirrorTapLink) }); err != nil {
		return err
	}
	return sensor.Do(func() error { return disableOffloads(MirrorSensorLink) })
}

// create adds the namespace and opens it.
func (n *Namespace) create() error {
	if out, err := run("ip", "netns", "add", n.Name); err != nil {
		return fmt.Errorf("ip netns add %s: %w: %s", n.Name, err, out)
	}
	n.created = true
	fd, err := openNamespace(n.Name)
	if err != nil {
		return err
	}
	n.fd = fd
	return nil
}
