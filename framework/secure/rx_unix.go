//go:build unix

package secure

import (
	"io"
	"net"
	"os"
	"syscall"
)

type rawConn = syscall.RawConn

// rawConnOf returns the socket of a TCP or Unix connection, whose reads
// no wrapper could have buffered ahead of the session; nil otherwise.
func rawConnOf(nc net.Conn) rawConn {
	var sc syscall.Conn
	switch t := nc.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawRead reads once from the socket into the buffer behind rd.w, taking
// a buffer from the pool only when the socket has bytes and giving it back
// when it has none and none wait (so the wait for readability holds no
// buffer). It returns io.EOF when the peer ended the stream.
func (rd *rxReader) rawRead() (int, error) {
	var k int
	var serr error
	err := rd.raw.Read(func(fd uintptr) bool {
		if rd.bp == nil {
			rd.bp = rxPool.Get().(*[]byte)
			rd.r, rd.w = 0, 0
		}
		for {
			k, serr = syscall.Read(int(fd), (*rd.bp)[rd.w:])
			if serr != syscall.EINTR {
				break
			}
		}
		if serr == syscall.EAGAIN {
			if rd.r == rd.w {
				rd.release()
			}
			return false // wait until readable, then call again
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case serr != nil:
		return 0, os.NewSyscallError("read", serr)
	case k == 0:
		return 0, io.EOF
	}
	return k, nil
}
