package secure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/deadline"
	"github.com/flynn/noise"
	"github.com/jonboulle/clockwork"
)

// Frame layout (doc.go).
const (
	tagSize = 16
	// maxFrame is the largest ciphertext in one frame (the 16-bit length).
	maxFrame = 65535
	// maxPlaintext is the largest plaintext: type byte and body.
	maxPlaintext = maxFrame - tagSize
	// maxBody is the most application data one frame carries.
	maxBody = maxPlaintext - 1
	// recvBufMax bounds the receive buffer: the reader stops reading once
	// this much data waits for the application.
	recvBufMax = 256 << 10
)

// Frame types: the first plaintext byte.
const (
	frameData      = 0
	frameKeepAlive = 1
	frameFIN       = 2
	frameClose     = 3
)

// Close reasons: the close frame's body.
const (
	closeNormal = 0
	// closeRefused is the responder's Accept refusing the initiator, sent
	// as the responder's first frame instead of data.
	closeRefused = 1
)

// bufPool holds receive buffers for data waiting for Read, and Write's
// buffer for one frame.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 2+maxFrame); return &b }}

// txFrames is how many maximal frames Write seals into one transport
// write (fewer system calls; a 64 KiB Write is two frames, one write).
const txFrames = 4

// txPool holds Write's buffers: txFrames maximal frames.
var txPool = sync.Pool{New: func() any { b := make([]byte, txFrames*(2+maxFrame)); return &b }}

// internal end reasons that map to a nil Err.
var (
	errLocalClose = errors.New("secure: closed locally")
	errGraceful   = errors.New("secure: both directions closed")
)

// chunk is received data waiting for Read.
type chunk struct {
	buf      *[]byte
	off, end int
}

// Conn is an established session: a net.Conn whose bytes travel as
// authenticated, encrypted frames over the transport connection.
type Conn struct {
	nc        net.Conn
	cfg       *Config
	initiator bool
	remote    PublicKey
	topic     [32]byte
	clock     clockwork.Clock

	send *noise.CipherState // guarded by wmu
	recv *noise.CipherState // reader goroutine only

	wmu     sync.Mutex
	sentFIN atomic.Bool // set under wmu; read by the reader without it

	lastSend, lastRecv atomic.Int64 // clock UnixNano
	framesIn           atomic.Int64 // frames authenticated (tests)
	keepAlivesOut      atomic.Int64 // keep-alive frames sent (tests)
	handedOff          atomic.Int64 // bytes copied straight into a waiting Read's buffer (tests)

	mu     sync.Mutex
	chunks []chunk
	// pend is the buffer of a Read waiting for data, which the reader
	// fills directly (one copy fewer) while no chunks wait; pendN bytes of
	// it are filled. Only that Read clears it.
	pend      []byte
	pendN     int
	pendReady chan struct{} // cap 1: pend has data (for its Read only)
	buffered  int
	rerr      error // what Read returns once chunks are drained; set once
	gotFIN    bool
	stalled   bool  // the reader waits for buffer space
	ending    bool  // end was called or the reader stopped
	reason    error // why end was called
	localCl   bool
	err       error // final, once done is closed

	readable  chan struct{} // cap 1: data or state for Read
	space     chan struct{} // cap 1: room in the receive buffer
	rdone     chan struct{} // closed when rerr is set
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	done      chan struct{}

	rdl      deadline.Deadline
	kaTimer  clockwork.Timer
	toTimer  clockwork.Timer
	rx       rxReader // the reader goroutine's read-ahead
	startMu  sync.Mutex
	finished bool // timers must not re-arm; guarded by startMu

	confirmed chan struct{} // see Confirmed (confirm.go)
	relayed   bool          // see Relayed (relayed.go); set before the session is returned
}

func newConn(nc net.Conn, cfg *Config, initiator bool, remote PublicKey, topic [32]byte, send, recv *noise.CipherState) *Conn {
	c := &Conn{
		nc: nc, cfg: cfg, initiator: initiator, remote: remote, topic: topic, clock: cfg.Clock,
		send: send, recv: recv,
		readable:  make(chan struct{}, 1),
		pendReady: make(chan struct{}, 1),
		space:     make(chan struct{}, 1),
		rdone:     make(chan struct{}),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		rdl:       deadline.New(),
		rx:        newRxReader(nc),
	}
	now := c.clock.Now().UnixNano()
	c.lastSend.Store(now)
	c.lastRecv.Store(now)
	return c
}

// start arms the timers and starts the reader goroutine.
func (c *Conn) start() {
	now := c.clock.Now().UnixNano()
	c.lastRecv.Store(now)
	c.startMu.Lock()
	c.kaTimer = c.clock.AfterFunc(c.cfg.KeepAlive, c.keepAlive)
	c.toTimer = c.clock.AfterFunc(c.cfg.Timeout, c.checkTimeout)
	c.startMu.Unlock()
	go c.readLoop()
}

// RemotePublicKey is the peer's authenticated static key.
func (c *Conn) RemotePublicKey() PublicKey { return c.remote }

// Topic is the topic the initiator proved (zero if none).
func (c *Conn) Topic() [32]byte { return c.topic }

// Initiator reports whether we dialled (ran Client).
func (c *Conn) Initiator() bool { return c.initiator }

// Done is closed when the session has ended (after OnClose returned).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the session ended: nil while open, after a local Close, or
// after both sides closed their write directions.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// NetConn is the transport connection underneath.
func (c *Conn) NetConn() net.Conn { return c.nc }

// LocalAddr is the transport's local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr is the transport's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read (os.ErrDeadlineExceeded).
func (c *Conn) SetReadDeadline(t time.Time) error {
	if err := c.rdl.Set(t); err != nil {
		return net.ErrClosed
	}
	return nil
}

// SetWriteDeadline sets the deadline for Write, on the transport: a write
// that times out in the middle of a frame ends the session (the stream
// can no longer be framed), one that times out before writing anything
// leaves it open.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// Read reads decrypted, authenticated data. After the peer's
// CloseWrite or Close it returns the data buffered and then io.EOF; after
// a failure, the data buffered and then the failure.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		if deadline.Closed(c.rdl.Wait()) {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		if c.localCl {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(b) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		if len(c.chunks) > 0 {
			n := 0
			for n < len(b) && len(c.chunks) > 0 {
				ch := &c.chunks[0]
				k := copy(b[n:], (*ch.buf)[ch.off:ch.end])
				n += k
				ch.off += k
				if ch.off == ch.end {
					bufPool.Put(ch.buf)
					c.chunks[0] = chunk{}
					c.chunks = c.chunks[1:]
				}
			}
			if len(c.chunks) == 0 {
				c.chunks = nil
			}
			c.buffered -= n
			more := len(c.chunks) > 0 || c.rerr != nil
			c.mu.Unlock()
			signal(c.space)
			if more {
				signal(c.readable)
			}
			return n, nil
		}
		if c.rerr != nil {
			err := c.rerr
			c.mu.Unlock()
			return 0, err
		}
		mine := c.pend == nil
		if mine {
			c.pend, c.pendN = b, 0
		}
		c.mu.Unlock()
		var pendReady chan struct{} // nil: never ready
		if mine {
			pendReady = c.pendReady
		}
		select {
		case <-c.readable:
		case <-pendReady:
		case <-c.rdone:
		case <-c.rdl.Wait():
		}
		if mine {
			c.mu.Lock()
			n := c.pendN
			c.pend, c.pendN = nil, 0
			c.mu.Unlock()
			if n > 0 {
				return n, nil
			}
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// writeState reports why Write may not proceed, if it may not.
func (c *Conn) writeState() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.localCl:
		return net.ErrClosed
	case c.ending:
		if c.reason == errGraceful || c.reason == errLocalClose {
			return net.ErrClosed
		}
		return c.reason
	}
	return nil
}

// Write encrypts b into frames of at most maxBody bytes each.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writeState(); err != nil {
		return 0, err
	}
	if c.sentFIN.Load() {
		return 0, fmt.Errorf("secure: write after CloseWrite: %w", net.ErrClosed)
	}
	pool := &txPool
	if len(b) <= maxBody {
		pool = &bufPool // one frame
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	n := 0
	for n < len(b) {
		out := (*bp)[:0]
		m, frames := n, 0
		for m < len(b) && frames < txFrames {
			k := min(len(b)-m, maxBody)
			var err error
			if out, err = c.sealLocked(out, frameData, b[m:m+k]); err != nil {
				return n, err
			}
			m += k
			frames++
		}
		if err := c.writeLocked(out, frames); err != nil {
			return n, err
		}
		n = m
	}
	return n, nil
}

// sealLocked appends one frame (length and ciphertext) to dst, which has
// room for it. Caller holds wmu.
func (c *Conn) sealLocked(dst []byte, typ byte, body []byte) ([]byte, error) {
	at := len(dst)
	pt := dst[at+2 : at+2+1+len(body)]
	pt[0] = typ
	copy(pt[1:], body)
	out, err := c.send.Encrypt(dst[:at+2], nil, pt) // in place
	if err != nil {
		c.end(fmt.Errorf("%w: %w", ErrTampered, err))
		return dst, err
	}
	binary.BigEndian.PutUint16(out[at:], uint16(len(out)-at-2))
	return out, nil
}

// writeLocked writes frames sealed into out in one transport write. Caller
// holds wmu.
func (c *Conn) writeLocked(out []byte, frames int) error {
	w, err := c.nc.Write(out)
	if err != nil {
		if w == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// Nothing written: the stream is intact; give the nonces back
			// so that the next frame uses them.
			c.send.SetNonce(c.send.Nonce() - uint64(frames))
			return err
		}
		c.end(fmt.Errorf("%w: write: %w", ErrClosedByPeer, err))
		return err
	}
	c.lastSend.Store(c.clock.Now().UnixNano())
	return nil
}

// writeFrameLocked seals one frame into buf and writes it. Caller holds wmu.
func (c *Conn) writeFrameLocked(buf []byte, typ byte, body []byte) error {
	out, err := c.sealLocked(buf[:0], typ, body)
	if err != nil {
		return err
	}
	return c.writeLocked(out, 1)
}

// writeControl sends a control frame (keep-alive, FIN, close).
func (c *Conn) writeControl(typ byte, body ...byte) error {
	var buf [2 + 1 + 1 + tagSize + 8]byte
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeFrameLocked(buf[:], typ, body)
}

// CloseWrite sends FIN: the peer reads io.EOF once it has read what we
// sent; we can still read. Once both sides have sent FIN the session ends
// (Err nil).
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	if err := c.writeState(); err != nil {
		c.wmu.Unlock()
		return err
	}
	if c.sentFIN.Load() {
		c.wmu.Unlock()
		return nil
	}
	var buf [2 + 1 + tagSize + 8]byte
	err := c.writeFrameLocked(buf[:], frameFIN, nil)
	c.sentFIN.Store(true)
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	c.mu.Lock()
	both := c.gotFIN
	c.mu.Unlock()
	if both {
		c.end(errGraceful)
	}
	return nil
}

// Close ends the session: it sends a close frame when it can do so
// without waiting for a blocked Write, closes the transport, and unblocks
// Read and Write. It does not wait for the session's goroutine (OnClose
// may call it); Done closes once that goroutine is done. Close may be
// called more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.localCl = true
		open := !c.ending
		if open { // the first reason wins: a session that already failed keeps its error
			c.ending = true
			c.reason = errLocalClose
		}
		c.mu.Unlock()
		close(c.closing)
		signal(c.readable)
		if open && c.wmu.TryLock() {
			c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			var buf [2 + 1 + 1 + tagSize + 8]byte
			c.writeFrameLocked(buf[:], frameClose, []byte{closeNormal}) //nolint:errcheck // best effort
			c.wmu.Unlock()
		}
		c.nc.Close()
	})
	return nil
}

// end records why the session ends (the first reason wins) and closes the
// transport, which stops the reader.
func (c *Conn) end(why error) {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return
	}
	c.ending = true
	c.reason = why
	c.mu.Unlock()
	c.nc.Close()
}

// readFrame reads and opens one frame (the reader goroutine). The body
// aliases the read-ahead buffer and is valid until the next readFrame.
func (c *Conn) readFrame() (typ byte, body []byte, err error) {
	if err := c.rx.fill(2); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: truncated frame length", ErrTampered)
		}
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(c.rx.peek(2)))
	if n < tagSize+1 {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", ErrTampered, n)
	}
	if err := c.rx.fill(2 + n); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: truncated frame", ErrTampered)
		}
		return 0, nil, err
	}
	ct := c.rx.next(2 + n)[2:]
	pt, err := c.recv.Decrypt(ct[:0], nil, ct) // in place
	if err != nil {
		return 0, nil, fmt.Errorf("%w: frame failed authentication (forged, replayed or reordered)", ErrTampered)
	}
	c.framesIn.Add(1)
	c.lastRecv.Store(c.clock.Now().UnixNano())
	if c.cfg.onFrame != nil {
		c.cfg.onFrame(pt[0])
	}
	return pt[0], pt[1:], nil
}

func (c *Conn) readLoop() {
	err := c.readFrames()
	c.finish(err)
}

// readFrames reads until the session ends and returns why.
func (c *Conn) readFrames() error {
	for {
		typ, body, err := c.readFrame()
		if err != nil {
			if errors.Is(err, ErrTampered) {
				return err
			}
			c.mu.Lock()
			graceful := c.gotFIN
			c.mu.Unlock()
			if errors.Is(err, io.EOF) {
				if graceful {
					// FIN received, then the transport closed: the peer had
					// sent FIN first and closed on our FIN, or it closed;
					// either way nothing is lost.
					return errGraceful
				}
				return fmt.Errorf("%w: the transport closed without a close frame", ErrClosedByPeer)
			}
			return fmt.Errorf("%w: %w", ErrClosedByPeer, err)
		}
		switch typ {
		case frameData:
			c.mu.Lock()
			fin := c.gotFIN
			c.mu.Unlock()
			if fin {
				return fmt.Errorf("%w: data after FIN", ErrTampered)
			}
			if !c.enqueue(body) {
				return errLocalClose
			}
		case frameFIN, frameClose:
			refused := typ == frameClose && len(body) > 0 && body[0] == closeRefused
			if refused {
				return fmt.Errorf("%w: by %s", ErrRefused, c.remote.Short())
			}
			c.mu.Lock()
			c.gotFIN = true
			if c.rerr == nil {
				c.rerr = io.EOF
				close(c.rdone)
			}
			c.mu.Unlock()
			signal(c.readable)
			if typ == frameClose {
				return fmt.Errorf("%w: close frame (%w)", ErrClosedByPeer, io.EOF) // clean: wraps io.EOF
			}
			if c.sentFIN.Load() {
				return errGraceful
			}
		default: // keep-alive, and types a later version may add
		}
	}
}

// enqueue copies body into the receive buffer for Read, waiting for room
// in it; false when the session was closed meanwhile.
func (c *Conn) enqueue(body []byte) bool {
	for len(body) > 0 {
		c.mu.Lock()
		if c.localCl {
			c.mu.Unlock()
			return false
		}
		if c.buffered < recvBufMax {
			handed := false
			if len(c.chunks) == 0 && c.pendN < len(c.pend) {
				k := copy(c.pend[c.pendN:], body)
				c.pendN += k
				body = body[k:]
				handed = true
				c.handedOff.Add(int64(k))
			}
			queued := len(body) > 0
			for len(body) > 0 {
				n := len(c.chunks)
				if n == 0 || c.chunks[n-1].end == len(*c.chunks[n-1].buf) {
					c.chunks = append(c.chunks, chunk{buf: bufPool.Get().(*[]byte)})
					n++
				}
				last := &c.chunks[n-1]
				k := copy((*last.buf)[last.end:], body)
				last.end += k
				c.buffered += k
				body = body[k:]
			}
			c.stalled = false
			c.mu.Unlock()
			if handed {
				signal(c.pendReady)
			}
			if queued {
				signal(c.readable)
			}
			return true
		}
		first := !c.stalled
		c.stalled = true
		c.mu.Unlock()
		if first && c.cfg.onStall != nil {
			c.cfg.onStall()
		}
		select {
		case <-c.space:
			c.lastRecv.Store(c.clock.Now().UnixNano())
		case <-c.closing:
		}
	}
	return true
}

// finish runs once, on the reader goroutine, when the session ends.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	if c.ending && c.reason != nil && !(errors.Is(err, ErrRefused) && errors.Is(c.reason, ErrClosedByPeer)) {
		// The first reason wins, except that a refusal read from the peer
		// explains a failed write better than the write's error.
		err = c.reason
	}
	c.ending = true
	if c.reason == nil {
		c.reason = err
	}
	final := err
	if err == errLocalClose || err == errGraceful {
		final = nil
	}
	if c.rerr == nil {
		switch {
		case err == errLocalClose:
			c.rerr = net.ErrClosed
		case final == nil:
			c.rerr = io.EOF
		default:
			c.rerr = final
		}
		close(c.rdone)
	}
	c.err = final
	c.mu.Unlock()
	c.nc.Close()
	c.rx.release()
	c.startMu.Lock()
	c.finished = true
	c.kaTimer.Stop()
	c.toTimer.Stop()
	c.startMu.Unlock()
	c.rdl.Stop()
	signal(c.readable)
	if final != nil {
		c.cfg.Logger.Debug("secure: session ended", "remote", c.remote.Short(), "err", final)
	}
	if c.cfg.OnClose != nil {
		c.cfg.OnClose(final)
	}
	close(c.done)
}

// rearm resets t to fire after d unless the session finished.
func (c *Conn) rearm(t clockwork.Timer, d time.Duration) {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	if !c.finished {
		t.Reset(d)
	}
}

// keepAlive runs on cfg.Clock: it sends a keep-alive frame when nothing
// was sent for KeepAlive.
func (c *Conn) keepAlive() {
	ka := c.cfg.KeepAlive
	idle := time.Duration(c.clock.Now().UnixNano() - c.lastSend.Load())
	if idle >= ka {
		if c.wmu.TryLock() { // a blocked writer is sending anyway
			var buf [2 + 1 + tagSize + 8]byte
			if c.writeState() == nil {
				if c.writeFrameLocked(buf[:], frameKeepAlive, nil) == nil {
					c.keepAlivesOut.Add(1)
				}
			}
			c.wmu.Unlock()
		}
		idle = 0
	}
	c.rearm(c.kaTimer, ka-idle)
}

// checkTimeout runs on cfg.Clock: it ends the session when nothing was
// received for Timeout (not counting time the reader spent waiting for
// the application to make room).
func (c *Conn) checkTimeout() {
	to := c.cfg.Timeout
	c.mu.Lock()
	stalled := c.stalled
	c.mu.Unlock()
	idle := time.Duration(c.clock.Now().UnixNano() - c.lastRecv.Load())
	if stalled {
		idle = 0
	}
	if idle >= to {
		c.end(fmt.Errorf("%w: nothing received for %v", ErrTimeout, idle))
		return
	}
	c.rearm(c.toTimer, to-idle)
}
