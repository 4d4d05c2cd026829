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
	mu    sync.RWMutex
	conns map[netip.AddrPort]*MemConn
	next  uint32 // host number of the next conn
	drops atomic.Uint64
}

// memQueueCap bounds a conn's receive queue (datagrams), like a socket's
// receive buffer.
const memQueueCap = 1024

// memPort is the port of every MemNetwork address.
const memPort = 6881

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{conns: make(map[netip.AddrPort]*MemConn)}
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
		net:    n,
		ap:     ap,
		addr:   net.UDPAddrFromAddrPort(ap),
		wake:   make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	n.conns[ap] = c
	return c, nil
}

// Dropped counts datagrams dropped: to an unknown address or into a full
// queue.
func (n *MemNetwork) Dropped() uint64 { return n.drops.Load() }

// MemConn is one endpoint of a MemNetwork; it implements net.PacketConn.
// Like LoopbackConn it refuses to send to a non-loopback address.
type MemConn struct {
	net  *MemNetwork
	ap   netip.AddrPort
	addr *net.UDPAddr
	sent atomic.Uint64

	mu       sync.Mutex
	queue    []memPacket // queue[head:] is pending
	head     int
	deadline time.Time
	isClosed bool
	wake     chan struct{} // a datagram arrived or the deadline changed
	closed   chan struct{}
}

type memPacket struct {
	b    *[]byte
	from netip.AddrPort
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
	for {
		c.mu.Lock()
		if c.head < len(c.queue) {
			p := c.queue[c.head]
			c.queue[c.head] = memPacket{}
			c.head++
			if c.head == len(c.queue) {
				c.queue, c.head = c.queue[:0], 0
			}
			c.mu.Unlock()
			n := copy(b, *p.b)
			memBufs.Put(p.b)
			return n, net.UDPAddrFromAddrPort(p.from), nil
		}
		if c.isClosed {
			c.mu.Unlock()
			return 0, nil, net.ErrClosed
		}
		var t *time.Timer
		var timer <-chan time.Time
		if !c.deadline.IsZero() {
			d := time.Until(c.deadline)
			if d <= 0 {
				c.mu.Unlock()
				return 0, nil, errMemTimeout{}
			}
			t = time.NewTimer(d)
			timer = t.C
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-timer:
		case <-c.closed:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// WriteTo implements net.PacketConn: it queues a copy of b at the conn
// with address addr, or drops it.
func (c *MemConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !IsLoopback(addr) {
		violations.Add(1)
		return 0, fmt.Errorf("dhttest: refusing to send to non-loopback address %v", addr)
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	var ap netip.AddrPort
	if u, ok := addr.(*net.UDPAddr); ok {
		ap = u.AddrPort()
	} else {
		ap, _ = netip.ParseAddrPort(addr.String())
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	c.sent.Add(1)
	c.net.mu.RLock()
	dst := c.net.conns[ap]
	c.net.mu.RUnlock()
	if dst == nil || !dst.deliver(b, c.ap) {
		c.net.drops.Add(1)
	}
	return len(b), nil
}

func (c *MemConn) deliver(b []byte, from netip.AddrPort) bool {
	c.mu.Lock()
	if c.isClosed || len(c.queue)-c.head >= memQueueCap {
		c.mu.Unlock()
		return false
	}
	buf := memBufs.Get().(*[]byte)
	*buf = append((*buf)[:0], b...)
	c.queue = append(c.queue, memPacket{buf, from})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
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
	for _, p := range c.queue[c.head:] {
		memBufs.Put(p.b)
	}
	c.queue, c.head = nil, 0
	close(c.closed)
	c.mu.Unlock()
	c.net.mu.Lock()
	delete(c.net.conns, c.ap)
	c.net.mu.Unlock()
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
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// SetWriteDeadline implements net.PacketConn; writes never block.
func (c *MemConn) SetWriteDeadline(time.Time) error { return nil }

// Sent counts the datagrams sent (dropped ones included).
func (c *MemConn) Sent() uint64 { return c.sent.Load() }
