// Package layers holds one test: that imports point down tcptap's
// pipeline — capture, then connection tracking, classification, the record,
// the cache and the outputs, then the daemon and the commands — so a reader
// follows a packet downward and no package reaches back up.
package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tcptap/tcptap/"

// layers is tcptap's pipeline from the bottom up: a package may import
// packages of lower layers only (a package of a layer includes its
// sub-packages, which may import each other). docs/architecture.md draws
// the same order.
var layers = [][]string{
	{"capture"},           // frames to decoded segments
	{"acl", "tcpstate"},   // the trace filter language; the names of observed TCP
	{"flightrec"},         // packet records, rings, the trace quota
	{"reassembly"},        // connection tracking
	{"classifier"},        // why a connection ended
	{"record"},            // the connection record
	{"cache"},             // the trace cache of closed connections
	{"exporter"},          // metrics, record outputs, API, views
	{"config"},            // the configuration file
	{"snmp", "pipeline"},  // the SNMP agent; the worker read and run share
	{"daemon", "offline"}, // live sensor; capture files
	{"cmd"},               // the commands
}

// narrower lists imports that the layers allow but a package must not need:
// the cache keeps records and flight recordings, not the tracker's
// connections.
var narrower = map[string][]string{
	"cache": {"reassembly"},
}

// rank returns pkg's layer and the name that placed it there, or -1 for
// packages outside the pipeline (internal test support).
func rank(pkg string) (int, string) {
	for i, l := range layers {
		for _, name := range l {
			if pkg == name || strings.HasPrefix(pkg, name+"/") {
				return i, name
			}
		}
	}
	return -1, ""
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
		r, top := rank(pkg)
		if r < 0 {
			continue
		}
		checked++
		for _, imp := range f[1:] {
			imp, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if slices.Contains(narrower[pkg], imp) {
				t.Errorf("%s imports %s, which it must not need", pkg, imp)
			}
			ir, itop := rank(imp)
			if ir < 0 || ir < r || itop == top {
				continue
			}
			t.Errorf("%s imports %s: imports must point down the pipeline (layer %d imports layer %d)", pkg, imp, r, ir)
		}
	}
	if checked < 15 {
		t.Fatalf("only %d packages checked: is go list seeing the module?", checked)
	}
}
