//go:build linux

package udpmux

import (
	"encoding/binary"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxGSOSegments is the most segments one UDP_SEGMENT send may carry
// (UDP_MAX_SEGMENTS is 64 before Linux 6.4, 128 since).
const maxGSOSegments = 64

// oobLen is the control-message space for one UDP_GRO / UDP_SEGMENT value.
var oobLen = unix.CmsgSpace(2)

// enableGRO asks the kernel to deliver coalesced datagrams (UDP_GRO,
// Linux ≥ 5.0): one read then returns several same-size datagrams of one
// sender, with their size in a control message. It reports whether the
// option took.
func enableGRO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		ok = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	})
	return ok
}

// groSize returns the segment size a UDP_GRO control message announces,
// or 0 when oob has none (the read is one datagram).
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO {
			data := oob[unix.CmsgLen(0):l]
			switch {
			case len(data) >= 4:
				return int(binary.NativeEndian.Uint32(data))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
			return 0
		}
		oob = oob[unix.CmsgSpace(l-unix.CmsgLen(0)):]
	}
	return 0
}

// gsoOOB fills oob with a UDP_SEGMENT control message for segments of
// size seg and returns it.
func gsoOOB(oob []byte, seg int) []byte {
	oob = oob[:unix.CmsgSpace(2)]
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(seg))
	return oob
}

const haveOffload = true
