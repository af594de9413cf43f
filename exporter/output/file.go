package output

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FileConfig is the JSON Lines file output.
type FileConfig struct {
	Path string
	// MaxSize rotates before the file would grow beyond it (0: never).
	MaxSize int64
	// MaxAge rotates a file this old (0: never).
	MaxAge time.Duration
	// MaxFiles rotated files are kept: Path.1 (newest) ... Path.N.
	MaxFiles int
}

// file writes batches of whole lines with one write(2) each: the records
// are in the kernel once send returns, so a crash of tcptap loses at most
// the batch being written; a write the kernel took only in part (disk
// full) is cut back to the last whole line, so the file never ends in a
// partial line.
//
// SIGHUP (reopen) closes the file and opens Path again: after logrotate's
// create (the file was renamed: records go on to the new one) and
// copytruncate (the file was emptied in place: with O_APPEND the next
// write lands at its new end either way).
type file struct {
	cfg    FileConfig
	f      *os.File
	size   int64
	opened time.Time
}

func newFile(cfg FileConfig) (*file, error) {
	if cfg.Path == "" {
		return nil, errors.New("output.file.path: empty")
	}
	dir := filepath.Dir(cfg.Path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("output.file.path: directory %s does not exist", dir)
	}
	return &file{cfg: cfg}, nil
}

func (w *file) open() error {
	f, err := os.OpenFile(w.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size, w.opened = f, st.Size(), time.Now()
	return nil
}

func (w *file) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

func (w *file) reopen() error {
	if err := w.close(); err != nil {
		return err
	}
	return w.open()
}

// tick notices a file truncated in place (logrotate's copytruncate), so
// that rotation by size counts from its new size, and rotates a file older
// than MaxAge (only when it holds something).
func (w *file) tick(now time.Time) error {
	if st, err := w.f.Stat(); err == nil && st.Size() < w.size {
		w.size = st.Size()
	}
	if w.cfg.MaxAge > 0 && w.size > 0 && now.Sub(w.opened) >= w.cfg.MaxAge {
		return w.rotate()
	}
	return nil
}

func (w *file) send(b *batch) (int, int, error) {
	done := 0
	for done < b.len() {
		// The records that fit before the size limit (at least one, in
		// a file that is empty).
		start := 0
		if done > 0 {
			start = b.ends[done-1]
		}
		n := done
		for n < b.len() {
			next := int64(b.ends[n] - start)
			if w.cfg.MaxSize > 0 && w.size+next > w.cfg.MaxSize && (n > done || w.size > 0) {
				break
			}
			n++
		}
		if n == done { // the next record does not fit: a new file
			if err := w.rotate(); err != nil {
				return done, 0, err
			}
			continue
		}
		if err := w.write(b.data[start:b.ends[n-1]]); err != nil {
			return done, 0, err
		}
		done = n
	}
	return done, 0, nil
}

// write writes whole lines; on a short write it cuts the file back to its
// size before, so that it never ends in a partial line.
func (w *file) write(p []byte) error {
	n, err := w.f.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			if st, serr := w.f.Stat(); serr == nil && st.Size() >= int64(n) {
				_ = w.f.Truncate(st.Size() - int64(n))
			}
		}
		return err
	}
	w.size += int64(n)
	return nil
}

// rotate renames Path to Path.1 (after Path.1 to Path.2 and so on,
// deleting Path.MaxFiles) and opens a new Path.
func (w *file) rotate() error {
	if err := w.close(); err != nil {
		return err
	}
	p := w.cfg.Path
	if w.cfg.MaxFiles <= 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return w.open()
	}
	_ = os.Remove(fmt.Sprintf("%s.%d", p, w.cfg.MaxFiles))
	for i := w.cfg.MaxFiles - 1; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", p, i)
		if err := os.Rename(from, fmt.Sprintf("%s.%d", p, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(p, p+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return w.open()
}
