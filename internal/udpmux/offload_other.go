//go:build !linux

package udpmux

import "net"

const maxGSOSegments = 1

var oobLen = 0

func enableGRO(*net.UDPConn) bool { return false }

func groSize([]byte) int { return 0 }

func gsoOOB(oob []byte, _ int) []byte { return oob[:0] }

const haveOffload = false

func newReader(conn *net.UDPConn, gro bool) reader { return newFixedReader(conn, gro) }
