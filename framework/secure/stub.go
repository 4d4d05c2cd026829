package secure

// STUB: a non-cryptographic stand-in for the Noise XX session, with the
// package's fixed API, so that the engine can be built and tested against
// it. It authenticates nothing and encrypts nothing: public keys and the
// topic travel in the clear. It is replaced by the real implementation.
//
// Stub wire format, in the order of Noise XX (the initiator learns the
// responder's key first): the initiator sends "DWSS0", a flag byte (1: a
// topic follows) and the topic (32 bytes, zero when none); the responder
// answers a status byte (0 ok, 1 topic refused) and its public key; the
// initiator answers a status byte (0 ok, 2 refused) and its public key;
// the responder a last status byte (0 ok, 2 refused).
// Then frames: a type byte (0 data, 1 keep-alive, 2 end of stream) and,
// for data, a big-endian uint32 length and the bytes.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// Config is one end of a session.
type Config struct {
	KeyPair KeyPair           // our static key pair (required)
	Topic   [32]byte          // initiator: the topic it dials for; zero = none
	Topics  func() [][32]byte // responder: the topics it accepts initiators for (called once per handshake)
	// AllowNoTopic: responder: accept an initiator that names no topic.
	AllowNoTopic bool
	// Accept, if set, runs on both sides once the remote static key is
	// authenticated (and, on the responder, the topic is known), before
	// the handshake completes; an error aborts the handshake (the error
	// returned wraps ErrRefused).
	Accept    func(remote PublicKey, topic [32]byte) error
	KeepAlive time.Duration   // send a keep-alive frame after this long without sending (DefaultKeepAlive)
	Timeout   time.Duration   // end the session after this long without receiving anything (DefaultTimeout)
	Clock     clockwork.Clock // nil = real clock (keep-alive and timeout run on it)
	// OnClose, if set, is called exactly once, from the session's own
	// goroutine, when the session ends for any reason with why (nil after
	// a local Close). It must not block.
	OnClose func(err error)
	Logger  *slog.Logger // nil = discard
}

// Defaults of [Config].
const (
	DefaultKeepAlive = 5 * time.Second
	DefaultTimeout   = 15 * time.Second
)

// Sentinel errors (returned errors wrap them with %w).
var (
	// ErrHandshake: malformed or failed handshake.
	ErrHandshake = errors.New("secure: handshake failed")
	// ErrVersion: no common protocol version.
	ErrVersion = errors.New("secure: no common protocol version")
	// ErrTopic: the initiator proved no topic the responder accepts.
	ErrTopic = errors.New("secure: topic not accepted")
	// ErrRefused: Accept said no.
	ErrRefused = errors.New("secure: refused")
	// ErrTampered: a frame failed authentication, was replayed or truncated.
	ErrTampered = errors.New("secure: frame tampered")
	// ErrTimeout: nothing received within Timeout.
	ErrTimeout = errors.New("secure: session timed out")
	// ErrClosedByPeer: the peer closed or reset.
	ErrClosedByPeer = errors.New("secure: closed by peer")
)

const stubMagic = "DWSS0"

const (
	stOK      = 0
	stTopic   = 1
	stRefused = 2
)

const (
	frData  = 0
	frAlive = 1
	frEnd   = 2
)

const maxStubFrame = 1 << 20

// Conn is a session: a net.Conn over the transport connection.
type Conn struct {
	nc        net.Conn
	cfg       Config
	remote    PublicKey
	topic     [32]byte
	initiator bool

	wmu sync.Mutex // serialises frame writes

	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	eof    bool  // the peer ended its stream
	rerr   error // the session's end, for Read once buf is drained
	closed bool  // local Close
	rdl    time.Time
	rtimer *time.Timer

	done     chan struct{}
	doneOnce sync.Once
	err      atomic.Pointer[error]
}

// Client runs the initiator side of the handshake on c (the dialler). ctx
// bounds the handshake. On error c is closed.
func Client(ctx context.Context, c net.Conn, cfg Config) (*Conn, error) {
	return handshake(ctx, c, cfg, true)
}

// Server runs the responder side of the handshake on c. ctx bounds the
// handshake. On error c is closed.
func Server(ctx context.Context, c net.Conn, cfg Config) (*Conn, error) {
	return handshake(ctx, c, cfg, false)
}

func handshake(ctx context.Context, c net.Conn, cfg Config, initiator bool) (*Conn, error) {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	s := &Conn{nc: c, cfg: cfg, initiator: initiator, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	br := bufio.NewReader(c)
	var err error
	if initiator {
		err = s.clientHello(br)
	} else {
		err = s.serverHello(br)
	}
	if !stop() || ctx.Err() != nil {
		if err == nil {
			err = fmt.Errorf("%w: %w", ErrHandshake, ctx.Err())
		}
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	go s.readLoop(br)
	return s, nil
}

func (s *Conn) clientHello(br *bufio.Reader) error {
	msg := make([]byte, 0, len(stubMagic)+33)
	msg = append(msg, stubMagic...)
	if s.cfg.Topic != ([32]byte{}) {
		msg = append(msg, 1)
	} else {
		msg = append(msg, 0)
	}
	msg = append(msg, s.cfg.Topic[:]...)
	if _, err := s.nc.Write(msg); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	var resp [1 + KeySize]byte
	if _, err := io.ReadFull(br, resp[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	switch resp[0] {
	case stOK:
	case stTopic:
		return fmt.Errorf("%w: the responder refused our topic", ErrTopic)
	default:
		return fmt.Errorf("%w: bad status %d", ErrHandshake, resp[0])
	}
	copy(s.remote[:], resp[1:])
	s.topic = s.cfg.Topic
	if s.cfg.Accept != nil {
		if err := s.cfg.Accept(s.remote, s.topic); err != nil {
			s.nc.Write([]byte{stRefused})
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	out := append([]byte{stOK}, s.cfg.KeyPair.Public[:]...)
	if _, err := s.nc.Write(out); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	st, err := br.ReadByte()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if st != stOK {
		return fmt.Errorf("%w by the responder", ErrRefused)
	}
	return nil
}

func (s *Conn) serverHello(br *bufio.Reader) error {
	var msg [len(stubMagic) + 33]byte
	if _, err := io.ReadFull(br, msg[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if string(msg[:len(stubMagic)]) != stubMagic {
		return fmt.Errorf("%w: not a session", ErrVersion)
	}
	b := msg[len(stubMagic):]
	hasTopic := b[0] == 1
	copy(s.topic[:], b[1:])
	reply := func(st byte) error {
		out := append([]byte{st}, s.cfg.KeyPair.Public[:]...)
		_, err := s.nc.Write(out)
		return err
	}
	if hasTopic {
		var topics [][32]byte
		if s.cfg.Topics != nil {
			topics = s.cfg.Topics()
		}
		if !slices.Contains(topics, s.topic) {
			reply(stTopic)
			return fmt.Errorf("%w: the initiator's topic is not one we accept", ErrTopic)
		}
	} else {
		s.topic = [32]byte{}
		if !s.cfg.AllowNoTopic {
			reply(stTopic)
			return fmt.Errorf("%w: the initiator named no topic", ErrTopic)
		}
	}
	if err := reply(stOK); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	st, err := br.ReadByte()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if st != stOK {
		return fmt.Errorf("%w by the initiator", ErrRefused)
	}
	if _, err := io.ReadFull(br, s.remote[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if s.cfg.Accept != nil {
		if err := s.cfg.Accept(s.remote, s.topic); err != nil {
			s.nc.Write([]byte{stRefused})
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	if _, err := s.nc.Write([]byte{stOK}); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return nil
}

// readLoop reads frames until the transport connection ends, so that a
// remote close is noticed whether or not the user reads.
func (s *Conn) readLoop(br *bufio.Reader) {
	var why error
	for {
		t, err := br.ReadByte()
		if err != nil {
			why = err
			break
		}
		switch t {
		case frAlive:
			continue
		case frEnd:
			s.mu.Lock()
			s.eof = true
			s.cond.Broadcast()
			s.mu.Unlock()
			continue
		case frData:
		default:
			why = fmt.Errorf("%w: unknown frame type %d", ErrTampered, t)
		}
		if why != nil {
			break
		}
		var lb [4]byte
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			why = fmt.Errorf("%w: truncated frame: %w", ErrTampered, err)
			break
		}
		n := binary.BigEndian.Uint32(lb[:])
		if n > maxStubFrame {
			why = fmt.Errorf("%w: frame of %d bytes", ErrTampered, n)
			break
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			why = fmt.Errorf("%w: truncated frame: %w", ErrTampered, err)
			break
		}
		s.mu.Lock()
		for len(s.buf) > 4*maxStubFrame && !s.closed {
			s.cond.Wait() // back-pressure: the user reads slower than the peer sends
		}
		s.buf = append(s.buf, data...)
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	s.mu.Lock()
	local := s.closed
	var end error
	switch {
	case local:
		end = nil
	case errors.Is(why, io.EOF):
		end = ErrClosedByPeer
		s.eof = true // a clean close: Read returns io.EOF
	case errors.Is(why, ErrTampered):
		end = why
	default:
		end = fmt.Errorf("%w: %w", ErrClosedByPeer, why)
	}
	if end != nil {
		s.rerr = end
	} else {
		s.rerr = net.ErrClosed
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	s.nc.Close()
	s.finish(end)
}

func (s *Conn) finish(err error) {
	s.doneOnce.Do(func() {
		if err != nil {
			s.err.Store(&err)
		}
		close(s.done)
		if s.cfg.OnClose != nil {
			s.cfg.OnClose(err)
		}
	})
}

// Read reads decrypted bytes. After the peer ended its stream (CloseWrite
// or a clean close) it returns io.EOF once the buffered bytes are read.
func (s *Conn) Read(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) == 0 && !s.eof && s.rerr == nil && !s.closed && !s.deadlinePassed() {
		s.cond.Wait()
	}
	if len(s.buf) > 0 {
		n := copy(b, s.buf)
		s.buf = s.buf[n:]
		s.cond.Broadcast()
		return n, nil
	}
	switch {
	case s.closed:
		return 0, net.ErrClosed
	case s.eof:
		return 0, io.EOF
	case s.deadlinePassed():
		return 0, fmt.Errorf("secure: read: %w", os.ErrDeadlineExceeded)
	}
	return 0, s.rerr
}

func (s *Conn) writeFrame(t byte, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	hdr := []byte{t}
	if t == frData {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(p)))
	}
	_, err := s.nc.Write(append(hdr, p...))
	return err
}

// Write writes bytes as data frames.
func (s *Conn) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), maxStubFrame)
		if err := s.writeFrame(frData, b[:k]); err != nil {
			return n, err
		}
		n += k
		b = b[k:]
	}
	return n, nil
}

// CloseWrite half-closes: the peer reads io.EOF, we can still read.
func (s *Conn) CloseWrite() error { return s.writeFrame(frEnd, nil) }

// Close ends the session.
func (s *Conn) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	return s.nc.Close()
}

// RemotePublicKey returns the peer's static public key.
func (s *Conn) RemotePublicKey() PublicKey { return s.remote }

// Topic returns the topic the initiator proved (zero if none).
func (s *Conn) Topic() [32]byte { return s.topic }

// Initiator reports whether this side dialled.
func (s *Conn) Initiator() bool { return s.initiator }

// Done is closed when the session ended.
func (s *Conn) Done() <-chan struct{} { return s.done }

// Err returns why the session ended (nil while open or after a local Close).
func (s *Conn) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// NetConn returns the transport connection underneath.
func (s *Conn) NetConn() net.Conn { return s.nc }

// LocalAddr implements net.Conn.
func (s *Conn) LocalAddr() net.Addr { return s.nc.LocalAddr() }

// RemoteAddr implements net.Conn.
func (s *Conn) RemoteAddr() net.Addr { return s.nc.RemoteAddr() }

// SetDeadline implements net.Conn.
func (s *Conn) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.nc.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (s *Conn) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rtimer != nil {
		s.rtimer.Stop()
		s.rtimer = nil
	}
	s.rdl = t
	if !t.IsZero() {
		s.rtimer = time.AfterFunc(time.Until(t), func() {
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		})
	}
	s.cond.Broadcast()
	return nil
}

// deadlinePassed reports whether the read deadline passed. Caller holds s.mu.
func (s *Conn) deadlinePassed() bool { return !s.rdl.IsZero() && !time.Now().Before(s.rdl) }

// SetWriteDeadline implements net.Conn.
func (s *Conn) SetWriteDeadline(t time.Time) error { return s.nc.SetWriteDeadline(t) }
