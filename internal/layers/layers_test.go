// Package layers holds one test: that imports point down tcptap's
// pipeline — capture, then connection tracking, classification, the record,
// the cache and the outputs, then the daemon and the commands — so a reader
// follows a packet downward and no package reaches back up.
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tcptap/tcptap/"

// forbidden lists, for each package (a prefix: its sub-packages too), the
// packages it must not import.
var forbidden = map[string][]string{
	"capture":    {"acl", "reassembly", "classifier", "record", "cache", "exporter", "config", "daemon", "offline", "snmp", "cmd"},
	"acl":        {"reassembly", "classifier", "record", "cache", "exporter", "config", "daemon", "offline", "snmp", "cmd"},
	"reassembly": {"classifier", "record", "cache", "exporter", "config", "daemon", "offline", "snmp", "cmd"},
	"classifier": {"record", "cache", "exporter", "config", "daemon", "offline", "snmp", "cmd"},
	"record":     {"cache", "exporter", "config", "daemon", "offline", "snmp", "cmd"},
	"cache":      {"exporter", "config", "daemon", "offline", "snmp", "cmd"},
	"exporter":   {"daemon", "offline", "snmp", "cmd"},
	"snmp":       {"daemon", "offline", "cmd"},
	"config":     {"daemon", "offline", "snmp", "cmd"},
	"daemon":     {"offline", "snmp", "cmd"},
	"offline":    {"daemon", "snmp", "cmd"},
}

func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		for layer, bad := range forbidden {
			if pkg != layer && !strings.HasPrefix(pkg, layer+"/") {
				continue
			}
			checked++
			for _, imp := range f[1:] {
				imp, ok := strings.CutPrefix(imp, module)
				if !ok {
					continue
				}
				for _, b := range bad {
					if imp == b || strings.HasPrefix(imp, b+"/") {
						t.Errorf("%s imports %s: imports must point down the pipeline", pkg, imp)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked: is go list seeing the module?", checked)
	}
}
