package dhttest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MemNetwork is an in-memory datagram network: its PacketConns deliver to
// one another inside the process, without sockets or system calls, so one
// process can simulate tens of thousands of DHT nodes (Options.Memory).
// Each conn has its own address in 127.77.0.0/16 (one IP per node, port
// 6881, as on a real network); a datagram to an address that no conn of
// the network has is dropped, and nothing ever reaches the kernel. Like
// UDP, a conn whose receive queue is full drops what arrives.
type MemNetwork struct {
	mu    sync.Mutex                        // Listen
	next  uint32                            // host number of the next conn
	conns *[1 << 16]atomic.Pointer[MemConn] // by host number: sends look up without a lock
	drops atomic.Uint64
}

// memQueueCap bounds a conn's receive queue (datagrams), like a socket's
// receive buffer.
const memQueueCap = 1024

// memPort is the port of every MemNetwork address.
const memPort = 6881

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{conns: new([1 << 16]atomic.Pointer[MemConn])}
}

// errNetworkFull: the network has used its 65 534 addresses.
var errNetworkFull = errors.New("dhttest: in-memory network full")

// Listen opens a conn at the network's next free address.
func (n *MemNetwork) Listen() (*MemConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	if n.next > 0xfffe {
		return nil, errNetworkFull
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 77, byte(n.next >> 8), byte(n.next)}), memPort)
	c := &MemConn{
		net:  n,
		host: uint16(n.next),
		addr: net.UDPAddrFromAddrPort(ap),
		from: net.UDPAddrFromAddrPort(ap),
	}
	c.cond.L = &c.mu
	n.conns[c.host].Store(c)
	return c, nil
}

// lookup returns the open conn at ap, or nil.
func (n *MemNetwork) lookup(ap netip.AddrPort) *MemConn {
	a := ap.Addr().Unmap()
	if !a.Is4() || ap.Port() != memPort {
		return nil
	}
	b := a.As4()
	if b[0] != 127 || b[1] != 77 {
		return nil
	}
	return n.conns[uint16(b[2])<<8|uint16(b[3])].Load()
}

// Dropped counts datagrams dropped: to an unknown address or into a full
// queue.
func (n *MemNetwork) Dropped() uint64 { return n.drops.Load() }

// MemConn is one endpoint of a MemNetwork; it implements net.PacketConn.
// Like LoopbackConn it refuses to send to a non-loopback address.
//
// The address ReadFrom returns is shared by every datagram from the same
// sender (a conn's datagrams cost no address allocation at each
// receiver): callers must not modify it.
type MemConn struct {
	net    *MemNetwork
	host   uint16       // index in net.conns
	addr   *net.UDPAddr // LocalAddr
	from   *net.UDPAddr // this conn's address as its receivers see it
	sent   atomic.Uint64
	closed atomic.Bool // isClosed, for WriteTo without the lock

	mu       sync.Mutex
	cond     sync.Cond   // on mu: a datagram arrived, the deadline changed or passed, or the conn closed
	queue    []memPacket // queue[head:] is pending
	head     int
	deadline time.Time
	timer    *time.Timer // wakes readers at deadline
	dlPassed bool        // the timer fired for the current deadline (a wall-clock step cannot undo it)
	dlGen    uint64      // counts SetReadDeadline calls, so that a stale timer sets nothing
	isClosed bool

	// A reader blocked with nothing queued lends its buffer (hand):
	// deliver copies the next datagram straight into it rather than
	// into a pooled buffer that the reader then copies from.
	hand      []byte
	handN     int
	handFrom  *net.UDPAddr
	handLent  bool // hand is a blocked reader's buffer
	handReady bool // and holds a datagram of handN bytes from handFrom
}

type memPacket struct {
	b    *[]byte
	from *net.UDPAddr
}

var memBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// errMemTimeout is a read deadline's error; it is a net.Error with
// Timeout() true and wraps os.ErrDeadlineExceeded.
type errMemTimeout struct{}

func (errMemTimeout) Error() string   { return "dhttest: read deadline exceeded" }
func (errMemTimeout) Timeout() bool   { return true }
func (errMemTimeout) Temporary() bool { return true }
func (errMemTimeout) Unwrap() error   { return os.ErrDeadlineExceeded }

// ReadFrom implements net.PacketConn.
func (c *MemConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.mu.Lock()
	for {
		if c.head < len(c.queue) {
			p := c.queue[c.head]
			c.queue[c.head] = memPacket{}
			c.head++
			if c.head == len(c.queue) {
				c.queue, c.head = c.queue[:0], 0
			} else if c.head >= memQueueCap && c.head > len(c.queue)/2 {
				// a reader that never empties the queue: slide the
				// pending part down, or the array grows for ever
				n := copy(c.queue, c.queue[c.head:])
				clear(c.queue[n:])
				c.queue, c.head = c.queue[:n], 0
			}
			c.mu.Unlock()
			n := copy(b, *p.b)
			memBufs.Put(p.b)
			return n, p.from, nil
		}
		if c.isClosed {
			c.mu.Unlock()
			return 0, nil, net.ErrClosed
		}
		if c.dlPassed || !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
			c.mu.Unlock()
			return 0, nil, errMemTimeout{}
		}
		lent := !c.handLent
		if lent {
			c.hand, c.handLent = b, true
		}
		c.cond.Wait()
		if lent {
			ready, n, from := c.handReady, c.handN, c.handFrom
			c.hand, c.handFrom, c.handLent, c.handReady = nil, nil, false, false
			if ready {
				c.mu.Unlock()
				return n, from, nil
			}
		}
	}
}

// WriteTo implements net.PacketConn: it queues a copy of b at the conn
// with address addr, or drops it.
func (c *MemConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var ap netip.AddrPort
	if u, ok := addr.(*net.UDPAddr); ok {
		ap = u.AddrPort() // IsLoopback, without parsing it twice
	}
	if !ap.Addr().Unmap().IsLoopback() && !IsLoopback(addr) {
		violations.Add(1)
		return 0, fmt.Errorf("dhttest: refusing to send to non-loopback address %v", addr)
	}
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if _, ok := addr.(*net.UDPAddr); !ok {
		ap, _ = netip.ParseAddrPort(addr.String())
	}
	c.sent.Add(1)
	if dst := c.net.lookup(ap); dst == nil || !dst.deliver(b, c.from) {
		c.net.drops.Add(1)
	}
	return len(b), nil
}

func (c *MemConn) deliver(b []byte, from *net.UDPAddr) bool {
	c.mu.Lock()
	if c.isClosed || len(c.queue)-c.head >= memQueueCap {
		c.mu.Unlock()
		return false
	}
	if c.handLent && !c.handReady && c.head == len(c.queue) {
		c.handN, c.handFrom, c.handReady = copy(c.hand, b), from, true
	} else {
		buf := memBufs.Get().(*[]byte)
		*buf = append((*buf)[:0], b...)
		c.queue = append(c.queue, memPacket{buf, from})
	}
	c.mu.Unlock()
	// Broadcast, not Signal: with several readers blocked, the one that
	// lent its buffer must wake.
	c.cond.Broadcast()
	return true
}

// Close implements net.PacketConn; the conn's address becomes free of
// deliveries (not reused).
func (c *MemConn) Close() error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return nil
	}
	c.isClosed = true
	c.closed.Store(true)
	for _, p := range c.queue[c.head:] {
		memBufs.Put(p.b)
	}
	c.queue, c.head = nil, 0
	c.handReady = false // dropped with the queue
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.cond.Broadcast()
	c.net.conns[c.host].CompareAndSwap(c, nil)
	return nil
}

// LocalAddr implements net.PacketConn: a *net.UDPAddr.
func (c *MemConn) LocalAddr() net.Addr { return c.addr }

// SetDeadline implements net.PacketConn (only the read deadline matters:
// a write never blocks).
func (c *MemConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn; it wakes a blocked ReadFrom.
func (c *MemConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline, c.dlPassed = t, false
	c.dlGen++
	gen := c.dlGen
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if d := time.Until(t); !t.IsZero() && d > 0 && !c.isClosed {
		c.timer = time.AfterFunc(d, func() {
			// Under the lock: a reader between its deadline check and
			// cond.Wait must not miss this.
			c.mu.Lock()
			if c.dlGen == gen {
				c.dlPassed = true
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		})
	}
	c.mu.Unlock()
	c.cond.Broadcast()
	return nil
}

// SetWriteDeadline implements net.PacketConn; writes never block.
func (c *MemConn) SetWriteDeadline(time.Time) error { return nil }

// Sent counts the datagrams sent (dropped ones included).
func (c *MemConn) Sent() uint64 { return c.sent.Load() }
