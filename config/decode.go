package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode parses a YAML configuration file over the defaults: keys the file
// leaves out keep their default. Unknown keys are errors (see CheckKeys for
// all of them with line numbers). It does not validate.
func Decode(data []byte) (Config, error) {
	c := Default()
	if err := CheckKeys(data); err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, err
	}
	return c, nil
}

// CheckKeys reports every key of a YAML configuration file that is not a
// configuration key, as *KeyError values with the line and, when a known
// key is close, a suggestion: "trace.cache_mod: unknown key (line 12); did
// you mean trace.cache_mode?". A file that is not YAML is an error too.
func CheckKeys(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	var v validator
	checkNode(&v, root, reflect.TypeFor[Config](), "")
	return v.err()
}

func checkNode(v *validator, n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			fields[yamlName(t.Field(i))] = t.Field(i)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // a merge key: check what it merges
				checkNode(v, val, t, path)
				continue
			}
			name := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key (line %d)", k.Line)
				if s := suggest(name, path, fields); s != "" {
					msg += "; did you mean " + s + "?"
				}
				v.errs = append(v.errs, &KeyError{Key: name, Err: errors.New(msg)})
				continue
			}
			checkNode(v, val, f.Type, name)
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		// "trace:" with nothing under it: the defaults.
	case t.Kind() == reflect.Struct && n.Kind == yaml.ScalarNode && n.Tag == "!!str" &&
		reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()):
		// The compact text form of a list element.
	case t.Kind() == reflect.Struct:
		key := path
		if key == "" {
			key = "(top level)"
		}
		v.errs = append(v.errs, &KeyError{Key: key, Err: fmt.Errorf("want a mapping of keys (line %d)", n.Line)})
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && n.Kind == yaml.SequenceNode:
		for i, e := range n.Content {
			checkNode(v, e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// suggest returns the known key closest to name, if it is close: a sibling
// or, for a key in a section, any key of any section.
func suggest(name, path string, siblings map[string]reflect.StructField) string {
	var cands []string
	for s := range siblings {
		cands = append(cands, join(path, s))
	}
	if !strings.Contains(path, "[") {
		for _, k := range Keys() {
			cands = append(cands, k.Name)
		}
	}
	best, bestD := "", 0
	for _, c := range cands {
		d := editDistance(strings.ToLower(name), c)
		if best == "" || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	// Close: a few edits, or the same key in another section.
	if best != "" && (bestD <= 2 || bestD <= len(name)/4) {
		return best
	}
	last := name[strings.LastIndexByte(name, '.')+1:]
	for _, c := range cands {
		if strings.HasSuffix(c, "."+last) {
			return c
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
