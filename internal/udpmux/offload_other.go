//go:build !linux

package udpmux

import (
	"errors"
	"net"
	"net/netip"
)

const maxGSOSegments = 1

var oobLen = 0

func enableGRO(*net.UDPConn) bool { return false }

func groSize([]byte) int { return 0 }

func gsoOOB(oob []byte, _ int) []byte { return oob[:0] }

const haveOffload = false

func newReader(conn *net.UDPConn, gro bool) reader { return newFixedReader(conn, gro) }

// segSender is Linux's; elsewhere there are no segmented sends.
type segSender struct{}

func newSegSender(*net.UDPConn) *segSender { return nil }

var errNoSegSend = errors.New("udpmux: not a segmented send")

func (*segSender) sendSegments([][]byte, netip.AddrPort) error { return errNoSegSend }
