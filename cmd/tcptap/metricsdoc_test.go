package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tcptap/tcptap/exporter/metrics"
	"github.com/tcptap/tcptap/exporter/output"
)

var updateMetricsDoc = flag.Bool("update-metrics-doc", false, "rewrite docs/metrics.md's table from the registry")

const metricsDoc = "../../docs/metrics.md"

// descRE takes a prometheus.Desc apart as its String method prints it.
var descRE = regexp.MustCompile(`fqName: "([^"]*)", help: "((?:[^"\\]|\\.)*)", (?:unit: "[^"]*", )?constLabels: \{[^}]*\}, variableLabels: \{([^}]*)\}`)

// metricFamilies describes every family tcptap run can export: the
// connection, capture, trace and cache collectors (with a port label, so
// the per-port family is there too) and the record outputs'.
func metricFamilies(t *testing.T) []string {
	t.Helper()
	outs, err := output.New(output.Config{}, output.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer outs.Close()
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		metrics.New(func() *metrics.Snapshot { return &metrics.Snapshot{} }, metrics.Options{PortLabels: []uint16{443}}).Describe(ch)
		outs.Collector().Describe(ch)
		close(ch)
	}()
	var rows []string
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		labels := "—"
		if m[3] != "" {
			labels = "`" + strings.ReplaceAll(m[3], ",", "`, `") + "`"
		}
		help := strings.ReplaceAll(strings.ReplaceAll(m[2], `\"`, `"`), "|", `\|`)
		rows = append(rows, fmt.Sprintf("| `%s` | %s | %s |", m[1], labels, help))
	}
	sort.Strings(rows)
	return rows
}

// TestMetricsDoc: docs/metrics.md lists exactly the families the registry
// describes, with their labels and help (go test ./cmd/tcptap -run
// TestMetricsDoc -update-metrics-doc rewrites its table); the README points
// there for the whole list.
func TestMetricsDoc(t *testing.T) {
	rows := metricFamilies(t)
	b, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- begin: generated from the registry -->\n", "<!-- end -->\n"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q and %q markers", metricsDoc, begin, end)
	}
	table := "| family | labels | help |\n|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	if *updateMetricsDoc {
		s = s[:i+len(begin)] + table + s[j:]
		if err := os.WriteFile(metricsDoc, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := s[i+len(begin) : j]; got != table {
		t.Errorf("%s's table is not the registry's (%d families): run go test ./cmd/tcptap -run TestMetricsDoc -update-metrics-doc", metricsDoc, len(rows))
	}
}
