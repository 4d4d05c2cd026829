package utp

import (
	"container/list"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"math/bits"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
)

// maxPacket is the largest UDP payload.
const maxPacket = 1 << 16

// socket runs uTP over one net.PacketConn: it reads every packet, routes it
// to its connection (or creates one for a SYN) and answers strangers with
// RESET.
type socket struct {
	pc  net.PacketConn
	cfg *Config

	mu      sync.Mutex
	conns   map[connKey]*Conn
	ln      *Listener
	closing bool
	err     error // why the read loop stopped

	done     chan struct{} // closed when the read loop has stopped
	shutOnce sync.Once

	rstTokens float64
	rstLast   time.Time

	// half-open connections, oldest first, and per source IP (s.mu)
	half      list.List
	halfPerIP map[netip.Addr]int
	syn       synLimiter

	synsAnswered atomic.Uint64 // half-open connections whose peer answered
	synsLimited  atomic.Uint64 // SYNs dropped: the source's SYN rate
	synsOverCap  atomic.Uint64 // SYNs dropped: the source's half-open share
	halfEvicted  atomic.Uint64 // half-open connections evicted at MaxHalfOpen
	halfExpired  atomic.Uint64 // half-open connections whose peer never answered
	backlogFull  atomic.Uint64 // answered connections reset: backlog full

	ignored     atomic.Uint64 // packets that are not uTP or belong to nobody
	retransmits atomic.Uint64 // data/FIN packets sent again
	spurious    atomic.Uint64 // recoveries undone: their first resend was not needed
	timeouts    atomic.Uint64 // retransmission timeouts

	ackDelay time.Duration // 0: delayedAck (tests set it)

	// wndCap bounds the receive window a connection advertises: what
	// the socket's receive buffer holds (windowCap)
	wndCap int

	apc addrPortConn // pc, when it has the AddrPort methods
	bw  batchWriter  // pc, when it sends batches
	br  bufferedReader
	// hc is pc when it takes a handler (*udpmux.Conn): the socket then
	// handles datagrams in the Mux's read loop (inline), with no read
	// loop of its own
	hc     handlerConn
	inline bool

	// connections whose ack or reader wake-up waits for the end of the
	// burst being read (read loop only: the socket's, or the Mux's when
	// inline)
	ackq     []*Conn
	ackqRead int // datagrams read since the first was queued
}

// maxAckBurst bounds the datagrams read while an ack waits for the end
// of a burst.
const maxAckBurst = 64

// deferWake queues the wake-up of c's reader for the end of the burst
// being read, when more datagrams are queued (one wake-up per burst, not
// per packet); it reports whether it did (c.mu held, read loop only).
func (s *socket) deferWake(c *Conn) bool {
	if c.wakeQueued {
		return true
	}
	if !s.burstGoesOn() {
		return false
	}
	c.wakeQueued = true
	if !c.ackQueued {
		s.ackq = append(s.ackq, c)
	}
	return true
}

// burstGoesOn reports whether more datagrams are queued and the burst
// has not reached maxAckBurst.
func (s *socket) burstGoesOn() bool {
	if s.ackqRead >= maxAckBurst {
		return false
	}
	if s.inline {
		return true // Drained ends the burst
	}
	return s.br != nil && s.br.Buffered() > 0
}

// deferAck queues c's ack for the end of the burst of datagrams the read
// loop is taking in (libutp acks once per burst read), when more are
// queued; it reports whether it did (c.mu held, read loop only).
func (s *socket) deferAck(c *Conn) bool {
	if c.ackQueued {
		return true
	}
	if !s.burstGoesOn() {
		return false
	}
	c.ackQueued = true
	if !c.wakeQueued {
		s.ackq = append(s.ackq, c)
	}
	return true
}

// flushAcks sends the acks deferred to the end of a burst, once nothing
// more is queued or maxAckBurst datagrams have been read (read loop).
func (s *socket) flushAcks() {
	if len(s.ackq) == 0 {
		return
	}
	if s.ackqRead++; s.ackqRead < maxAckBurst && (s.inline || s.br.Buffered() > 0) {
		return
	}
	s.sendDeferred()
}

// sendDeferred sends the deferred acks and wakes the deferred readers
// (read loop).
func (s *socket) sendDeferred() {
	for i, c := range s.ackq {
		c.mu.Lock()
		if c.ackQueued && c.state == csConnected && c.unacked > 0 {
			c.sendState()
		}
		if c.wakeQueued {
			notify(c.readNotify)
		}
		c.ackQueued, c.wakeQueued = false, false
		c.mu.Unlock()
		s.ackq[i] = nil
	}
	s.ackq, s.ackqRead = s.ackq[:0], 0
}

// addrPortConn is a PacketConn that reads and writes without allocating
// addresses (*net.UDPConn and *udpmux.Conn are).
type addrPortConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error)
}

// bufferedReader tells how many datagrams are queued for reading
// (*udpmux.Conn).
type bufferedReader interface {
	Buffered() int
}

// handlerConn is a PacketConn whose datagrams a handler can take in its
// own read loop (*udpmux.Conn).
type handlerConn interface {
	SetHandler(udpmux.Handler) error
}

// batchWriter sends several datagrams to one address at once
// (*udpmux.Conn: GSO on Linux).
type batchWriter interface {
	WriteBatch(msgs [][]byte, to netip.AddrPort) (int, error)
}

func newSocket(pc net.PacketConn, cfg *Config) *socket {
	s := &socket{pc: pc, cfg: cfg, conns: make(map[connKey]*Conn), done: make(chan struct{})}
	s.apc, _ = pc.(addrPortConn)
	s.bw, _ = pc.(batchWriter)
	s.br, _ = pc.(bufferedReader)
	s.wndCap = windowCap(socketReadBuffer(pc), cfg)
	return s
}

// start begins reading pc: in the Mux's read loop when pc takes a handler
// (what it queued before is handled first, in this call), else in a read
// loop of the socket's own. The listener, if any, is attached before, so
// that SYNs that came early are not refused.
func (s *socket) start() {
	if hc, ok := s.pc.(handlerConn); ok {
		s.hc, s.inline = hc, true
		if hc.SetHandler((*inlineHandler)(s)) == nil {
			return
		}
		s.hc, s.inline = nil, false // taken by another: read it ourselves
	}
	go s.readLoop()
}

// inlineHandler is the socket as the udpmux.Handler of its conn.
type inlineHandler socket

// HandlePacket handles one datagram in the Mux's read loop.
func (h *inlineHandler) HandlePacket(b []byte, from netip.AddrPort) {
	s := (*socket)(h)
	s.handle(b, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	s.flushAcks()
}

// Drained ends a burst: the deferred acks and wake-ups go out.
func (h *inlineHandler) Drained() { (*socket)(h).sendDeferred() }

// Closed ends every connection: the conn is closed or the Mux stopped.
func (h *inlineHandler) Closed(err error) { (*socket)(h).shutdown(err) }

// readFrom reads one datagram and its sender.
func (s *socket) readFrom(buf []byte) (int, netip.AddrPort, bool, error) {
	if s.apc != nil {
		n, ap, err := s.apc.ReadFromUDPAddrPort(buf)
		return n, ap, true, err
	}
	n, addr, err := s.pc.ReadFrom(buf)
	if err != nil {
		return 0, netip.AddrPort{}, false, err
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return n, netip.AddrPort{}, false, nil
	}
	return n, ua.AddrPort(), true, nil
}

// writeTo sends one datagram.
func (s *socket) writeTo(b []byte, to netip.AddrPort) {
	if s.apc != nil {
		_, _ = s.apc.WriteToUDPAddrPort(b, to)
		return
	}
	_, _ = s.pc.WriteTo(b, net.UDPAddrFromAddrPort(to))
}

func (s *socket) readLoop() {
	buf := make([]byte, maxPacket)
	var err error
	for {
		var n int
		var ap netip.AddrPort
		var ok bool
		n, ap, ok, err = s.readFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.mu.Lock()
				closing := s.closing
				s.mu.Unlock()
				if !closing {
					continue // someone else's deadline: keep reading
				}
			}
			break
		}
		if !ok {
			s.ignored.Add(1)
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		s.handle(buf[:n], ap)
		s.flushAcks()
	}
	s.shutdown(err)
}

// shutdown ends every connection once the socket is unusable.
func (s *socket) shutdown(err error) {
	s.shutOnce.Do(func() { s.shutdownOnce(err) })
}

func (s *socket) shutdownOnce(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.fail(net.ErrClosed)
		c.mu.Unlock()
	}
	close(s.done)
}

// close stops the read loop (without closing the PacketConn), resetting
// every connection.
func (s *socket) close() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closing = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		if c.state != csDone {
			// half-open ones too: their peer may have our SYN-ACK and
			// think itself connected. Once per connection, at shutdown,
			// which no peer can repeat: no reflector.
			c.sendReset()
			c.fail(net.ErrClosed)
		}
		c.mu.Unlock()
	}
	if s.inline {
		_ = s.hc.SetHandler(nil) // returns once no call is in progress
		s.shutdown(net.ErrClosed)
		return
	}
	_ = s.pc.SetReadDeadline(time.Unix(1, 0))
	<-s.done
	_ = s.pc.SetReadDeadline(time.Time{})
}

func (s *socket) remove(c *Conn) {
	s.mu.Lock()
	if s.conns[c.key] == c {
		delete(s.conns, c.key)
	}
	s.dropHalfLocked(c)
	s.mu.Unlock()
}

// handle routes one datagram.
func (s *socket) handle(b []byte, from netip.AddrPort) {
	h, payload, err := parseHeader(b)
	if err != nil {
		s.ignored.Add(1)
		return
	}
	now := time.Now()
	if h.typ == stSyn {
		s.handleSyn(&h, from, now)
		return
	}
	s.mu.Lock()
	c := s.conns[connKey{from, h.connID}]
	if c == nil && h.typ == stReset {
		// a RESET may carry either of the connection's ids (libutp answers
		// strangers with the id it received)
		for k, x := range s.conns {
			if k.addr == from && x.sendID == h.connID {
				c = x
				break
			}
		}
	}
	s.mu.Unlock()
	if c == nil {
		s.ignored.Add(1)
		if h.typ != stReset {
			s.reset(from, h.connID, h.seq)
		}
		return
	}
	c.receive(&h, payload, now)
}

// handleSyn opens a half-open connection for a SYN, or answers a
// repeated one. A half-open connection sends its SYN-ACK (and at most
// maxSynAcks-1 more, to repeated SYNs) and nothing else; it enters the
// accept backlog only when the peer answers (see halfopen.go). SYNs over
// their source's rate or half-open share are dropped unanswered.
func (s *socket) handleSyn(h *header, from netip.AddrPort, now time.Time) {
	key := connKey{from, h.connID + 1}
	s.mu.Lock()
	if !s.synAllowed(from.Addr(), now) {
		s.mu.Unlock()
		s.ignored.Add(1)
		return
	}
	if c := s.conns[key]; c != nil {
		s.mu.Unlock()
		c.receive(h, nil, now)
		return
	}
	ln := s.ln
	if ln == nil || s.closing {
		s.mu.Unlock()
		s.reset(from, h.connID, h.seq)
		return
	}
	ok, evict := s.admitHalfOpen(from.Addr())
	if !ok {
		s.mu.Unlock()
		s.ignored.Add(1)
		return
	}
	c := newConn(s, key, h.connID, false)
	c.ackNr = h.seq
	c.state = csConnected
	c.halfOpen = true
	c.peerWnd = int(h.wnd)
	c.notePeerDatagram(h.maxDgram)
	c.replyMicro = microNow() - h.ts
	// c is not published yet: taking its lock under s.mu cannot deadlock
	c.mu.Lock()
	s.conns[key] = c
	s.addHalfLocked(c)
	s.mu.Unlock()
	c.sendSynAck()
	c.armTimer(now)
	c.mu.Unlock()
	if evict != nil {
		evict.endHalfOpen(errHalfOpenEvicted)
	}
}

// reset answers a packet of an unknown connection, at most 100 per second.
func (s *socket) reset(to netip.AddrPort, id, seq uint16) {
	s.mu.Lock()
	now := time.Now()
	s.rstTokens = min(s.rstTokens+now.Sub(s.rstLast).Seconds()*100, 100)
	s.rstLast = now
	ok := s.rstTokens >= 1
	if ok {
		s.rstTokens--
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	var b [headerLen]byte
	h := header{typ: stReset, connID: id, ts: microNow(), ack: seq, seq: uint16(randUint32())}
	putHeader(b[:], &h)
	s.writeTo(b[:], to)
}

// newClientConn registers a connection we are dialling.
func (s *socket) newClientConn(to netip.AddrPort) (*Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.err != nil {
		return nil, net.ErrClosed
	}
	for range 64 {
		id := uint16(randUint32())
		k := connKey{to, id}
		// the peer's side of this connection will be keyed id+1; when we
		// dial ourselves (same socket) our listener keys a SYN carrying c
		// as c+1, so ids next to another dial's id would collide too
		if s.conns[k] != nil || s.conns[connKey{to, id + 1}] != nil ||
			s.conns[connKey{to, id - 1}] != nil || s.conns[connKey{to, id + 2}] != nil {
			continue
		}
		c := newConn(s, k, id+1, true)
		s.conns[k] = c
		return c, nil
	}
	return nil, errors.New("utp: no free connection id toward " + to.String())
}

// ---- helpers ----

var epoch = time.Now()

// microNow is our clock in microseconds (wrapping), for timestamps.
func microNow() uint32 { return microAt(time.Now()) }

// microAt is t on the µs clock of packet timestamps.
func microAt(t time.Time) uint32 { return uint32(t.Sub(epoch).Microseconds()) }

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// outgoing packets and their buffers, pooled by the buffer's
// power-of-two size class (64 B … 64 KiB)
var outPools [11]sync.Pool

func sizeClass(n int) int {
	if n <= 64 {
		return 0
	}
	return bits.Len(uint(n-1)) - 6
}

// newOutPacket returns a packet with an n-byte buffer (header + payload).
func newOutPacket(typ uint8, seq uint16, n int) *outPacket {
	k := sizeClass(n)
	if p, ok := outPools[k].Get().(*outPacket); ok {
		*p = outPacket{seq: seq, typ: typ, buf: p.buf[:n]}
		return p
	}
	return &outPacket{seq: seq, typ: typ, buf: make([]byte, n, 64<<k)}
}

// free returns p to its pool; p must not be used afterwards.
func (p *outPacket) free() {
	c := cap(p.buf)
	if c < 64 || c > maxPacket || c&(c-1) != 0 {
		return
	}
	outPools[sizeClass(c)].Put(p)
}
