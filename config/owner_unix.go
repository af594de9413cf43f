//go:build unix

package config

import (
	"io/fs"
	"os"
	"syscall"
)

// fileOwner is a file's owner, kept when the file is replaced.
type fileOwner struct{ uid, gid int }

func ownerOf(fi fs.FileInfo) *fileOwner {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return &fileOwner{int(st.Uid), int(st.Gid)}
	}
	return nil
}

// apply gives f the owner when it differs from the creator's; it fails
// silently without the privilege to.
func (o *fileOwner) apply(f *os.File) {
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == o.uid && int(st.Gid) == o.gid {
			return
		}
	}
	_ = f.Chown(o.uid, o.gid)
}
