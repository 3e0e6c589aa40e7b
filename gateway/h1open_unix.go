//go:build unix && !aix

package gateway

import (
	"errors"
	"net"
	"syscall"
)

// stillOpen reports whether an idle connection can carry another request: the
// backend has not closed it and has sent nothing unasked. One non-blocking
// peek, so a connection the backend dropped while idle (Node's servers do so
// after 5 s) is never used for a request that could not be replayed.
func stillOpen(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	// Nothing to read is the only answer of an open, quiet connection;
	// a read of 0 bytes (closed) or of data both mean it is unusable.
	return err == nil && errors.Is(perr, syscall.EAGAIN)
}
