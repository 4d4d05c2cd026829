//go:build linux

package udpmux

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// segSender sends a GSO run with one sendmsg(2) whose iovecs point at the
// datagrams themselves: no copy into one contiguous buffer.
type segSender struct {
	rc     syscall.RawConn
	family int // the socket's: AF_INET or AF_INET6
}

// newSegSender returns nil when the socket's family cannot be read (the
// copying path is used then).
func newSegSender(c *net.UDPConn) *segSender {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	family := -1
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil {
			family = v
		}
	})
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil
	}
	return &segSender{rc: rc, family: family}
}

// segMsg is one sendmsg's header, iovecs, address and control message,
// pooled (the RawConn callback makes them escape).
type segMsg struct {
	hdr   unix.Msghdr
	iov   [maxGSOSegments]unix.Iovec
	name4 unix.RawSockaddrInet4
	name6 unix.RawSockaddrInet6
	oob   [64]byte
	err   error
	fn    func(fd uintptr) bool // send, made once
}

var segMsgs = sync.Pool{New: func() any {
	m := new(segMsg)
	m.fn = m.send
	return m
}}

func (m *segMsg) send(fd uintptr) bool {
	for {
		_, _, errno := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&m.hdr)), 0)
		switch errno {
		case 0:
			m.err = nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until the socket is writable
		default:
			m.err = os.NewSyscallError("sendmsg", errno)
		}
		return true
	}
}

// errNoSegSend: the address cannot be sent to this way (the copying
// path sends it).
var errNoSegSend = errors.New("udpmux: not a segmented send")

// sendSegments sends msgs (a gsoRun: datagrams of len(msgs[0]) bytes,
// the last possibly shorter) to one address in one UDP_SEGMENT sendmsg.
func (s *segSender) sendSegments(msgs [][]byte, to netip.AddrPort) error {
	if len(msgs) > maxGSOSegments || !to.IsValid() || to.Addr().Zone() != "" {
		return errNoSegSend
	}
	m := segMsgs.Get().(*segMsg)
	defer func() {
		clear(m.iov[:len(msgs)]) // keep no datagram alive
		m.hdr.Iov, m.hdr.Control, m.hdr.Name = nil, nil, nil
		segMsgs.Put(m)
	}()
	a := to.Addr()
	switch {
	case s.family == unix.AF_INET && a.Is4():
		m.name4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&m.name4.Port))[:], to.Port())
		m.hdr.Name = (*byte)(unsafe.Pointer(&m.name4))
		m.hdr.Namelen = unix.SizeofSockaddrInet4
	case s.family == unix.AF_INET6:
		m.name6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()} // IPv4: mapped
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&m.name6.Port))[:], to.Port())
		m.hdr.Name = (*byte)(unsafe.Pointer(&m.name6))
		m.hdr.Namelen = unix.SizeofSockaddrInet6
	default:
		return errNoSegSend // an IPv6 address on an IPv4 socket: let net say why
	}
	for i, b := range msgs {
		if len(b) == 0 {
			return errNoSegSend
		}
		m.iov[i].Base = &b[0]
		m.iov[i].SetLen(len(b))
	}
	m.hdr.Iov = &m.iov[0]
	m.hdr.SetIovlen(len(msgs))
	oob := gsoOOB(m.oob[:], len(msgs[0]))
	m.hdr.Control = &oob[0]
	m.hdr.SetControllen(len(oob))
	m.err = nil
	if err := s.rc.Write(m.fn); err != nil {
		return err
	}
	return m.err
}
