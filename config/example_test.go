package config

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite "+exampleFile+" from Example()")

const exampleFile = "../deploy/tcptap.example.yaml"

// The shipped example is Example(): regenerate it with
// go test ./config -run TestExampleFile -update.
func TestExampleFile(t *testing.T) {
	want := Example()
	if *update {
		if err := os.WriteFile(exampleFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not Example(): run go test ./config -run TestExampleFile -update", exampleFile)
	}
}

// The example parses, validates, and (since every value in it is the
// default) decodes to Default().
func TestExampleDecodes(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	// Strictly, with yaml itself, not only through Decode.
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the example does not validate: %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("the example decodes to\n%+v\nwant Default()\n%+v", c, Default())
	}
	if err := CheckKeys(data); err != nil {
		t.Error(err)
	}
}

// Every field of Config, walked with reflect, is a key of the example, and
// every field of the list elements (communities, users, views) appears in
// the example's commented samples: the example cannot fall behind the
// struct.
func TestExampleHasEveryField(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		section := lookup(root, yamlName(sf))
		if section == nil {
			t.Errorf("section %s missing", yamlName(sf))
			continue
		}
		checkExampleFields(t, section, sf.Type, yamlName(sf))
	}
}

// checkExampleFields checks the fields of struct type st in mapping
// section, and those of nested mappings (output.file) in theirs.
func checkExampleFields(t *testing.T, section *yaml.Node, st reflect.Type, prefix string) {
	for j := range st.NumField() {
		f := st.Field(j)
		name := prefix + "." + yamlName(f)
		n := lookup(section, yamlName(f))
		if n == nil {
			t.Errorf("key %s missing", name)
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			checkExampleFields(t, n, f.Type, name)
			continue
		}
		if !strings.Contains(keyComments(section, yamlName(f)), "Default: ") {
			t.Errorf("key %s: no comment giving its default", name)
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			et := f.Type.Elem()
			for k := range et.NumField() {
				sub := yamlName(et.Field(k))
				if !strings.Contains(keyComments(section, yamlName(f)), sub+":") {
					t.Errorf("%s: the commented example shows no %s", name, sub)
				}
			}
		}
	}
}

// keyComments returns the comment lines above key in mapping m.
func keyComments(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].HeadComment
		}
	}
	return ""
}

func TestExampleComments(t *testing.T) {
	for _, l := range strings.Split(string(Example()), "\n") {
		if len([]rune(l)) > 100 {
			t.Errorf("line longer than 100 characters: %q", l)
		}
		if strings.TrimRight(l, " ") != l {
			t.Errorf("trailing space: %q", l)
		}
	}
	if got := describe(5 * time.Minute); got != "5m" {
		t.Errorf("describe(5m) = %q", got)
	}
}
