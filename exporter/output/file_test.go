package output

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Rotation by size keeps max_files files, each at most max_size and made
// of whole lines; together with the current file they hold the newest
// records in order, each once.
func TestFileRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "records.json")
	recs := makeRecords(t, 400)
	const maxSize = 64 << 10
	s, err := New(Config{File: &FileConfig{Path: path, MaxSize: maxSize, MaxFiles: 3}}, Options{QueueBytes: 16 << 20, FlushTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		s.Write(&recs[i])
	}
	s.Close()
	st := statsOf(s, "file")
	if st.Sent != uint64(len(recs)) || st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	var lines []string
	for _, name := range []string{path + ".3", path + ".2", path + ".1", path} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("%v (files: %v)", err, ls(dir))
		}
		if fi.Size() > maxSize {
			t.Errorf("%s: %d bytes, more than %d", name, fi.Size(), maxSize)
		}
		l := readLines(t, name)
		for _, x := range l {
			if !strings.HasSuffix(x, "\n") {
				t.Errorf("%s: a partial line", name)
			}
		}
		lines = append(lines, l...)
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Errorf("%s.4 kept with max_files 3", path)
	}
	// The last len(lines) records, in order.
	first := len(recs) - len(lines)
	if first <= 0 {
		t.Fatalf("%d lines in 4 files for %d records: nothing rotated away", len(lines), len(recs))
	}
	for i, l := range lines {
		if want := jsonLine(&recs[first+i]); l != want {
			t.Fatalf("line %d is not record %d", i, first+i)
		}
	}
	t.Logf("%d records, %d in the 4 files kept (%d rotated away)", len(recs), len(lines), first)
}

func TestFileRotatesByAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.json")
	recs := makeRecords(t, 2)
	s, err := New(Config{File: &FileConfig{Path: path, MaxAge: 1500 * time.Millisecond, MaxFiles: 2}}, Options{QueueBytes: 1 << 20, FlushTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write(&recs[0])
	waitFor(t, 5*time.Second, "rotation by age", func() bool { _, err := os.Stat(path + ".1"); return err == nil })
	s.Write(&recs[1])
	waitFor(t, 2*time.Second, "the second record", func() bool { return statsOf(s, "file").Sent == 2 })
	if got := readLines(t, path+".1"); len(got) != 1 || got[0] != jsonLine(&recs[0]) {
		t.Errorf("rotated file: %q", got)
	}
	if got := readLines(t, path); len(got) != 1 || got[0] != jsonLine(&recs[1]) {
		t.Errorf("new file: %q", got)
	}
}

// Reopen after the file was renamed away writes to a new file at the path.
func TestFileReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.json")
	recs := makeRecords(t, 2)
	s, err := New(Config{File: &FileConfig{Path: path}}, Options{QueueBytes: 1 << 20, FlushTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(&recs[0])
	waitFor(t, 2*time.Second, "first record", func() bool { return statsOf(s, "file").Sent == 1 })
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	s.Reopen()
	s.Write(&recs[1])
	s.Close()
	if got := readLines(t, path+".old"); len(got) != 1 || got[0] != jsonLine(&recs[0]) {
		t.Errorf("old file: %q", got)
	}
	if got := readLines(t, path); len(got) != 1 || got[0] != jsonLine(&recs[1]) {
		t.Errorf("new file: %q", got)
	}
}

// A directory that does not exist is refused at start, naming the key.
func TestFileBadDirectory(t *testing.T) {
	_, err := New(Config{File: &FileConfig{Path: "/nonexistent-dir/records.json"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "output.file.path") {
		t.Errorf("error %v", err)
	}
}

func ls(dir string) string {
	es, _ := os.ReadDir(dir)
	var n []string
	for _, e := range es {
		fi, _ := e.Info()
		n = append(n, fmt.Sprintf("%s(%d)", e.Name(), fi.Size()))
	}
	return strings.Join(n, " ")
}
