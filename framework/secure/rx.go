package secure

import (
	"io"
	"net"
	"sync"
)

// rxBufSize is the read-ahead buffer: room for two maximal frames, so that
// one transport read takes in the rest of a frame and what follows it.
const rxBufSize = 2 * (2 + maxFrame)

// rxPool holds read-ahead buffers.
var rxPool = sync.Pool{New: func() any { b := make([]byte, rxBufSize); return &b }}

// rxReader reads the transport ahead of the frame parser into a pooled
// buffer, which it holds only while bytes wait in it or keep arriving: an
// idle session holds none. Only the session's reader goroutine uses it.
//
// On a *net.TCPConn or *net.UnixConn it reads with the socket's RawConn
// (rawRead), getting the buffer when the socket is readable and giving it
// back when a read finds nothing and nothing waits, so a session that
// streams costs one read system call per burst, like a plain socket. On
// other transports (uTP, pipes) it waits for the first bytes with a
// 2-byte read and then reads ahead into the buffer.
type rxReader struct {
	nc    net.Conn
	raw   rawConn // nil: read through nc
	bp    *[]byte
	r, w  int // (*bp)[r:w] waits to be parsed
	small [2]byte
}

func newRxReader(nc net.Conn) rxReader {
	return rxReader{nc: nc, raw: rawConnOf(nc)}
}

// peek returns the next k buffered bytes (k ≤ buffered).
func (rd *rxReader) peek(k int) []byte { return (*rd.bp)[rd.r : rd.r+k] }

// next consumes and returns the next k buffered bytes; they stay valid
// until the next fill.
func (rd *rxReader) next(k int) []byte {
	b := (*rd.bp)[rd.r : rd.r+k]
	rd.r += k
	return b
}

// fill reads until at least need bytes (≤ 2+maxFrame) are buffered. The
// transport ending with none buffered is io.EOF, with some
// io.ErrUnexpectedEOF.
func (rd *rxReader) fill(need int) error {
	for rd.w-rd.r < need {
		if rd.bp != nil && rd.r == rd.w {
			rd.r, rd.w = 0, 0
			if rd.raw == nil {
				rd.release() // wait with the small buffer
			}
		}
		if rd.bp == nil && rd.raw == nil {
			k, err := rd.nc.Read(rd.small[:])
			if k > 0 {
				rd.bp = rxPool.Get().(*[]byte)
				rd.r, rd.w = 0, copy(*rd.bp, rd.small[:k])
				continue
			}
			if err != nil {
				return err
			}
			continue
		}
		if rd.bp != nil && len(*rd.bp)-rd.r < need {
			rd.w = copy(*rd.bp, (*rd.bp)[rd.r:rd.w])
			rd.r = 0
		}
		var k int
		var err error
		if rd.raw != nil {
			k, err = rd.rawRead()
		} else {
			k, err = rd.nc.Read((*rd.bp)[rd.w:])
		}
		rd.w += k
		if err != nil && rd.w-rd.r < need {
			if err == io.EOF && rd.w > rd.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// release gives the buffer back, dropping what waits in it.
func (rd *rxReader) release() {
	if rd.bp != nil {
		rxPool.Put(rd.bp)
		rd.bp = nil
	}
	rd.r, rd.w = 0, 0
}
