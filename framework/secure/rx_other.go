//go:build !unix

package secure

import "net"

// rawConn is unused off unix: every transport is read through net.Conn.
type rawConn interface{}

func rawConnOf(net.Conn) rawConn { return nil }

func (rd *rxReader) rawRead() (int, error) { panic("secure: no raw reads on this platform") }
