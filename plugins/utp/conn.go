package utp

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/deadline"
)

// Congestion control constants (BEP 29 / RFC 6817 LEDBAT).
const (
	// target is LEDBAT's queuing-delay target: above it the window shrinks.
	target = 60 * time.Millisecond
	// minRTO and maxRTO bound the retransmission timeout.
	minRTO = 200 * time.Millisecond
	maxRTO = 8 * time.Second
	// delayedAck is how long an in-order data packet may wait for its ack
	// when no second packet or reply carries it.
	delayedAck = time.Millisecond
	// ackEvery is how many data packets may go unacked, in order or
	// while packets are missing (the selective ack then covers 8 packets,
	// enough for the sender's 3-packet loss rule); fewer wait for the
	// delayed-ack timer. libutp acks once per burst read: 65–243 acks for
	// 12 490 packets; every second packet gave ≈5 500. A packet that
	// fills a hole, a duplicate or a FIN is acked at once.
	ackEvery = 8
	// maxOutOfOrder bounds how far ahead of ack_nr a packet is buffered.
	maxOutOfOrder = 4096
	// maxInflight bounds the packets in flight (well inside the 16-bit
	// sequence space).
	maxInflight = 8192
	// maxCwnd caps the congestion window.
	maxCwnd = 64 << 20
	// baseBucket is the span of one bucket of the base-delay history.
	baseBucket = time.Minute
	// minPTO is the shortest probe timeout (tail-loss probe).
	minPTO = 5 * time.Millisecond
	// maxProbes is how many tail-loss probes (each after twice the
	// previous timeout) go out without an ack; then only the
	// retransmission timeout, doubling up to maxRTO, sends.
	maxProbes = 2
	// maxBurst bounds the bytes one pump sends back to back: a crude pacing
	// that keeps a window opening at once from overflowing the peer's
	// socket buffer (208 KiB by default on Linux).
	maxBurst = 128 << 10
)

var (
	// ErrNoPacketConn is returned when the transport has no UDP socket:
	// UsePacketConn was not called (the swarm hands its shared socket to the
	// transport during Start).
	ErrNoPacketConn = errors.New("utp: no UDP socket: UsePacketConn was not called (a swarm hands its shared socket at Start)")
	// ErrPeerSilent is wrapped by the error of a connection whose peer sent
	// nothing (not even a keep-alive) for Config.IdleTimeout.
	ErrPeerSilent = errors.New("utp: peer silent")

	errReset   = fmt.Errorf("utp: reset by the peer: %w", syscall.ECONNRESET)
	errRefused = fmt.Errorf("refused: the peer answered the SYN with a RESET: %w", syscall.ECONNREFUSED)
	errShut    = fmt.Errorf("utp: write after CloseWrite: %w", syscall.EPIPE)
	errLinger  = errors.New("utp: closed connection gave up delivering its data")
)

type connState uint8

const (
	csSynSent connState = iota
	csConnected
	csDone
)

// outPacket is a sent data or FIN packet waiting for its ack.
type outPacket struct {
	seq    uint16
	typ    uint8
	buf    []byte // header + payload
	size   int    // payload bytes
	sentAt time.Time
	sends  int
	// the header timestamp (µs) of its first resend, the recovery episode
	// of its resends, and what the peer's ack showed of them (judged:
	// original, the ack was sent before the first resend reached the
	// peer; see judgeResend)
	firstResend uint32
	episode     uint32
	judged      bool
	original    bool
	sacked      bool // selectively acked
	lost        bool // declared lost, waiting to be sent again
	inNet       bool // counted in flightBytes
}

// Conn is a uTP connection. It implements [net.Conn] and CloseWrite
// (half-close: the peer reads io.EOF and can still write back).
type Conn struct {
	s      *socket
	key    connKey
	raddr  *net.UDPAddr
	sendID uint16
	mss    int // payload bytes per data packet
	client bool

	mu          sync.Mutex
	state       connState
	err         error         // why the connection ended
	done        chan struct{} // closed when state becomes csDone
	established chan struct{} // client: closed on the SYN's ack
	closedCh    chan struct{} // closed by Close
	readNotify  chan struct{}
	writeNotify chan struct{}
	rdl, wdl    deadline.Deadline

	// receiving
	ackNr       uint16 // last in-order seq received
	rbuf        byteQueue
	ooo         map[uint16][]byte // out-of-order payloads
	oooBytes    int
	finRecv     bool
	finSeq      uint16
	eof         bool // every byte up to the peer's FIN is in rbuf
	unacked     int  // data packets not acked yet
	ackTimerSet bool
	ackQueued   bool   // on the socket's burst-end list for an ack (c.mu; read loop)
	wakeQueued  bool   // on the socket's burst-end list to wake the reader
	lastWnd     int    // window we advertised last
	replyMicro  uint32 // timestamp_difference for our next packet
	lastRecv    time.Time

	// sending
	isn         uint16 // server: initial seq (the SYN-ACK's seq_nr)
	seqNr       uint16 // next seq to use
	inflight    []*outPacket
	flightBytes int
	nLost       int
	unsent      byteQueue
	writeShut   bool // CloseWrite or Close: FIN queued
	finSent     bool
	finAcked    bool
	closed      bool // Close called
	closeBy     time.Time
	cwnd        int
	ssthresh    int
	cwndFull    bool // last pump stopped at the congestion window
	peerWnd     int
	srtt        time.Duration
	rttvar      time.Duration
	rto         time.Duration
	rttSet      bool
	inRecovery  bool
	recoverySeq uint16
	// undoing a recovery whose resends all prove unneeded: the windows
	// before it, the resends made in it not yet judged unneeded, whether
	// every one judged so far was (undoOK), and the episode's number
	undoCwnd, undoSsthresh int
	undoRetrans            int
	undoOK                 bool
	episode                uint32
	dupAcks                int
	rtoAt                  time.Time
	ptoAt                  time.Time // tail-loss probe due (zero: disarmed)
	ptoCount               int       // probes (or an RTO: maxProbes) since the last ack
	persistAt              time.Time // zero-window probe due (nothing in flight)
	probe                  bool      // the persist timer allows one packet
	lastSend               time.Time
	synAt                  time.Time // when the first SYN / SYN-ACK went out
	synCount               int       // SYNs / SYN-ACKs sent
	delays                 delayFilter
	overTarget             bool // the queuing delay is above the target (grow)

	batching bool     // pump: write queues into batch
	batch    [][]byte // datagrams to flush

	timer    *time.Timer
	timerAt  time.Time
	ackTimer *time.Timer

	// half-open: a server connection whose peer has not answered our
	// SYN-ACK yet. It is not in the accept backlog and sends nothing but
	// SYN-ACKs (at most maxSynAcks); see halfopen.go.
	halfOpen bool          // guarded by mu
	halfElem *list.Element // on the socket's half-open list; guarded by s.mu
}

var _ net.Conn = (*Conn)(nil)

func newConn(s *socket, key connKey, sendID uint16, client bool) *Conn {
	// until the peer says it reads larger datagrams (extDatagram), it
	// gets PacketSize ones: any BEP 29 implementation reads those
	size := s.cfg.PacketSize
	now := time.Now()
	c := &Conn{
		s:           s,
		key:         key,
		raddr:       net.UDPAddrFromAddrPort(key.addr),
		sendID:      sendID,
		mss:         size - headerLen,
		client:      client,
		done:        make(chan struct{}),
		established: make(chan struct{}),
		closedCh:    make(chan struct{}),
		readNotify:  make(chan struct{}, 1),
		writeNotify: make(chan struct{}, 1),
		rdl:         deadline.New(),
		wdl:         deadline.New(),
		lastRecv:    now,
		lastSend:    now,
		rto:         time.Second,
		ssthresh:    maxCwnd,
		peerWnd:     s.cfg.ReadBuffer,
		seqNr:       uint16(randUint32()),
	}
	c.cwnd = 4 * c.mss
	c.rbuf.limit = s.cfg.ReadBuffer + 2*maxPacket // onData's bound
	c.unsent.limit = s.cfg.WriteBuffer
	c.isn = c.seqNr
	c.lastWnd = c.maxWindow()
	c.timer = time.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	c.ackTimer = time.AfterFunc(time.Hour, c.onAckTimer)
	c.ackTimer.Stop()
	return c
}

// notePeerDatagram raises the packet size once the peer's SYN or SYN-ACK
// said how large a datagram it reads (extDatagram): a loopback peer then
// gets LoopbackPacketSize datagrams. Other paths keep PacketSize (no
// path-MTU discovery). Called before any data is sent (c.mu held, or c
// not published yet).
func (c *Conn) notePeerDatagram(maxDgram uint32) {
	size := c.s.cfg.PacketSize
	if l := c.s.cfg.LoopbackPacketSize; c.key.addr.Addr().IsLoopback() && int64(maxDgram) >= int64(l) && l > size {
		size = l
	}
	c.mss = size - headerLen
	c.cwnd = 4 * c.mss
}

// ---- net.Conn ----

// Read reads data in order. It returns io.EOF after the peer's FIN.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		if c.rbuf.len() > 0 {
			if len(b) == 0 {
				c.mu.Unlock()
				return 0, nil
			}
			n := c.rbuf.read(b)
			more := c.rbuf.len() > 0
			c.maybeWindowUpdate()
			c.mu.Unlock()
			if more {
				notify(c.readNotify)
			}
			return n, nil
		}
		if c.eof {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return 0, c.opErr("read", err)
		}
		c.mu.Unlock()
		dl := c.rdl.Wait()
		if deadline.Closed(dl) {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		select {
		case <-c.readNotify:
		case <-c.done:
		case <-c.closedCh:
		case <-dl:
		}
	}
}

// Write queues b for sending; it blocks while the send buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	total := 0
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return total, c.opErr("write", net.ErrClosed)
		case c.err != nil:
			err := c.err
			c.mu.Unlock()
			return total, c.opErr("write", err)
		case c.writeShut:
			c.mu.Unlock()
			return total, c.opErr("write", errShut)
		}
		if len(b) == 0 {
			c.mu.Unlock()
			return total, nil
		}
		if space := c.s.cfg.WriteBuffer - c.unsent.len(); space > 0 {
			k := min(space, len(b))
			c.unsent.push(b[:k])
			b, total = b[k:], total+k
			now := time.Now()
			c.pump(now)
			c.armTimer(now)
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		dl := c.wdl.Wait()
		if deadline.Closed(dl) {
			return total, c.opErr("write", os.ErrDeadlineExceeded)
		}
		select {
		case <-c.writeNotify:
		case <-c.done:
		case <-c.closedCh:
		case <-dl:
		}
	}
}

// CloseWrite sends a FIN after the data already written: the peer reads
// io.EOF and may go on writing.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	if c.err != nil {
		return c.opErr("close", c.err)
	}
	if !c.writeShut {
		c.writeShut = true
		now := time.Now()
		c.pump(now)
		c.armTimer(now)
	}
	return nil
}

// Close closes the connection. Data already written is still delivered
// (then a FIN) in the background, for at most Config.Linger; unread data,
// or data arriving after Close, resets the connection instead, as TCP does.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.closedCh)
	c.rdl.Stop()
	c.wdl.Stop()
	if c.state == csDone {
		c.release()
		return nil
	}
	if c.state == csSynSent || c.rbuf.len() > 0 || c.oooBytes > 0 {
		c.sendReset()
		c.fail(net.ErrClosed)
		return nil
	}
	now := time.Now()
	c.closeBy = now.Add(c.s.cfg.Linger)
	c.writeShut = true
	c.pump(now)
	c.checkFinished()
	if c.state != csDone {
		c.armTimer(now)
	}
	return nil
}

// LocalAddr is the shared UDP socket's address.
func (c *Conn) LocalAddr() net.Addr { return c.s.pc.LocalAddr() }

// RemoteAddr is the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines. After Close it returns
// at once with an error wrapping net.ErrClosed, as net.TCPConn does.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.rdl.Set(t) != nil || c.wdl.Set(t) != nil {
		return c.opErr("set", net.ErrClosed)
	}
	return nil
}

// SetReadDeadline implements net.Conn. After Close it returns at once with
// an error wrapping net.ErrClosed.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.rdl.Set(t) != nil {
		return c.opErr("set", net.ErrClosed)
	}
	return nil
}

// SetWriteDeadline implements net.Conn. After Close it returns at once with
// an error wrapping net.ErrClosed.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.wdl.Set(t) != nil {
		return c.opErr("set", net.ErrClosed)
	}
	return nil
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "utp", Source: c.s.pc.LocalAddr(), Addr: c.raddr, Err: err}
}

// ---- termination ----

// fail ends the connection with err (c.mu held).
func (c *Conn) fail(err error) {
	if c.state == csDone {
		return
	}
	c.state = csDone
	c.err = err
	close(c.done)
	c.timer.Stop()
	c.ackTimer.Stop()
	for _, p := range c.inflight {
		p.free()
	}
	c.inflight = nil
	c.unsent.release()
	c.ooo = nil
	c.s.remove(c)
	if c.closed {
		c.release()
	}
}

// release drops the receive buffer once nobody can read it.
func (c *Conn) release() { c.rbuf.release() }

// checkFinished ends a closed connection whose FIN was acked and whose
// peer has finished too (c.mu held).
func (c *Conn) checkFinished() {
	if c.closed && c.finAcked && c.eof {
		c.fail(net.ErrClosed)
	}
}

// ---- timers ----

// armTimer makes sure the timer fires by the earliest deadline
// (c.mu held). A timer that fires early just re-arms itself.
func (c *Conn) armTimer(now time.Time) {
	if c.state == csDone {
		return
	}
	if c.halfOpen {
		// no keep-alive, no idle check: only the half-open expiry
		next := c.synAt.Add(c.s.cfg.HalfOpenTimeout)
		c.timerAt = next
		c.timer.Reset(max(next.Sub(now), 0))
		return
	}
	next := c.lastRecv.Add(c.s.cfg.IdleTimeout)
	if ka := c.lastSend.Add(c.s.cfg.KeepAlive); ka.Before(next) {
		next = ka
	}
	if len(c.inflight) > 0 && c.rtoAt.Before(next) {
		next = c.rtoAt
	}
	if !c.persistAt.IsZero() && c.persistAt.Before(next) {
		next = c.persistAt
	}
	if !c.ptoAt.IsZero() && len(c.inflight) > 0 && c.ptoAt.Before(next) {
		next = c.ptoAt
	}
	if c.closed && c.closeBy.Before(next) {
		next = c.closeBy
	}
	if !c.timerAt.IsZero() && !next.Before(c.timerAt) {
		return // already armed for an earlier moment
	}
	c.timerAt = next
	c.timer.Reset(max(next.Sub(now), 0))
}

func (c *Conn) onTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timerAt = time.Time{}
	if c.state == csDone {
		return
	}
	now := time.Now()
	if c.halfOpen {
		if now.Sub(c.synAt) >= c.s.cfg.HalfOpenTimeout {
			c.halfOpen = false
			c.s.halfExpired.Add(1)
			c.fail(errHalfOpenExpired) // silently: the peer never answered
			return
		}
		c.armTimer(now)
		return
	}
	if c.closed && !now.Before(c.closeBy) {
		c.sendReset()
		c.fail(errLinger)
		return
	}
	if now.Sub(c.lastRecv) >= c.s.cfg.IdleTimeout {
		c.sendReset()
		c.fail(fmt.Errorf("%w for %v: %w", ErrPeerSilent, c.s.cfg.IdleTimeout, syscall.ETIMEDOUT))
		return
	}
	if len(c.inflight) > 0 && !now.Before(c.rtoAt) {
		c.ptoAt = time.Time{}
		c.onRTO(now)
	} else if !c.ptoAt.IsZero() && len(c.inflight) > 0 && !now.Before(c.ptoAt) {
		c.ptoAt = time.Time{}
		c.onPTO(now)
	}
	if !c.persistAt.IsZero() && !now.Before(c.persistAt) {
		c.persistAt = time.Time{}
		c.probe = true
		c.pump(now)
		c.probe = false
	}
	if now.Sub(c.lastSend) >= c.s.cfg.KeepAlive {
		c.sendState()
	}
	c.armTimer(now)
}

// onRTO handles a retransmission timeout: every packet still in flight is
// presumed lost, the window restarts at one packet (c.mu held).
func (c *Conn) onRTO(now time.Time) {
	c.s.timeouts.Add(1)
	c.rto = min(2*c.rto, maxRTO)
	c.ssthresh = max(c.cwnd/2, 2*c.mss)
	c.cwnd = c.mss
	c.inRecovery, c.undoOK = true, false
	c.episode++
	c.recoverySeq = c.seqNr - 1
	for _, p := range c.inflight {
		if !p.sacked && !p.lost {
			c.markLost(p)
		}
	}
	c.rtoAt = now.Add(c.rto)
	c.ptoCount = maxProbes // until an ack comes, only the RTO sends
	c.ptoAt = time.Time{}
	c.pump(now)
}

// onPTO is the tail-loss probe: no ack came for a while although packets
// are in flight, so the oldest one is presumed lost and sent again, long
// before the retransmission timeout (c.mu held).
func (c *Conn) onPTO(now time.Time) {
	c.ptoCount++
	for _, p := range c.inflight {
		if p.sacked {
			continue
		}
		if !p.lost {
			c.markLost(p)
		}
		p.lost = false
		c.nLost--
		c.transmit(p, now)
		return
	}
}

// pto is the probe timeout: max(2·SRTT, minPTO), doubling with every
// probe sent since the last ack, at most the RTO.
func (c *Conn) pto() time.Duration {
	if !c.rttSet {
		return c.rto
	}
	return min(max(2*c.srtt, minPTO)<<c.ptoCount, c.rto)
}

func (c *Conn) scheduleAck() {
	if !c.ackTimerSet {
		c.ackTimerSet = true
		d := c.s.ackDelay
		if d == 0 {
			d = delayedAck
		}
		c.ackTimer.Reset(d)
	}
}

func (c *Conn) onAckTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ackTimerSet = false
	if c.state == csConnected && c.unacked > 0 {
		c.sendState()
	}
}

// ---- receiving ----

// receive handles one packet of this connection (called by the socket's
// read loop).
func (c *Conn) receive(h *header, payload []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == csDone {
		return
	}
	if c.halfOpen && !c.receiveHalfOpen(h) {
		return
	}
	c.lastRecv = now
	c.replyMicro = microAt(now) - h.ts
	switch h.typ {
	case stReset:
		if c.state == csSynSent {
			c.fail(errRefused)
		} else {
			c.fail(errReset)
		}
		c.wakeAll()
		return
	case stSyn:
		if !c.client {
			c.sendSynAck() // our SYN-ACK was lost
		}
		return
	}
	if c.state == csSynSent {
		if h.typ != stState || h.ack != c.seqNr-1 {
			return // wait for the SYN's ack
		}
		c.ackNr = h.seq - 1
		c.peerWnd = int(h.wnd)
		c.notePeerDatagram(h.maxDgram)
		if c.synCount == 1 {
			c.sampleRTT(now.Sub(c.synAt)) // the handshake's round trip
		}
		c.state = csConnected
		close(c.established)
		// answer the SYN-ACK at once with an empty data packet (sent
		// reliably, like any data): our listener takes the connection in
		// (Accept returns it) on any answer, but libutp's acceptor can
		// send only after a DATA packet (it stays in SYN_RECV on a
		// STATE), so an acceptor that speaks first would wait for us
		p := newOutPacket(stData, c.seqNr, headerLen)
		c.seqNr++
		c.inflight = append(c.inflight, p)
		c.transmit(p, now)
		c.armTimer(now)
		return
	}
	if !c.client && !c.rttSet && c.synCount == 1 {
		// the first packet after our SYN-ACK: an upper bound of the RTT
		if d := now.Sub(c.synAt); d < time.Second {
			c.sampleRTT(d)
		}
		c.synCount++
	}
	prevWnd := c.peerWnd
	c.peerWnd = int(h.wnd)
	c.onAck(h, prevWnd, now)
	ackNow := false
	switch h.typ {
	case stData:
		ackNow = c.onData(h.seq, payload)
		if c.state == csDone {
			return
		}
	case stFin:
		ackNow = c.onFin(h.seq)
	}
	c.pump(now)
	if ackNow || c.unacked >= ackEvery && !c.s.deferAck(c) {
		c.sendState()
	} else if c.unacked > 0 {
		c.scheduleAck()
	}
	c.checkFinished()
	c.armTimer(now)
}

// onData stores one data packet; it reports whether an ack must go out at
// once (a duplicate, or a packet that fills a hole). Packets beyond a hole
// are acked by the selective ack of the next ack due (see ackEvery), not
// one by one.
func (c *Conn) onData(seq uint16, payload []byte) bool {
	d := seq - c.ackNr
	if d == 0 || d >= 0x8000 {
		return true // duplicate: our ack was lost
	}
	if c.finRecv && !seqLess(seq, c.finSeq) {
		return true // beyond the FIN
	}
	if c.closed {
		// data after Close is data nobody will read
		c.sendReset()
		c.fail(errReset)
		return false
	}
	if c.rbuf.len()+c.oooBytes+len(payload) > c.s.cfg.ReadBuffer+2*maxPacket {
		return true // buffer full: drop, re-advertise the window
	}
	if d == 1 {
		hole := len(c.ooo) > 0
		c.rbuf.push(payload)
		c.ackNr = seq
		c.deliverOutOfOrder()
		c.unacked++
		if !c.s.deferWake(c) {
			notify(c.readNotify)
		}
		return hole || c.eof
	}
	if d > maxOutOfOrder {
		return true
	}
	if c.ooo == nil {
		c.ooo = make(map[uint16][]byte)
	}
	if _, ok := c.ooo[seq]; ok {
		return true // a duplicate: our ack was lost
	}
	c.ooo[seq] = append([]byte(nil), payload...)
	c.oooBytes += len(payload)
	c.unacked++
	return false
}

func (c *Conn) onFin(seq uint16) bool {
	if !c.finRecv {
		d := seq - c.ackNr
		if d == 0 || d >= 0x8000 {
			return true
		}
		c.finRecv, c.finSeq = true, seq
	}
	c.deliverOutOfOrder()
	return true
}

// deliverOutOfOrder moves buffered packets that are now in order to rbuf,
// and notes the FIN when its turn comes.
func (c *Conn) deliverOutOfOrder() {
	for {
		next := c.ackNr + 1
		if c.finRecv && next == c.finSeq {
			c.ackNr = next
			c.eof = true
			notify(c.readNotify)
			return
		}
		p, ok := c.ooo[next]
		if !ok {
			return
		}
		delete(c.ooo, next)
		c.oooBytes -= len(p)
		c.rbuf.push(p)
		c.ackNr = next
	}
}

// window is the receive window we advertise: the free part of
// ReadBuffer, at most what the socket's receive buffer holds (wndCap). A
// larger window lets a sender put more in flight than the kernel buffers
// while our read loop is busy: libutp does, in bursts, and the datagrams
// beyond the buffer are dropped. A libutp dialler whose initial seq_nr is
// in the upper half of the sequence space never fast-retransmits (its
// fast_resend_seq_nr starts at 1 and the wrapping comparison never
// advances it), so each such loss cost a retransmission timeout of 1–1.5 s
// and a restart from a one-packet window.
func (c *Conn) window() int {
	return max(min(c.s.cfg.ReadBuffer-c.rbuf.len()-c.oooBytes, c.maxWindow()), 0)
}

// maxWindow is the window we advertise with nothing buffered.
func (c *Conn) maxWindow() int {
	if c.s.wndCap <= 0 { // not known (a socket built by a test)
		return c.s.cfg.ReadBuffer
	}
	return min(c.s.cfg.ReadBuffer, c.s.wndCap)
}

// maybeWindowUpdate tells the peer the window reopened after a read
// (c.mu held).
func (c *Conn) maybeWindowUpdate() {
	if c.state != csConnected {
		return
	}
	full := c.maxWindow()
	if c.lastWnd < full/4 && c.window() >= full/2 {
		c.sendState()
	}
}

// ---- acks and congestion control ----

// onAck processes ack_nr and the selective ack of h (c.mu held).
func (c *Conn) onAck(h *header, prevWnd int, now time.Time) {
	if len(c.inflight) == 0 {
		return
	}
	c.noteDelay(h.tsDiff, now)
	una := c.inflight[0].seq
	acked := int(uint16(h.ack - una + 1))
	if acked > len(c.inflight) {
		acked = 0 // old or bogus ack
	}
	bytesAcked := 0
	var rtt time.Duration
	var repaired time.Time // latest send of a resent packet acked here
	resentAcked := false
	echo, haveEcho := ackEcho(h)
	for _, p := range c.inflight[:acked] {
		if p.inNet {
			c.flightBytes -= p.size
		}
		if p.lost {
			c.nLost--
		}
		if !p.sacked {
			bytesAcked += p.size
		}
		if p.sends == 1 {
			rtt = now.Sub(p.sentAt)
		} else {
			resentAcked = true
			// the original's ack, late, when the timestamps say so, or
			// without them when it came sooner than a round trip after
			// the resend (RFC 8985's test): nothing sent before the
			// resend is then presumed lost
			original := now.Sub(p.sentAt) < c.srtt/4
			if c.judgeResend(p, echo, haveEcho); haveEcho {
				original = p.original
			}
			if !original && p.sentAt.After(repaired) {
				repaired = p.sentAt
			}
		}
		if p.typ == stFin {
			c.finAcked = true
		}
		p.free()
	}
	if acked > 0 {
		clear(c.inflight[:acked])
		c.inflight = c.inflight[acked:]
		if len(c.inflight) == 0 {
			c.inflight = nil
		}
		c.dupAcks = 0
		// Karn: an ack that covers a resent packet gives no sample. The
		// packets after it it acks too may have waited at the peer,
		// out of order, since they were sent: a libutp peer that lost
		// a window's head acked them seconds later, and the sample made
		// the SRTT 1.3 s (a probe every 2.6 s)
		if rtt > 0 && !resentAcked {
			c.sampleRTT(rtt)
		}
		if !repaired.IsZero() {
			c.lostBefore(repaired, now)
		}
		c.rtoAt = now.Add(c.rto)
		c.ptoCount = 0
		c.ptoAt = now.Add(c.pto())
		if c.inRecovery && !seqLess(h.ack, c.recoverySeq) {
			if c.undoOK && c.undoRetrans == 0 {
				// every resend of the episode was unneeded (or none
				// was made: what was presumed lost arrived): the
				// losses were not losses, the reduction is undone
				c.s.spurious.Add(1)
				c.cwnd = max(c.cwnd, c.undoCwnd)
				c.ssthresh = max(c.ssthresh, c.undoSsthresh)
			}
			c.inRecovery, c.undoOK = false, false
		}
		notify(c.writeNotify)
	} else if h.typ == stState && h.sack == nil && c.flightBytes > 0 && h.ack == una-1 && int(h.wnd) == prevWnd {
		c.dupAcks++
		if c.dupAcks == 3 && !c.inflight[0].lost && !c.inflight[0].sacked {
			c.markLost(c.inflight[0])
		}
	}
	if h.sack != nil && len(c.inflight) > 0 {
		bytesAcked += c.onSack(h)
	}
	c.grow(bytesAcked)
}

// ackEcho returns the timestamp of the last packet the peer had received
// when it sent h: its clock when it sent h less its clock's lead over
// ours then (timestamp_difference), plus the peer's wait between that
// packet and h, which only makes it later; ok is false when the peer
// sends no timestamp_difference. An ack the peer sent before a resend
// reached it echoes an earlier timestamp than the resend's (RFC 3522's
// Eifel detection, with uTP's timestamps).
func ackEcho(h *header) (echo uint32, ok bool) { return h.ts - h.tsDiff, h.tsDiff != 0 }

// judgeResend decides, once, whether the resends of p, which the peer now
// acks, were needed (c.mu held): not when the ack echoes a timestamp from
// before the first of them, since the peer had the original then. A
// needed resend, or one the ack cannot tell (no timestamps), rules out
// undoing its recovery episode.
func (c *Conn) judgeResend(p *outPacket, echo uint32, haveEcho bool) {
	if p.judged || p.sends < 2 {
		return
	}
	p.judged = true
	p.original = haveEcho && int32(echo-p.firstResend) < 0
	if p.episode != c.episode || !c.inRecovery {
		return
	}
	if p.original {
		c.undoRetrans -= p.sends - 1
	} else {
		c.undoOK = false
	}
}

// onSack applies a selective ack and declares lost every packet sent
// before three selectively acked ones; it returns the bytes newly acked.
func (c *Conn) onSack(h *header) int {
	una := c.inflight[0].seq
	echo, haveEcho := ackEcho(h)
	bytes := 0
	for i := 0; i < len(h.sack)*8; i++ {
		if h.sack[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		idx := int(uint16(h.ack + 2 + uint16(i) - una))
		if idx >= len(c.inflight) {
			continue
		}
		p := c.inflight[idx]
		if p.sacked {
			continue
		}
		p.sacked = true
		c.judgeResend(p, echo, haveEcho)
		if p.inNet {
			p.inNet = false
			c.flightBytes -= p.size
		}
		if p.lost {
			p.lost = false
			c.nLost--
		}
		bytes += p.size
	}
	// the send time of the third most recent selectively acked packet
	var third time.Time
	n := 0
	for i := len(c.inflight) - 1; i >= 0 && n < 3; i-- {
		if p := c.inflight[i]; p.sacked {
			n++
			third = p.sentAt
		}
	}
	if n < 3 {
		return bytes
	}
	for _, p := range c.inflight {
		if !p.sacked && p.inNet && p.sentAt.Before(third) {
			c.markLost(p)
		}
	}
	return bytes
}

// lostBefore declares lost every packet still in the network that was
// sent before t, the send of a resent packet the peer has now acked, and
// more than a round trip (plus a quarter for reordering) before now
// (c.mu held): the resend overtook them, so they are gone (RFC 8985's
// rule, for the resends of probes and timeouts). Without it a window
// lost at its head (libutp's socket buffer overflowed: its acks then
// carry an empty selective ack, which no loss rule counts) was repaired
// one packet per probe timeout, each probe's ack resetting the probe
// back-off and the retransmission timer.
func (c *Conn) lostBefore(t, now time.Time) {
	wait := c.srtt + c.srtt/4
	for _, p := range c.inflight {
		if !p.sacked && p.inNet && p.sentAt.Before(t) && now.Sub(p.sentAt) > wait {
			c.markLost(p)
		}
	}
}

// markLost takes p out of the network and queues it for resending; the
// first loss of a window halves it.
func (c *Conn) markLost(p *outPacket) {
	p.lost = true
	c.nLost++
	if p.inNet {
		p.inNet = false
		c.flightBytes -= p.size
	}
	if !c.inRecovery {
		c.inRecovery = true
		c.recoverySeq = c.seqNr - 1
		c.episode++
		c.undoOK, c.undoRetrans = true, 0
		c.undoCwnd, c.undoSsthresh = c.cwnd, c.ssthresh
		c.ssthresh = max(c.cwnd/2, 2*c.mss)
		c.cwnd = c.ssthresh
	}
}

func (c *Conn) sampleRTT(rtt time.Duration) {
	if !c.rttSet {
		c.srtt, c.rttvar, c.rttSet = rtt, rtt/2, true
	} else {
		d := c.srtt - rtt
		if d < 0 {
			d = -d
		}
		c.rttvar = (3*c.rttvar + d) / 4
		c.srtt = (7*c.srtt + rtt) / 8
	}
	c.rto = min(max(c.srtt+4*c.rttvar, minRTO), maxRTO)
}

// noteDelay records the one-way delay the peer measured for our packets.
func (c *Conn) noteDelay(tsDiff uint32, now time.Time) {
	if tsDiff != 0 {
		c.delays.add(tsDiff, now)
	}
}

// grow adjusts the congestion window for bytesAcked newly acked bytes
// (LEDBAT, RFC 6817, with the multiplicative decrease of LEDBAT++,
// draft-irtf-iccrg-ledbat-plus-plus):
//   - slow start while below ssthresh and the queuing delay is under half
//     the target (a window that did not limit the sending does not grow);
//   - then below the target: +1 packet per RTT scaled by how far below
//     (the window grows only when it limited the sending: cwnd validation);
//   - above the target: −(delay/target − 1) of the window per RTT, at most
//     half, whether or not the window limited the sending. A decrease of
//     at most one packet per RTT (RFC 6817's linear one) let a window that
//     overshot keep the queue above the target for many RTTs, and never
//     gave way to a competing LEDBAT flow (libutp kept 18 % of a shared
//     link); a decrease in proportion to the window shares it (AIMD).
func (c *Conn) grow(bytesAcked int) {
	if bytesAcked <= 0 {
		return
	}
	qd, ok := c.delays.queuing()
	if !ok || qd <= target {
		c.overTarget = false
	}
	switch {
	case ok && qd > target:
		if !c.overTarget {
			// the window before this episode's decrease: once the
			// queue is gone, slow start may take the window back to
			// it (a delay spike — a peer starved of CPU, another flow's
			// burst — otherwise costs many RTTs of linear growth)
			c.overTarget = true
			c.ssthresh = c.cwnd
		}
		frac := min(float64(qd-target)/float64(target), 0.5)
		c.cwnd -= int(frac * float64(bytesAcked))
	case !c.cwndFull:
		// an application- or burst-limited window does not grow
	case c.cwnd < c.ssthresh && (!ok || qd < target/2):
		c.cwnd += bytesAcked
	default:
		if c.cwnd < c.ssthresh {
			c.ssthresh = c.cwnd // leave slow start: delay is building
		}
		off := 1.0
		if ok {
			off = float64(target-qd) / float64(target)
		}
		c.cwnd += int(off * float64(bytesAcked) * float64(c.mss) / float64(c.cwnd))
	}
	c.cwnd = min(max(c.cwnd, 2*c.mss), maxCwnd)
}

// ---- sending ----

// pump sends what the windows allow: lost packets first, then new data,
// then the FIN (c.mu held), in one batch when the socket sends batches.
func (c *Conn) pump(now time.Time) {
	if c.s.bw == nil {
		c.pumpPackets(now)
		return
	}
	c.batching = true
	c.pumpPackets(now)
	c.flush()
}

func (c *Conn) pumpPackets(now time.Time) {
	if c.state != csConnected {
		return
	}
	wnd := min(c.cwnd, c.peerWnd)
	burst := 0
	blocked := func(size int) bool {
		if burst += size; burst > maxBurst && burst > size {
			return true // the next ack goes on
		}
		if c.flightBytes+size <= wnd {
			return false
		}
		if c.flightBytes > 0 {
			c.cwndFull = c.cwnd <= c.peerWnd
			return true
		}
		// nothing in flight: the congestion window always lets one packet
		// go; a closed peer window only lets a probe go when the persist
		// timer fires (the peer also sends a window update when it reads)
		if c.peerWnd >= size || c.probe {
			c.probe = false
			return false
		}
		if c.persistAt.IsZero() {
			c.persistAt = now.Add(c.rto)
		}
		return true
	}
	c.cwndFull = false
	if c.nLost > 0 {
		for _, p := range c.inflight {
			if !p.lost {
				continue
			}
			if blocked(p.size) {
				return
			}
			p.lost = false
			c.nLost--
			c.transmit(p, now)
		}
	}
	freed := false
	for c.unsent.len() > 0 && len(c.inflight) < maxInflight {
		size := min(c.unsent.len(), c.mss)
		if blocked(size) {
			break
		}
		p := newOutPacket(stData, c.seqNr, headerLen+size)
		p.size = size
		c.unsent.read(p.buf[headerLen : headerLen+size])
		c.seqNr++
		c.inflight = append(c.inflight, p)
		c.transmit(p, now)
		freed = true
	}
	if freed {
		notify(c.writeNotify)
	}
	if c.writeShut && !c.finSent && c.unsent.len() == 0 && len(c.inflight) < maxInflight {
		p := newOutPacket(stFin, c.seqNr, headerLen)
		c.seqNr++
		c.finSent = true
		c.inflight = append(c.inflight, p)
		c.transmit(p, now)
	}
}

// transmit (re)sends p with a fresh header (c.mu held).
func (c *Conn) transmit(p *outPacket, now time.Time) {
	if p.sends == 0 && len(c.inflight) == 1 {
		// the first packet in flight; a resend does not push the timer
		// (a probe into a dead path must not postpone the RTO for ever)
		c.rtoAt = now.Add(c.rto)
	}
	if c.ptoAt.IsZero() && c.ptoCount < maxProbes {
		c.ptoAt = now.Add(c.pto())
	}
	c.persistAt = time.Time{}
	if p.sends > 0 {
		c.s.retransmits.Add(1)
		p.episode = c.episode
		if c.inRecovery {
			c.undoRetrans++
		}
	}
	p.sends++
	p.sentAt = now
	p.inNet = true
	c.flightBytes += p.size
	h := c.headerAt(p.typ, p.seq, now)
	if p.sends == 2 {
		p.firstResend = h.ts
	}
	putHeader(p.buf, &h)
	c.write(p.buf)
	c.lastSend = now
}

// header returns a header for a packet of ours (c.mu held). Every packet
// acks what we have received, so pending acks are cleared.
func (c *Conn) header(typ uint8, seq uint16) header {
	return c.headerAt(typ, seq, time.Now())
}

// headerAt is header stamped with the time now (a time.Now reading: its
// monotonic clock makes this arithmetic, not a clock read per packet).
func (c *Conn) headerAt(typ uint8, seq uint16, now time.Time) header {
	c.unacked = 0
	wnd := c.window()
	c.lastWnd = wnd
	return header{
		typ:    typ,
		connID: c.sendID,
		ts:     microAt(now),
		tsDiff: c.replyMicro,
		wnd:    uint32(wnd),
		seq:    seq,
		ack:    c.ackNr,
	}
}

// sendState sends an ack, with a selective ack when packets are missing
// (c.mu held).
func (c *Conn) sendState() {
	var b [headerLen + 2 + maxSackBytes]byte
	h := c.header(stState, c.seqNr)
	var sack [maxSackBytes]byte
	if len(c.ooo) > 0 || c.finRecv {
		last := -1
		for i := 0; i < maxSackBytes*8; i++ {
			seq := c.ackNr + 2 + uint16(i)
			_, ok := c.ooo[seq]
			if ok || c.finRecv && seq == c.finSeq {
				sack[i/8] |= 1 << (i % 8)
				last = i
			}
		}
		if last >= 0 {
			h.sack = sack[:(last/32+1)*4]
		}
	}
	n := putHeader(b[:], &h)
	c.write(b[:n])
	c.lastSend = time.Now()
}

// sendSynAck answers a SYN (c.mu held).
func (c *Conn) sendSynAck() {
	if c.synCount == 0 {
		c.synAt = time.Now()
	}
	c.synCount++
	var b [headerLen + extDatagramLen]byte
	h := c.header(stState, c.isn)
	h.maxDgram = maxPacket
	n := putHeader(b[:], &h)
	c.write(b[:n])
}

func (c *Conn) sendReset() {
	var b [headerLen]byte
	h := c.header(stReset, c.seqNr)
	putHeader(b[:], &h)
	c.write(b[:])
}

// write sends b, or queues it for flush while a pump batches (c.mu held).
// UDP: losses are handled by retransmission.
func (c *Conn) write(b []byte) {
	if c.batching {
		c.batch = append(c.batch, b)
		return
	}
	c.s.writeTo(b, c.key.addr)
}

// flush sends the batched datagrams (c.mu held: their buffers stay ours).
func (c *Conn) flush() {
	c.batching = false
	if len(c.batch) == 0 {
		return
	}
	_, _ = c.s.bw.WriteBatch(c.batch, c.key.addr)
	clear(c.batch)
	c.batch = c.batch[:0]
}

// wakeAll wakes blocked readers and writers (the done channel does too;
// this covers state changes that do not end the connection).
func (c *Conn) wakeAll() {
	notify(c.readNotify)
	notify(c.writeNotify)
}

// ---- delay history ----

// delayFilter keeps LEDBAT's base delay (minimum one-way delay over the
// last two minutes, in one-minute buckets) and the current delay (minimum
// of the last three samples).
type delayFilter struct {
	bucketStart time.Time
	base        [2]uint32 // minimum per bucket; [1] is the current one
	haveBase    bool
	recent      [3]uint32
	nRecent     int
}

func (f *delayFilter) add(d uint32, now time.Time) {
	if !f.haveBase {
		f.base = [2]uint32{d, d}
		f.bucketStart = now
		f.haveBase = true
	}
	if now.Sub(f.bucketStart) >= baseBucket {
		f.base[0], f.base[1] = f.base[1], d
		f.bucketStart = now
	}
	// delays are differences of unrelated clocks: compare them modulo 2^32
	if int32(d-f.base[1]) < 0 {
		f.base[1] = d
	}
	f.recent[f.nRecent%3] = d
	f.nRecent++
}

// queuing returns the current delay minus the base delay.
func (f *delayFilter) queuing() (time.Duration, bool) {
	if f.nRecent == 0 {
		return 0, false
	}
	base := f.base[1]
	if int32(f.base[0]-base) < 0 {
		base = f.base[0]
	}
	cur := f.recent[0]
	for i := 1; i < min(f.nRecent, 3); i++ {
		if int32(f.recent[i]-cur) < 0 {
			cur = f.recent[i]
		}
	}
	q := int32(cur - base)
	if q < 0 {
		q = 0
	}
	return time.Duration(q) * time.Microsecond, true
}

// connKey identifies a connection: the peer's address and the connection
// id its packets carry.
type connKey struct {
	addr netip.AddrPort
	id   uint16
}
