package config

import (
	"fmt"
	"reflect"
	"strings"
)

// The SNMP list keys (communities, users, views) are mappings in the file.
// Flags and environment variables give each element in a compact text
// form instead: white-space separated key=value pairs named as in the file,
// list fields repeated ("name=tcp included=1.3.6.1.2.1.1
// included=1.3.6.1.2.1.6"). Values cannot contain white space (nor commas,
// in an environment variable, where commas separate the elements).

// UnmarshalText parses "name=NAME access=ro|rw view=VIEW sources=PREFIX".
func (c *Community) UnmarshalText(b []byte) error { return parseFields(string(b), c) }

// UnmarshalText parses "name=NAME auth_protocol=P auth_password=S
// priv_protocol=P priv_password=S access=ro|rw view=VIEW".
func (u *User) UnmarshalText(b []byte) error { return parseFields(string(b), u) }

// UnmarshalText parses "name=NAME included=OID ... excluded=OID ...".
func (v *View) UnmarshalText(b []byte) error { return parseFields(string(b), v) }

// parseFields fills the struct out points to from key=value tokens, keys
// being the fields' yaml names; string fields take one value, []string
// fields collect every occurrence. Values are not quoted in errors: they
// may be passwords.
func parseFields(s string, out any) error {
	v := reflect.ValueOf(out).Elem()
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		n := yamlName(t.Field(i))
		fields[n] = i
		names = append(names, n)
	}
	set := map[string]bool{}
	tokens := strings.Fields(s)
	if len(tokens) == 0 {
		return fmt.Errorf("empty; want key=value pairs with keys %s", orList(names))
	}
	for n, tok := range tokens {
		k, val, ok := strings.Cut(tok, "=")
		i, known := fields[k]
		switch {
		case !ok:
			return fmt.Errorf("word %d is not key=value (values cannot contain white space); want keys %s", n+1, orList(names))
		case !known:
			return fmt.Errorf("unknown key %q; want %s", k, orList(names))
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			if set[k] {
				return fmt.Errorf("key %q given twice", k)
			}
			f.SetString(val)
		case reflect.Slice:
			f.Set(reflect.Append(f, reflect.ValueOf(val)))
		}
		set[k] = true
	}
	return nil
}

// orList renders "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
