package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PersistTrace writes t into the trace section of the YAML configuration
// file at path ('tcptap trace persist'), so that the trace configuration
// survives a restart. Every key of the section is written; the file's
// other sections, its comments and its layout are kept byte for byte, and
// so are the comments in the trace section (the lines of a changed value
// are rewritten). A missing file is created (mode 0600: it may hold SNMP
// secrets), a missing section or key is added. The file is replaced
// atomically: a temporary file in the same directory, synced, renamed over
// it with the old file's mode (and owner, when permitted); a symbolic link
// is followed, not replaced. A file that is not YAML, whose top level is
// not a mapping or which holds several documents is left alone and
// reported.
func PersistTrace(path string, t Trace) error {
	target := path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		target = p
	}
	perm := fs.FileMode(0o600)
	var owner *fileOwner
	data, err := os.ReadFile(target)
	switch {
	case err == nil:
		fi, err := os.Stat(target)
		if err != nil {
			return fmt.Errorf("persisting the trace configuration: %w", err)
		}
		perm = fi.Mode().Perm()
		owner = ownerOf(fi)
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	default:
		return fmt.Errorf("persisting the trace configuration: %w", err)
	}
	out, err := spliceTrace(data, t)
	if err != nil {
		return fmt.Errorf("persisting the trace configuration into %s: %w", path, err)
	}
	if err := writeAtomic(target, out, perm, owner); err != nil {
		return fmt.Errorf("persisting the trace configuration: %w", err)
	}
	return nil
}

// errFallback: the text splice does not handle this layout; re-encode the
// document instead.
var errFallback = errors.New("layout not handled by the text splice")

// spliceTrace returns data with its trace section set to t: edited as text
// where it can (everything else kept exactly), else re-encoded through the
// yaml node tree (comments kept, blank lines lost). Either result is
// checked: the trace section decodes to t and every other key is
// unchanged.
func spliceTrace(data []byte, t Trace) ([]byte, error) {
	if err := checkDocument(data); err != nil {
		return nil, err
	}
	out, err := spliceText(data, t)
	if err == nil {
		err = verifySplice(data, out, t)
	}
	if err == nil {
		return out, nil
	}
	if !errors.Is(err, errFallback) && !errors.Is(err, errVerify) {
		return nil, err
	}
	out, err = reencode(data, t)
	if err != nil {
		return nil, err
	}
	if err := verifySplice(data, out, t); err != nil {
		return nil, err
	}
	return out, nil
}

// checkDocument refuses what PersistTrace must not rewrite: a file that is
// not YAML, or holds several documents, or whose top level is not a
// mapping.
func checkDocument(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not valid YAML (fix it by hand first): %w", err)
		}
		docs = append(docs, n)
	}
	if len(docs) > 1 {
		return fmt.Errorf("holds %d YAML documents; tcptap reads only the first: merge them by hand first", len(docs))
	}
	if len(docs) == 1 && len(docs[0].Content) > 0 {
		root := docs[0].Content[0]
		if root.Kind != yaml.MappingNode && !isNull(root) {
			return fmt.Errorf("the top level is not a mapping of sections (capture:, trace:, ...)")
		}
		if root.Kind == yaml.MappingNode {
			if n := countKey(root, "trace"); n > 1 {
				return fmt.Errorf("key trace appears %d times: remove all but one by hand first", n)
			}
			if tv := lookup(root, "trace"); tv != nil && tv.Kind == yaml.MappingNode {
				for _, k := range traceFields() {
					if n := countKey(tv, k.name); n > 1 {
						return fmt.Errorf("key trace.%s appears %d times: remove all but one by hand first", k.name, n)
					}
				}
			}
			if tv := lookup(root, "trace"); tv != nil && tv.Kind != yaml.MappingNode && tv.Kind != yaml.AliasNode && !isNull(tv) {
				return fmt.Errorf("trace is not a mapping of keys (enable:, filter:, ...)")
			}
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func countKey(m *yaml.Node, key string) int {
	n := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			n++
		}
	}
	return n
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

type traceField struct {
	name  string
	index int
}

func traceFields() []traceField {
	t := reflect.TypeFor[Trace]()
	var out []traceField
	for i := range t.NumField() {
		out = append(out, traceField{yamlName(t.Field(i)), i})
	}
	return out
}

// traceValue returns the node of field f of t, with the comments and (for
// a string or a list) the quoting or flow style of the node it replaces.
func traceValue(t Trace, f traceField, old *yaml.Node) *yaml.Node {
	flow := old != nil && old.Kind == yaml.SequenceNode && old.Style&yaml.FlowStyle != 0
	n := valueNode(reflect.ValueOf(t).Field(f.index), flow)
	if old == nil {
		return n
	}
	n.LineComment = old.LineComment
	if old.Kind == yaml.ScalarNode && n.Kind == yaml.ScalarNode && n.Tag == "!!str" &&
		old.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		n.Style = old.Style & (yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle)
	}
	return n
}

// sameValue reports whether node n already holds field f of t.
func sameValue(n *yaml.Node, t Trace, f traceField) bool {
	want := reflect.ValueOf(t).Field(f.index)
	got := reflect.New(want.Type())
	if err := n.Decode(got.Interface()); err != nil {
		return false
	}
	if want.Kind() == reflect.Slice && want.Len() == 0 && got.Elem().Len() == 0 {
		return true
	}
	return reflect.DeepEqual(got.Elem().Interface(), want.Interface())
}

// edit replaces lines [start, end] (0-based, inclusive; end == start-1
// inserts before start) with repl.
type edit struct {
	start, end int
	repl       []string
}

// spliceText edits the trace section as text.
func spliceText(data []byte, t Trace) ([]byte, error) {
	eol := "\n"
	if bytes.Contains(data, []byte("\r\n")) {
		eol = "\r\n"
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	lines := strings.Split(text, "\n")
	if strings.HasSuffix(text, "\n") || text == "" {
		lines = lines[:len(lines)-1]
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	var edits []edit
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	switch {
	case root == nil:
		// Empty, or only comments: add the section at the end.
		edits = append(edits, appendSection(lines, t))
	case root.Kind != yaml.MappingNode || root.Style&yaml.FlowStyle != 0:
		return nil, errFallback
	default:
		e, err := spliceSection(lines, root, t)
		if err != nil {
			return nil, err
		}
		edits = append(edits, e...)
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	for _, e := range edits {
		tail := append([]string(nil), lines[e.end+1:]...)
		lines = append(append(lines[:e.start], e.repl...), tail...)
	}
	return []byte(strings.Join(lines, eol) + eol), nil
}

// appendSection adds "trace:" and every key after the last line.
func appendSection(lines []string, t Trace) edit {
	var repl []string
	if n := len(lines); n > 0 && strings.TrimSpace(lines[n-1]) != "" {
		repl = append(repl, "")
	}
	repl = append(repl, "trace:")
	for _, f := range traceFields() {
		repl = append(repl, renderLines(renderPair(f.name, traceValue(t, f, nil), "  "))...)
	}
	return edit{start: len(lines), end: len(lines) - 1, repl: repl}
}

func renderLines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// isBoundary reports a line that ends a document's content.
func isBoundary(l string) bool {
	return strings.HasPrefix(l, "---") || strings.HasPrefix(l, "...")
}

func blankOrComment(l string) bool {
	s := strings.TrimSpace(l)
	return s == "" || strings.HasPrefix(s, "#")
}

// regionEnd returns the last line of the value that starts on line start
// (0-based) when the next key starts on line next (0-based; len(lines)
// when none): the line before next, or before a document marker, without
// the blank and comment lines that precede the next key.
func regionEnd(lines []string, start, next int) int {
	end := next - 1
	for i := start + 1; i <= end; i++ {
		if isBoundary(lines[i]) {
			end = i - 1
			break
		}
	}
	for end > start && blankOrComment(lines[end]) {
		end--
	}
	return end
}

// spliceSection returns the edits of the trace section of root, a block
// mapping.
func spliceSection(lines []string, root *yaml.Node, t Trace) ([]edit, error) {
	ti := -1
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "trace" {
			ti = i
		}
	}
	if ti < 0 {
		return []edit{appendSection(lines, t)}, nil
	}
	tk, tv := root.Content[ti], root.Content[ti+1]
	next := len(lines)
	if ti+2 < len(root.Content) {
		next = root.Content[ti+2].Line - 1
	}
	start := tk.Line - 1
	if !startsWithKey(lines, tk, "trace") {
		return nil, errFallback
	}
	sectionEnd := regionEnd(lines, start, next)

	if isNull(tv) {
		// "trace:" with no keys: rewrite its line, add every key.
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "trace", LineComment: joinComments(tk.LineComment, tv.LineComment)}
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range traceFields() {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.name}, traceValue(t, f, nil))
		}
		return []edit{{start: start, end: sectionEnd, repl: renderLines(renderNodePair(key, m, strings.Repeat(" ", tk.Column-1)))}}, nil
	}
	if tv.Kind != yaml.MappingNode || tv.Style&yaml.FlowStyle != 0 || tv.Anchor != "" || len(tv.Content) == 0 {
		return nil, errFallback
	}

	indent := strings.Repeat(" ", tv.Content[0].Column-1)
	var edits []edit
	for _, f := range traceFields() {
		i := -1
		for j := 0; j+1 < len(tv.Content); j += 2 {
			if tv.Content[j].Value == f.name {
				i = j
			}
		}
		if i < 0 {
			continue
		}
		k, v := tv.Content[i], tv.Content[i+1]
		if k.Column != tv.Content[0].Column || !startsWithKey(lines, k, f.name) || v.Anchor != "" || v.Kind == yaml.AliasNode {
			return nil, errFallback
		}
		knext := next
		if i+2 < len(tv.Content) {
			knext = tv.Content[i+2].Line - 1
		}
		if sameValue(v, t, f) {
			continue // keep the lines, and any comments inside the value
		}
		kstart := k.Line - 1
		kend := min(regionEnd(lines, kstart, knext), sectionEnd)
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.name, LineComment: k.LineComment}
		edits = append(edits, edit{start: kstart, end: kend, repl: renderLines(renderNodePair(key, traceValue(t, f, v), indent))})
	}
	// The last line of the section's last key, where missing keys go.
	lk := tv.Content[len(tv.Content)-2]
	last := min(regionEnd(lines, lk.Line-1, next), sectionEnd)
	var add []string
	for _, f := range traceFields() {
		if lookup(tv, f.name) == nil {
			add = append(add, renderLines(renderPair(f.name, traceValue(t, f, nil), indent))...)
		}
	}
	if len(add) > 0 {
		edits = append(edits, edit{start: last + 1, end: last, repl: add})
	}
	// Edits must not overlap (a key's region inside another's would mean
	// the layout was not understood).
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	for i := 1; i < len(edits); i++ {
		if edits[i].start <= edits[i-1].end {
			return nil, errFallback
		}
	}
	return edits, nil
}

// startsWithKey reports whether the key node k named name starts its line
// where the parser says (a plain or quoted scalar key).
func startsWithKey(lines []string, k *yaml.Node, name string) bool {
	if k.Line < 1 || k.Line > len(lines) || k.Column < 1 {
		return false
	}
	l := lines[k.Line-1]
	if len(l) < k.Column-1 || strings.TrimSpace(l[:k.Column-1]) != "" {
		return false
	}
	rest := l[k.Column-1:]
	return strings.HasPrefix(rest, name) || strings.HasPrefix(rest, `"`+name+`"`) || strings.HasPrefix(rest, `'`+name+`'`)
}

func joinComments(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + strings.TrimPrefix(b, "#")
}

// reencode sets the trace section through the yaml node tree and encodes
// the whole document: comments are kept, blank lines and the exact layout
// are not.
func reencode(data []byte, t Trace) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode}
	}
	if len(doc.Content) == 0 {
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	root := doc.Content[0]
	if isNull(root) {
		*root = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: root.HeadComment, LineComment: root.LineComment, FootComment: root.FootComment}
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the top level is not a mapping of sections (capture:, trace:, ...)")
	}
	tv := lookup(root, "trace")
	if tv == nil {
		tv = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "trace"}, tv)
	}
	if tv.Kind == yaml.AliasNode || isNull(tv) {
		*tv = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: tv.HeadComment, LineComment: tv.LineComment, FootComment: tv.FootComment}
	}
	if tv.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("trace is not a mapping of keys (enable:, filter:, ...)")
	}
	tv.Style &^= yaml.FlowStyle // one key per line
	for _, f := range traceFields() {
		found := false
		for j := 0; j+1 < len(tv.Content); j += 2 {
			if tv.Content[j].Value == f.name {
				found = true
				old := tv.Content[j+1]
				if sameValue(old, t, f) {
					continue
				}
				n := traceValue(t, f, old)
				n.HeadComment, n.FootComment = old.HeadComment, old.FootComment
				tv.Content[j+1] = n
			}
		}
		if !found {
			tv.Content = append(tv.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.name}, traceValue(t, f, nil))
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var errVerify = errors.New("the rewritten file does not read back as written")

// verifySplice checks that out holds t in its trace section and every
// other key of old unchanged.
func verifySplice(old, out []byte, t Trace) error {
	var got struct {
		Trace Trace `yaml:"trace"`
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		return fmt.Errorf("%w: %v", errVerify, err)
	}
	if !reflect.DeepEqual(normTrace(got.Trace), normTrace(t)) {
		return fmt.Errorf("%w: trace section %+v, want %+v", errVerify, got.Trace, t)
	}
	var a, b map[string]any
	if err := yaml.Unmarshal(old, &a); err != nil {
		return err
	}
	if err := yaml.Unmarshal(out, &b); err != nil {
		return fmt.Errorf("%w: %v", errVerify, err)
	}
	delete(a, "trace")
	delete(b, "trace")
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("%w: the other sections changed", errVerify)
	}
	return nil
}

func normTrace(t Trace) Trace {
	if len(t.LocalNets) == 0 {
		t.LocalNets = nil
	}
	if len(t.Filter) == 0 {
		t.Filter = nil
	}
	return t
}

// Hooks for the tests.
var (
	syncFile   = (*os.File).Sync
	renameFile = os.Rename
)

// writeAtomic replaces path with data: a temporary file in the same
// directory, given perm (and owner), synced, renamed over path, and the
// directory synced. On error the temporary file is removed and path is
// untouched.
func writeAtomic(path string, data []byte, perm fs.FileMode, owner *fileOwner) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if owner != nil {
		owner.apply(f) // best effort: only root may give a file away
	}
	if err = syncFile(f); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = renameFile(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
