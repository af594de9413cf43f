package snmp

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// The IETF modules TCPTAP-MIB imports (SNMPv2-SMI, SNMPv2-TC, SNMPv2-CONF,
// SNMP-FRAMEWORK-MIB, INET-ADDRESS-MIB) are in Debian's non-free
// snmp-mibs-downloader only; testdata/mibs has minimal stand-ins, searched
// after the system directories so the real modules win when installed.
var systemMIBDirs = []string{"/usr/share/snmp/mibs", "/usr/share/snmp/mibs/iana", "/usr/share/snmp/mibs/ietf"}

func mibDirs(t *testing.T) string {
	t.Helper()
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(append(append([]string{}, systemMIBDirs...), here, filepath.Join(here, "testdata", "mibs")), ":")
}

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: apt-get install %s", tool, pkg)
		}
		t.Skipf("%s missing (apt-get install %s): skipping", tool, pkg)
	}
}

// TestMIBFileSmilint: TCPTAP-MIB.txt has no smilint errors (severity 1 to
// 3) at level 4.
func TestMIBFileSmilint(t *testing.T) {
	needTool(t, "smilint", "smitools")
	cmd := exec.Command("smilint", "-l", "4", "-s", "TCPTAP-MIB.txt")
	cmd.Env = append(os.Environ(), "SMIPATH="+mibDirs(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("smilint: %v\n%s", err, out)
	}
	errRE := regexp.MustCompile(`: \[[0-3]\] `)
	for _, l := range lines(string(out)) {
		if errRE.MatchString(l) {
			t.Errorf("smilint: %s", l)
		}
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Logf("smilint:\n%s", s)
	}
}

func snmptranslate(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"-M", mibDirs(t), "-m", "+TCPTAP-MIB"}, args...)
	cmd := exec.Command("snmptranslate", args...)
	cmd.Env = append(os.Environ(), "SNMPCONFPATH=/nonexistent")
	out, err := cmd.Output() // stderr: complaints about other default MIBs
	if err != nil {
		t.Fatalf("snmptranslate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestMIBFileNetSNMP: net-snmp loads TCPTAP-MIB, its names translate to
// the OIDs the code uses, and every OID the agent serves under the
// enterprise arc is an instance of a MIB object of a matching syntax.
func TestMIBFileNetSNMP(t *testing.T) {
	needTool(t, "snmptranslate", "snmp")
	for name, want := range map[string]OID{
		"tcptapMIB":                     TCPTAPMIB,
		"tcptapAgent":                   SysObjectID,
		"tcptapTraceEnable":             tcptapTrace.Append(1),
		"tcptapCacheInterface":          tcptapObjects.Append(4, 1, 13),
		"tcptapCaptureIfIndex":          tcptapObjects.Append(6, 1, 3),
		"tcptapCaptureConnections":      tcptapObjects.Append(6, 1, 13),
		"tcptapAbnormalClose":           abnormalCloseOID,
		"tcptapNotificationsSuppressed": suppressedOID,
	} {
		out := strings.TrimSpace(snmptranslate(t, "-On", "TCPTAP-MIB::"+name))
		if out != want.String() {
			t.Errorf("TCPTAP-MIB::%s = %q, code uses %s", name, out, want)
		}
	}
	for _, o := range []OID{notifyAddrTypeOID, notifyLocalAddrOID, notifyLocalPortOID, notifyRemoteAddrOID, notifyRemotePortOID, notifyReasonOID} {
		if out := snmptranslate(t, "-OS", o.String()); !strings.HasPrefix(out, "TCPTAP-MIB::tcptapNotify") {
			t.Errorf("%s translates to %q", o, out)
		}
	}

	// name -> OID from -Tz, name -> (access, type) from -Tp.
	byOID := map[string]string{}
	zRE := regexp.MustCompile(`^"([^"]+)"\s+"([0-9.]+)"$`)
	for _, l := range lines(snmptranslate(t, "-Tz")) {
		if m := zRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			byOID["."+m[2]] = m[1]
		}
	}
	type leaf struct{ access, syntax string }
	leaves := map[string]leaf{}
	pRE := regexp.MustCompile(`-- (-[-A-Z]{3}) +(\S+) +([A-Za-z0-9]+)\(\d+\)`)
	for _, l := range lines(snmptranslate(t, "-Tp", "TCPTAP-MIB::tcptapMIB")) {
		if m := pRE.FindStringSubmatch(l); m != nil {
			leaves[m[3]] = leaf{m[1], m[2]}
		}
	}
	if len(leaves) < 40 {
		t.Fatalf("-Tp found %d objects: %v", len(leaves), leaves)
	}
	syntaxOf := map[gosnmp.Asn1BER][]string{
		gosnmp.Integer:     {"Integer32", "INTEGER", "EnumVal"},
		gosnmp.OctetString: {"String", "OCTET", "OctetString"},
		gosnmp.Counter64:   {"Counter64"},
		gosnmp.Gauge32:     {"Gauge", "Unsigned", "Gauge32", "Unsigned32"},
	}

	h, _ := testAgent(t)
	n := &Notifier{}
	if err := h.Tree.Register(n.Provider()); err != nil {
		t.Fatal(err)
	}
	r := &Request{Ctx: context.Background(), memo: map[any]any{}}
	served := 0
	for oid := Enterprise; ; {
		next, v, ok := h.Tree.Next(r, oid)
		if !ok || !next.HasPrefix(Enterprise) {
			break
		}
		oid = next
		served++
		// Every object here is a scalar (instance .0) or a column of a
		// table with one index subidentifier.
		name := byOID[next[:len(next)-1].String()]
		l, isLeaf := leaves[name]
		if name == "" || !isLeaf {
			t.Errorf("%s served: no object %s in TCPTAP-MIB", next, next[:len(next)-1])
			continue
		}
		if l.access == "----" || l.access == "-N--" {
			t.Errorf("%s served: %s is %s", next, name, l.access)
		}
		okType := false
		for _, s := range syntaxOf[v.Type] {
			okType = okType || strings.EqualFold(l.syntax, s)
		}
		if !okType {
			t.Errorf("%s (%s): served as %v, MIB syntax %s", next, name, v.Type, l.syntax)
		}
	}
	if served < 50 {
		t.Errorf("walked %d objects", served)
	}
}

// TestREADMEMIBCommand: the README's snmpwalk -M ... -m TCPTAP-MIB
// command loads the MIB on stock Debian net-snmp (no IETF MIBs
// installed): snmptranslate with the same options, from the repository
// root, names a TCPTAP-MIB object without a warning.
func TestREADMEMIBCommand(t *testing.T) {
	needTool(t, "snmptranslate", "snmp")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`snmpwalk (-M \\S+) (-m \\S+) [^`]*`").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no `snmpwalk -M DIRS -m TCPTAP-MIB ...` command")
	}
	args := append(strings.Fields(string(m[1])), strings.Fields(string(m[2]))...)
	cmd := exec.Command("snmptranslate", append(args, ".1.3.6.1.4.1.64399.1.1.1.1.0")...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "MIBS=", "MIBDIRS=", "SNMPCONFPATH=/nonexistent")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "TCPTAP-MIB::tcptapTraceEnable.0" || stderr.Len() > 0 {
		t.Errorf("snmptranslate %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
}
