// Package udpmux shares one UDP socket between the DHT and uTP.
//
// A swarm owns exactly one UDP socket: the NAT mapping created by DHT traffic
// is the one uTP (and UDP hole punching) relies on. A [Mux] reads every packet
// from that socket and hands it to one of two virtual [net.PacketConn]s by its
// shape:
//
//   - a packet whose first byte is 'd' is a bencoded dictionary, i.e. a KRPC
//     message (BEP 5), and goes to [Mux.KRPC];
//   - every other packet (uTP headers start with a type/version byte whose
//     value is never 'd' (0x64) for a valid uTP version 1 packet) goes to
//     [Mux.Other].
//
// Writes on either virtual conn go straight to the socket. Each virtual conn
// queues a bounded number of packets; when its reader falls behind, further
// packets are dropped, as a kernel socket buffer would. Closing a virtual conn
// only detaches it (its queued and future packets are dropped); closing the
// Mux closes the socket and both virtual conns.
//
// Per-packet costs (a bulk uTP transfer is ≈ 750 datagrams per MiB): the
// socket asks for 4 MiB kernel buffers ([SocketBuffer]); on Linux it reads
// with UDP_GRO, so one read may return many same-size datagrams of one
// sender, which the Mux splits back into datagrams before classifying them
// (each packet is still delivered on its own, DHT or not); received
// packets are copied into pooled buffers; on Linux the read loop waits
// for the socket with no read buffer taken and borrows one of the 64 KiB
// buffers shared by the process's Muxes only while datagrams are waiting,
// so an idle Mux costs ≈ 15 KiB of Go memory, not ≈ 130 KiB;
// [Conn.ReadFromUDPAddrPort] and
// [Conn.WriteToUDPAddrPort] read and write without allocating an address;
// and [Conn.WriteBatch] sends a run of datagrams to one address in one
// UDP_SEGMENT (GSO) send on Linux, falling back to one send per datagram
// elsewhere or when the kernel refuses segmentation.
//
// A virtual conn's reader may instead take its datagrams in the Mux's
// read loop ([Conn.SetHandler]; uTP does): each datagram is handed over
// straight from the read buffer, with no copy, queue or goroutine
// hand-off, and [Handler.Drained] ends each burst, once the socket has
// nothing more waiting (on Linux: the read that finds the socket empty
// returns at once instead of waiting; elsewhere after every read) or
// after 64 datagrams. The handler then runs on the read loop, and the
// DHT's datagrams wait while it does: it must not block. KRPC datagrams
// are always queued.
package udpmux

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/deadline"
)

// DefaultQueueLen is the number of packets each virtual conn buffers.
const DefaultQueueLen = 512

// SocketBuffer is the kernel receive and send buffer size a Mux asks for
// (the kernel may grant less).
const SocketBuffer = 4 << 20

// maxPacket is the largest UDP payload.
const maxPacket = 1 << 16

// Kind says which virtual conn a packet belongs to.
type Kind int

const (
	// KindOther is anything that is not KRPC (uTP, hole-punch probes, junk).
	KindOther Kind = iota
	// KindKRPC is a bencoded dictionary: a DHT message.
	KindKRPC
)

// Classify returns the virtual conn a packet is routed to: [KindKRPC] when its
// first byte is 'd', [KindOther] otherwise (including the empty packet).
func Classify(b []byte) Kind {
	if len(b) > 0 && b[0] == 'd' {
		return KindKRPC
	}
	return KindOther
}

// Mux demultiplexes one *net.UDPConn into two virtual packet conns.
type Mux struct {
	conn  *net.UDPConn
	krpc  *Conn
	other *Conn

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
	readerErr atomic.Value // error that stopped the read loop

	gro     bool        // the socket delivers coalesced datagrams (UDP_GRO)
	readBuf int         // the socket's receive buffer (SO_RCVBUF)
	noGSO   atomic.Bool // a segmented send failed: send one datagram per call
	seg     *segSender  // segmented sends without a copy (Linux), or nil
}

// Options tune a Mux. The zero value is valid.
type Options struct {
	// QueueLen is the per-virtual-conn packet queue length (default
	// DefaultQueueLen).
	QueueLen int
}

// New starts demultiplexing conn. The Mux owns conn from now on: closing the
// Mux closes it.
func New(conn *net.UDPConn, opts Options) *Mux {
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	m := &Mux{conn: conn, done: make(chan struct{})}
	// a bulk uTP transfer arrives in bursts of a window: the default
	// buffer (208 KiB on Linux) overflows and costs retransmissions. The
	// kernel caps the size (net.core.rmem_max); a failure keeps the default.
	_ = conn.SetReadBuffer(SocketBuffer)
	_ = conn.SetWriteBuffer(SocketBuffer)
	m.readBuf = KernelReadBuffer(conn)
	if m.readBuf <= 0 { // unknown here: the size asked for
		m.readBuf = SocketBuffer
	}
	m.gro = enableGRO(conn)
	m.seg = newSegSender(conn)
	m.krpc = newConn(m, opts.QueueLen)
	m.other = newConn(m, opts.QueueLen)
	go m.readLoop()
	return m
}

// Listen opens a UDP socket on address (network "udp", "udp4" or "udp6") and
// returns a Mux over it.
func Listen(network, address string) (*Mux, error) {
	addr, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP(network, addr)
	if err != nil {
		return nil, err
	}
	return New(c, Options{}), nil
}

// KRPC returns the virtual conn that receives bencoded-dictionary packets
// (give it to the DHT).
func (m *Mux) KRPC() net.PacketConn { return m.krpc }

// Other returns the virtual conn that receives every other packet (give it
// to uTP).
func (m *Mux) Other() net.PacketConn { return m.other }

// LocalAddr is the socket's address.
func (m *Mux) LocalAddr() net.Addr { return m.conn.LocalAddr() }

// Port is the socket's UDP port.
func (m *Mux) Port() int { return m.conn.LocalAddr().(*net.UDPAddr).Port }

// Done is closed when the Mux has stopped reading (closed, or a fatal socket
// error; see Err).
func (m *Mux) Done() <-chan struct{} { return m.done }

// Err returns the error that stopped the read loop, or nil while it runs.
func (m *Mux) Err() error {
	if e, ok := m.readerErr.Load().(error); ok {
		return e
	}
	return nil
}

// Close closes the socket and both virtual conns, and waits for the read
// loop to stop.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.conn.Close()
		m.krpc.Close()
		m.other.Close()
	})
	<-m.done
	return m.closeErr
}

// readBufLen is the size of a read buffer: a whole UDP payload, or one
// UDP_GRO run of coalesced datagrams.
const readBufLen = maxPacket

// reader reads the socket for the read loop: a datagram, or a run of
// coalesced same-size datagrams of one sender (seg > 0 is their size).
// b is valid until the next read. After a fatal error the read loop
// calls close.
type reader interface {
	// read reads the next datagram or GRO run. With drain, a read that
	// finds nothing waiting returns errDrained at once instead of waiting
	// (a reader whose canDrain is false never does).
	read(drain bool) (b []byte, seg int, from netip.AddrPort, err error)
	canDrain() bool
	close()
}

// errDrained is what reader.read returns, with drain, when nothing is
// waiting.
var errDrained = errors.New("udpmux: nothing waiting")

// fixedReader reads into a buffer of its own: 64 KiB that an idle Mux
// keeps (the fallback where pooledReader is not available).
type fixedReader struct {
	conn *net.UDPConn
	gro  bool
	buf  []byte
	oob  []byte
}

func newFixedReader(conn *net.UDPConn, gro bool) *fixedReader {
	// on the heap, not on the read loop's stack, which would grow to
	// 128 KiB for it
	return &fixedReader{conn: conn, gro: gro, buf: make([]byte, readBufLen), oob: make([]byte, oobLen)}
}

func (r *fixedReader) read(bool) ([]byte, int, netip.AddrPort, error) {
	if r.gro {
		n, oobn, _, ap, err := r.conn.ReadMsgUDPAddrPort(r.buf, r.oob)
		if err != nil {
			return nil, 0, ap, err
		}
		return r.buf[:n], groSize(r.oob[:oobn]), ap, nil
	}
	n, ap, err := r.conn.ReadFromUDPAddrPort(r.buf)
	return r.buf[:n], 0, ap, err
}

func (r *fixedReader) canDrain() bool { return false }

func (r *fixedReader) close() {}

func (m *Mux) readLoop() {
	defer close(m.done)
	r := newReader(m.conn, m.gro)
	canDrain := r.canDrain()
	pending := false // the handler took datagrams since its last Drained
	for {
		b, seg, ap, err := r.read(pending)
		if err == errDrained {
			m.other.drained()
			pending = false
			continue
		}
		if err != nil {
			if isTemporary(err) {
				continue
			}
			r.close()
			m.readerErr.Store(err)
			m.krpc.closeWith(err)
			m.other.closeWith(err)
			return
		}
		if m.dispatchRead(b, seg, ap) {
			pending = true
			if !canDrain {
				m.other.drained()
				pending = false
			}
		}
	}
}

// dispatchRead hands out what one read returned: a datagram, or a run of
// coalesced datagrams of one sender, all seg bytes long but the last. It
// reports whether the other conn's handler has datagrams since its last
// Drained.
func (m *Mux) dispatchRead(b []byte, seg int, from netip.AddrPort) bool {
	hs := &m.other.hs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if seg <= 0 || seg >= len(b) {
		m.dispatchTo(hs, b, from)
	} else {
		for len(b) > 0 {
			k := min(seg, len(b))
			m.dispatchTo(hs, b[:k], from)
			b = b[k:]
		}
	}
	return hs.pending > 0
}

// dispatchTo gives one datagram to the other conn's handler (hs.mu
// held), or copies it into its virtual conn's queue.
func (m *Mux) dispatchTo(hs *handlerSlot, b []byte, from netip.AddrPort) {
	if hs.h == nil {
		m.dispatch(b, from)
		return
	}
	if Classify(b) == KindKRPC {
		m.dispatch(b, from)
		if hs.pending == 0 {
			return
		}
		hs.pending++ // DHT traffic does not hold a burst's end back
	} else {
		hs.h.HandlePacket(b, from)
		hs.pending++
	}
	if hs.pending >= maxBurstPackets {
		hs.h.Drained()
		hs.pending = 0
	}
}

// isTemporary reports read errors after which the socket still works (ICMP
// errors reported on some platforms).
func isTemporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	// Connection refused/reset reported on an unconnected UDP socket
	// (Windows, or IP_RECVERR) does not make the socket unusable.
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// dispatch copies one packet into the queue of its virtual conn.
func (m *Mux) dispatch(b []byte, from netip.AddrPort) {
	p := newPacket(b, from)
	if Classify(b) == KindKRPC {
		m.krpc.deliver(p)
	} else {
		m.other.deliver(p)
	}
}

func (m *Mux) writeTo(b []byte, addr net.Addr) (int, error) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return m.conn.WriteToUDP(b, a)
	case nil:
		return 0, &net.OpError{Op: "write", Net: "udp", Err: errors.New("nil address")}
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
		}
		return m.conn.WriteToUDPAddrPort(b, ap)
	}
}

// packet is one received datagram, in a pooled buffer (see newPacket).
type packet struct {
	data []byte
	from netip.AddrPort
}

// Conn is a virtual net.PacketConn fed by a Mux.
type Conn struct {
	m *Mux
	// queue holds pointers: 8 bytes a slot, so that the two queues of an
	// idle Mux take 8 KiB, not the 64 KiB a queue of packet values would.
	queue chan *packet

	closeOnce sync.Once
	closed    chan struct{}
	cerr      error // why closed: set before closed is closed

	hs handlerSlot // the Handler taking the datagrams, if any

	readDL  deadline.Deadline
	writeDL deadline.Deadline

	dropped atomic.Uint64
}

var _ net.PacketConn = (*Conn)(nil)

func newConn(m *Mux, qlen int) *Conn {
	return &Conn{
		m:       m,
		queue:   make(chan *packet, qlen),
		closed:  make(chan struct{}),
		readDL:  deadline.New(),
		writeDL: deadline.New(),
	}
}

func (c *Conn) deliver(p *packet) {
	select {
	case <-c.closed:
		p.free()
		return
	default:
	}
	select {
	case c.queue <- p:
	default:
		p.free()
		c.dropped.Add(1)
	}
}

// Buffered returns how many packets are queued for reading.
func (c *Conn) Buffered() int { return len(c.queue) }

// ReadBufferSize returns how many bytes of datagrams can wait for c's
// reader, in the kernel's accounting: the shared socket's receive buffer
// (SO_RCVBUF: on Linux twice what was granted, at most net.core.rmem_max)
// plus c's queue, its datagrams counted at queuedDatagramCost each (what
// Linux charges for a 1 400-byte one). uTP bounds the receive window it
// advertises by it.
func (c *Conn) ReadBufferSize() int { return c.m.readBuf + cap(c.queue)*queuedDatagramCost }

// queuedDatagramCost is what a queued datagram counts for in
// ReadBufferSize.
const queuedDatagramCost = 2 << 10

// Dropped counts packets discarded because the queue was full.
func (c *Conn) Dropped() uint64 { return c.dropped.Load() }

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: nil, Addr: c.m.conn.LocalAddr(), Err: err}
}

// ReadFrom implements net.PacketConn. A packet longer than b is truncated.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// ReadFromUDPAddrPort is ReadFrom without allocating an address (the
// method of [net.UDPConn] of that name).
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	// A closed conn or an expired deadline wins over queued packets, as for
	// a real socket.
	select {
	case <-c.closed:
		return 0, netip.AddrPort{}, c.opErr("read", net.ErrClosed)
	case <-c.readDL.Wait():
		return 0, netip.AddrPort{}, c.opErr("read", errTimeout)
	default:
	}
	select {
	case p := <-c.queue:
		n, from := copy(b, p.data), p.from
		p.free()
		return n, from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, c.opErr("read", net.ErrClosed)
	case <-c.readDL.Wait():
		return 0, netip.AddrPort{}, c.opErr("read", errTimeout)
	}
}

// WriteToUDPAddrPort is WriteTo without an address to convert (the
// method of [net.UDPConn] of that name).
func (c *Conn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	return c.m.conn.WriteToUDPAddrPort(b, to)
}

// WriteBatch sends each of msgs to one address, in order, with as few
// system calls as the platform allows: on Linux, runs of equal-size
// datagrams (the last of a run may be shorter) leave in one UDP_SEGMENT
// (GSO) send; elsewhere, or when the kernel refuses segmentation, one
// send per datagram. It returns how many datagrams were sent.
func (c *Conn) WriteBatch(msgs [][]byte, to netip.AddrPort) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	return c.m.writeBatch(msgs, to)
}

func (c *Conn) writable() error {
	select {
	case <-c.closed:
		return c.opErr("write", net.ErrClosed)
	case <-c.writeDL.Wait():
		return c.opErr("write", errTimeout)
	default:
		return nil
	}
}

// WriteTo implements net.PacketConn: the packet leaves through the shared
// socket.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	return c.m.writeTo(b, addr)
}

// Close detaches the virtual conn: blocked reads return net.ErrClosed and
// its packets are dropped. The socket stays open.
func (c *Conn) Close() error {
	c.closeWith(net.ErrClosed)
	return nil
}

// closeWith closes c for reason err (its handler's Closed gets err).
func (c *Conn) closeWith(err error) {
	c.closeOnce.Do(func() {
		c.cerr = err
		close(c.closed)
	})
	c.endHandler(c.closeErr())
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// closeErr is why c was closed (c is closed).
func (c *Conn) closeErr() error {
	<-c.closed
	return c.cerr
}

// drained ends the handler's burst, if it has one.
func (c *Conn) drained() {
	hs := &c.hs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.h != nil && hs.pending > 0 {
		hs.h.Drained()
	}
	hs.pending = 0
}

// LocalAddr is the shared socket's address.
func (c *Conn) LocalAddr() net.Addr { return c.m.conn.LocalAddr() }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDL.Set(t)
	c.writeDL.Set(t)
	return nil
}

// SetReadDeadline implements net.PacketConn.
func (c *Conn) SetReadDeadline(t time.Time) error { c.readDL.Set(t); return nil }

// SetWriteDeadline implements net.PacketConn. It applies to this virtual
// conn only (the shared socket's deadline is never touched).
func (c *Conn) SetWriteDeadline(t time.Time) error { c.writeDL.Set(t); return nil }

// errTimeout is returned when a deadline passes; it satisfies net.Error with
// Timeout() true and wraps os.ErrDeadlineExceeded.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }
