package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// exampleHeader opens the example file.
var exampleHeader = []string{
	"tcptap configuration: every key, each set to its default value.",
	"",
	"tcptap run reads /etc/tcptap/tcptap.yaml when it exists, or the file named",
	"with --config FILE (or TCPTAP_CONFIG). Every key can also be set in the",
	"environment as TCPTAP_SECTION_KEY (TCPTAP_TRACE_CACHE_MODE=all) and as a",
	"flag of tcptap run, --section.key (--trace.cache_mode all). A flag wins over",
	"the environment, the environment over this file, this file over the",
	"default. Unknown keys and invalid values are refused at start, naming the",
	"key.",
	"",
	"Lists: in this file a YAML list; as a flag, repeat it or separate items",
	"with commas; in the environment, separate items with commas.",
	"Sizes: bytes, with an optional unit B, KB, MB, GB (powers of 1000) or",
	"KiB, MiB, GiB (powers of 1024): 100MiB, 64MB, 1048576.",
	"Durations: a number with a unit ns, us, ms, s, m or h: 300ms, 5s, 2m, 1h30m.",
}

// commentWidth is where the example's comment lines wrap.
const commentWidth = 78

// Example returns the commented example configuration file: every key with
// its help, its documentation and its default value, from the same table
// as the flags' help (deploy/tcptap.example.yaml is this text).
func Example() []byte {
	var b bytes.Buffer
	for _, l := range exampleHeader {
		writeComment(&b, "", l)
	}
	section, sub := "", ""
	for _, k := range Keys() {
		if k.Section() != section {
			section, sub = k.Section(), ""
			b.WriteString("\n")
			for _, l := range sectionDocs[section] {
				writeComment(&b, "", l)
			}
			b.WriteString(section + ":\n")
		} else {
			b.WriteString("\n")
		}
		// A key one level down (output.file.path) sits under its
		// mapping (file:), written before its first key.
		indent, field := "  ", k.Field()
		if s, f, nested := strings.Cut(field, "."); nested {
			if s != sub {
				sub = s
				b.WriteString("  " + s + ":\n")
			}
			indent, field = "    ", f
		} else {
			sub = ""
		}
		for _, l := range wrap(sentence(k.Help), commentWidth-len(indent)-2) {
			writeComment(&b, indent, l)
		}
		for _, l := range k.Doc {
			writeComment(&b, indent, l)
		}
		writeComment(&b, indent, "Default: "+describe(k.Default())+".")
		val := valueNode(reflect.ValueOf(k.Default()), true)
		b.Write(renderPair(field, val, indent))
	}
	return b.Bytes()
}

func writeComment(b *bytes.Buffer, indent, line string) {
	if line == "" {
		b.WriteString(indent + "#\n")
		return
	}
	b.WriteString(indent + "# " + line + "\n")
}

// sentence capitalises s and ends it with a period.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// wrap breaks s into lines of at most width bytes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// describe renders a default value for a comment.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "empty"
		}
		return x
	case time.Duration:
		return FormatDuration(x)
	case bool, int, uint32, float64:
		return fmt.Sprint(x)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		if rv.Len() == 0 {
			return "none"
		}
		var parts []string
		for i := range rv.Len() {
			parts = append(parts, fmt.Sprint(rv.Index(i).Interface()))
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// valueNode returns the YAML node of a key's value: durations as 5m rather
// than 5m0s, lists in flow style when flow is set (else block style, but
// an empty list is always []).
func valueNode(v reflect.Value, flow bool) *yaml.Node {
	if d, ok := v.Interface().(time.Duration); ok {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: FormatDuration(d)}
	}
	if v.Kind() == reflect.Slice && v.Len() == 0 {
		return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		panic(fmt.Sprintf("config: encoding %v: %v", v.Interface(), err))
	}
	if n.Kind == yaml.SequenceNode && flow {
		n.Style |= yaml.FlowStyle
	}
	quote(n)
	return n
}

// quote double-quotes string scalars with a colon or a flow indicator
// (addresses such as ":9911" or "127.0.0.1:161"), which yaml would leave
// plain or single-quote depending on the context.
func quote(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Style == 0 && strings.ContainsAny(n.Value, ":#,[]{}") {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quote(c)
	}
}

// renderPair renders "key: value" (with the line comments of the nodes) as
// YAML lines, each prefixed with indent.
func renderPair(key string, val *yaml.Node, indent string) []byte {
	return renderNodePair(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, val, indent)
}

func renderNodePair(key, val *yaml.Node, indent string) []byte {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{key, val}}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		panic(fmt.Sprintf("config: encoding %s: %v", key.Value, err))
	}
	_ = enc.Close()
	var out bytes.Buffer
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if l == "" {
			continue
		}
		out.WriteString(indent + l)
	}
	return out.Bytes()
}
