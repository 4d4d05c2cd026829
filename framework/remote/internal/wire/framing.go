package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Frames carry messages over stream sockets (the fd channel on macOS, the
// control connection and the shared UDP socket's relay where there is no
// SOCK_SEQPACKET): a 4-byte big-endian length, then the message. A frame
// longer than the receiver's maximum is dropped whole, so one bad frame
// never desynchronizes the stream.
const frameHeader = 4

// appendFrame appends m as one frame to b.
func appendFrame(b, m []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	return append(b, m...)
}

// frameReader splits a byte stream into frames. It keeps partial frames
// across reads, so a read that times out loses nothing.
type frameReader struct {
	buf  []byte
	r, w int
	max  int    // longest frame accepted
	skip uint64 // bytes of an oversized frame still to drop
}

// newFrameReader accepts frames up to maxLen bytes, reading up to size
// bytes at a time (at least frameHeader+maxLen).
func newFrameReader(maxLen, size int) *frameReader {
	return &frameReader{buf: make([]byte, max(size, frameHeader+maxLen)), max: maxLen}
}

// next returns the next complete frame, valid until the next space call;
// ok is false when more bytes are needed. bad reports a dropped frame.
func (f *frameReader) next() (msg []byte, ok, bad bool) {
	if f.skip > 0 {
		n := min(f.skip, uint64(f.w-f.r))
		f.r += int(n)
		f.skip -= n
		if f.skip > 0 {
			return nil, false, false
		}
	}
	if f.w-f.r < frameHeader {
		return nil, false, false
	}
	n := uint64(binary.BigEndian.Uint32(f.buf[f.r:]))
	if n > uint64(f.max) {
		f.r += frameHeader
		f.skip = n // dropped by the next calls
		return nil, true, true
	}
	if uint64(f.w-f.r-frameHeader) < n {
		return nil, false, false
	}
	msg = f.buf[f.r+frameHeader : f.r+frameHeader+int(n)]
	f.r += frameHeader + int(n)
	return msg, true, false
}

// space returns where the next read goes, moving the unread bytes to the
// front when the rest of the buffer could not hold a whole frame.
func (f *frameReader) space() []byte {
	if f.r == f.w {
		f.r, f.w = 0, 0
	} else if len(f.buf)-f.r < frameHeader+f.max {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	return f.buf[f.w:]
}

// wrote records n bytes read into space.
func (f *frameReader) wrote(n int) { f.w += n }

// MsgConn carries the shared UDP socket's relay: one message per datagram.
type MsgConn interface {
	// ReadMsg returns the next message, valid until the next call; io.EOF
	// when the other end closed, ErrBadDatagram for a dropped frame.
	ReadMsg() ([]byte, error)
	// WriteMsg sends b as one message.
	WriteMsg(b []byte) error
	Close() error
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// packetMsgConn is a MsgConn on a SOCK_SEQPACKET socket: the socket keeps
// the message boundaries (and a longer message is cut at PktMessageMax+1,
// which the decoder rejects).
type packetMsgConn struct {
	*net.UnixConn
	rbuf []byte
}

func newPacketMsgConn(uc *net.UnixConn) *packetMsgConn {
	return &packetMsgConn{UnixConn: uc, rbuf: make([]byte, PktMessageMax+1)}
}

func (c *packetMsgConn) ReadMsg() ([]byte, error) {
	n, err := c.Read(c.rbuf)
	if err == nil && n == 0 {
		err = io.EOF // the other end closed
	}
	if err != nil {
		return nil, err
	}
	return c.rbuf[:n], nil
}

func (c *packetMsgConn) WriteMsg(b []byte) error {
	_, err := c.Write(b)
	return err
}

// framedMsgConn is a MsgConn on a stream socket: every message a frame.
type framedMsgConn struct {
	net.Conn
	rmu sync.Mutex
	fr  *frameReader
	wmu sync.Mutex
	hdr [frameHeader]byte
}

func newFramedMsgConn(c net.Conn) *framedMsgConn {
	return &framedMsgConn{Conn: c, fr: newFrameReader(PktMessageMax, 4*(frameHeader+PktMessageMax))}
}

func (c *framedMsgConn) ReadMsg() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		msg, ok, bad := c.fr.next()
		if bad {
			return nil, fmt.Errorf("%w: frame longer than %d bytes", ErrBadDatagram, PktMessageMax)
		}
		if ok {
			return msg, nil
		}
		n, err := c.Read(c.fr.space())
		c.fr.wrote(n)
		if err != nil {
			if n > 0 {
				continue // a frame may be complete; the error comes back
			}
			return nil, err
		}
	}
}

// WriteMsg writes the frame in one writev. A write cut short (a deadline)
// would leave half a frame on the stream: the connection is closed then.
func (c *framedMsgConn) WriteMsg(b []byte) error {
	if len(b) > PktMessageMax {
		return fmt.Errorf("%w: message of %d bytes", ErrBadDatagram, len(b))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	binary.BigEndian.PutUint32(c.hdr[:], uint32(len(b)))
	bufs := net.Buffers{c.hdr[:], b}
	n, err := bufs.WriteTo(c.Conn)
	if err != nil && n > 0 {
		c.Close()
	}
	return err
}
