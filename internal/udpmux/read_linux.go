//go:build linux

package udpmux

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spareBufs are the read buffers no read loop holds, shared by every Mux
// of the process: a pooledReader holds one only while datagrams are
// waiting (from the first until the read that finds none), so an idle Mux
// (a swarm whose DHT and uTP are quiet, nearly always) holds none, rather
// than 64 KiB each. At most 2·GOMAXPROCS are kept (the most that read
// loops can be using at once, give or take); more are left to the GC.
// Not a sync.Pool: the race detector makes a Pool drop items at random,
// which would turn into allocations per datagram in race-enabled tests.
var spareBufs struct {
	mu   sync.Mutex
	bufs []*[]byte
}

func getReadBuf() *[]byte {
	spareBufs.mu.Lock()
	defer spareBufs.mu.Unlock()
	if n := len(spareBufs.bufs); n > 0 {
		b := spareBufs.bufs[n-1]
		spareBufs.bufs[n-1] = nil
		spareBufs.bufs = spareBufs.bufs[:n-1]
		return b
	}
	b := make([]byte, readBufLen)
	return &b
}

func putReadBuf(b *[]byte) {
	spareBufs.mu.Lock()
	defer spareBufs.mu.Unlock()
	if len(spareBufs.bufs) < 2*runtime.GOMAXPROCS(0) {
		spareBufs.bufs = append(spareBufs.bufs, b)
	}
}

// pooledReader reads with recvmsg(2) from inside the socket's
// syscall.RawConn.Read: the runtime's poller waits for the socket to be
// readable with no buffer taken; a buffer is taken from spareBufs for the
// first non-blocking read after the wait and given back when a read finds
// nothing waiting (so a busy socket keeps its buffer from read to read).
type pooledReader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // readFD, made once (a method value allocates)
	gro bool

	hdr  unix.Msghdr
	iov  unix.Iovec
	name unix.RawSockaddrInet6 // room for an IPv4 address too
	oob  []byte

	drain     bool // read's drain
	sinceWait int  // datagrams read since the last wait or errDrained

	// results of readFD
	buf  *[]byte
	n    int
	err  error
	from netip.AddrPort
	seg  int
}

func newReader(conn *net.UDPConn, gro bool) reader {
	rc, err := conn.SyscallConn()
	if err != nil {
		return newFixedReader(conn, gro)
	}
	r := &pooledReader{rc: rc, gro: gro, oob: make([]byte, max(oobLen, 1))}
	r.fn = r.readFD
	r.hdr.Name = (*byte)(unsafe.Pointer(&r.name))
	r.hdr.Iov = &r.iov
	r.hdr.SetIovlen(1)
	return r
}

func (r *pooledReader) canDrain() bool { return true }

func (r *pooledReader) read(drain bool) ([]byte, int, netip.AddrPort, error) {
	r.err, r.drain = nil, drain
	if err := r.rc.Read(r.fn); err != nil {
		r.close()
		return nil, 0, netip.AddrPort{}, err
	}
	if r.err != nil {
		return nil, 0, netip.AddrPort{}, r.err
	}
	return (*r.buf)[:r.n], r.seg, r.from, nil
}

// close gives the buffer back to spareBufs and drops every reference to
// it.
func (r *pooledReader) close() {
	if r.buf != nil {
		putReadBuf(r.buf)
		r.buf = nil
	}
	r.iov.Base = nil
}

// readFD is the RawConn.Read callback: false (wait for the socket to be
// readable) when no datagram is waiting, true when one was read or the
// read failed (r.err).
func (r *pooledReader) readFD(fd uintptr) bool {
	if r.buf == nil {
		r.buf = getReadBuf()
	}
	b := *r.buf
	r.iov.Base = &b[0]
	r.iov.SetLen(len(b))
	r.hdr.Namelen = unix.SizeofSockaddrInet6
	r.hdr.Flags = 0
	if r.gro {
		r.hdr.Control = &r.oob[0]
		r.hdr.SetControllen(len(r.oob))
	} else {
		r.hdr.Control = nil
		r.hdr.SetControllen(0)
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.hdr)), unix.MSG_DONTWAIT)
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			r.close() // wait without a buffer
			if r.drain && r.sinceWait > 0 {
				r.sinceWait = 0
				r.err = errDrained
				return true
			}
			r.sinceWait = 0
			return false
		default:
			r.err = os.NewSyscallError("recvmsg", errno)
			return true
		}
		r.n = int(n)
		r.sinceWait++
		r.from = r.sockaddr()
		r.seg = 0
		if r.gro {
			r.seg = groSize(r.oob[:r.hdr.Controllen])
		}
		return true
	}
}

// sockaddr decodes the sender's address as net.UDPConn does (an IPv6
// socket reports IPv4 senders as IPv4-mapped addresses).
func (r *pooledReader) sockaddr() netip.AddrPort {
	switch r.name.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.name))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&r.name.Port))[:])
		a := netip.AddrFrom16(r.name.Addr)
		if r.name.Scope_id != 0 {
			zone := strconv.Itoa(int(r.name.Scope_id))
			if ifi, err := net.InterfaceByIndex(int(r.name.Scope_id)); err == nil {
				zone = ifi.Name
			}
			a = a.WithZone(zone)
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}
