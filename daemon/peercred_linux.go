package daemon

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred returns the credentials of a Unix socket's peer, as the kernel
// recorded them when it connected.
func peerCred(conn net.Conn) (uid, gid uint32, pid int32, err error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, 0, 0, errors.New("not a Unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, 0, err
	}
	if cerr != nil {
		return 0, 0, 0, cerr
	}
	return cred.Uid, cred.Gid, cred.Pid, nil
}
