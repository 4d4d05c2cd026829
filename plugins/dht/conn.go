package dht

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// guardConn is the net.PacketConn handed to one anacrolix server. It
//
//   - drops inbound packets that fail validKRPC (see guard.go);
//   - never closes the underlying socket (the Node closes a socket it
//     opened itself, after its last server stopped);
//   - on Close, unblocks and waits out its readers, so that another server
//     (after the adaptive switch) can take over the same socket;
//   - never returns a read error to anacrolix before Close: anacrolix
//     panics when its socket read fails while the server is open, and the
//     host may close a shared socket before closing the DHT.
type guardConn struct {
	net.PacketConn
	stats *connStats

	// state is guardClosed once closed, plus the number of goroutines
	// inside ReadFrom: atomic, so that a packet costs no lock.
	state   atomic.Int64
	done    chan struct{} // closed by Close
	drained chan struct{} // closed once no reader is left after Close
	drain   sync.Once     // closes drained
}

// guardClosed is guardConn.state's closed bit.
const guardClosed = 1 << 62

// connStats counts packets over every guardConn of one Node.
type connStats struct {
	received atomic.Uint64 // valid packets handed to the DHT
	dropped  atomic.Uint64 // invalid packets dropped
	sent     atomic.Uint64 // packets written
}

func newGuardConn(pc net.PacketConn, stats *connStats) *guardConn {
	return &guardConn{PacketConn: pc, stats: stats, done: make(chan struct{}), drained: make(chan struct{})}
}

// leave records that a reader left ReadFrom and reports whether the conn
// is closed.
func (c *guardConn) leave() (closed bool) {
	s := c.state.Add(-1)
	if s == guardClosed {
		c.signalDrained()
	}
	return s&guardClosed != 0
}

func (c *guardConn) ReadFrom(b []byte) (int, net.Addr, error) {
	backoff := time.Millisecond
	for {
		if c.state.Add(1)&guardClosed != 0 {
			c.leave()
			return 0, nil, net.ErrClosed
		}

		n, addr, err := c.PacketConn.ReadFrom(b)

		if c.leave() {
			return 0, nil, net.ErrClosed
		}
		if err != nil {
			// A deadline set by someone else, a transient error, or the
			// socket closed under us: wait (bounded) and retry, or stop
			// when we are closed.
			select {
			case <-c.done:
				return 0, nil, net.ErrClosed
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = time.Millisecond
		if n == len(b) || !validKRPC(b[:n]) {
			c.stats.dropped.Add(1)
			continue
		}
		c.stats.received.Add(1)
		return n, addr, nil
	}
}

func (c *guardConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.state.Load()&guardClosed != 0 {
		return 0, net.ErrClosed
	}
	c.stats.sent.Add(1)
	return c.PacketConn.WriteTo(b, addr)
}

func (c *guardConn) signalDrained() { c.drain.Do(func() { close(c.drained) }) }

// Close stops reading. It waits until no goroutine is inside ReadFrom, so
// that a following reader of the same socket gets every later packet. Safe
// to call more than once and concurrently.
func (c *guardConn) Close() error {
	old := c.state.Or(guardClosed)
	if old&guardClosed != 0 {
		<-c.drained
		return nil
	}
	close(c.done)
	if old == 0 {
		c.signalDrained()
	}
	// Unblock a reader without closing the shared socket, then restore the
	// deadline for the next reader.
	_ = c.PacketConn.SetReadDeadline(time.Unix(1, 0))
	<-c.drained
	_ = c.PacketConn.SetReadDeadline(time.Time{})
	return nil
}

var errNotOwner = errors.New("dht: the socket belongs to the host")

// SetDeadline and friends are not used by anacrolix; refuse them so that a
// future use cannot disturb the shared socket unnoticed.
func (c *guardConn) SetDeadline(time.Time) error      { return errNotOwner }
func (c *guardConn) SetReadDeadline(time.Time) error  { return errNotOwner }
func (c *guardConn) SetWriteDeadline(time.Time) error { return errNotOwner }
