package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// The fd channel carries file descriptors from a plugin to its host. The
// host keeps one end of a socketpair and gives the other to the plugin as
// its fd 3 (exec.Cmd.ExtraFiles). How the channel is built depends on the
// platform (see [HandoffMode]):
//
//   - Linux: an AF_UNIX SOCK_SEQPACKET socketpair; every message is one
//     datagram, with its fd (if any) in SCM_RIGHTS.
//   - macOS and the other BSDs (no AF_UNIX SOCK_SEQPACKET): an AF_UNIX
//     SOCK_STREAM socketpair; every message is a frame, a 4-byte big-endian
//     length then the message, its fd in SCM_RIGHTS with the frame's bytes.
//   - Windows (no fd passing): no fd 3; the plugin connects back to a
//     loopback TCP listener of the host (see connect.go), and the channel
//     is the plugin's control connection, carrying the same frames without
//     fds.
//
// The messages, plugin → host:
//
//	+------+----------------+-------------------------------+
//	| type | token (8, BE)  | body                          |
//	+------+----------------+-------------------------------+
//	type 1 (fdMsgFD):       body empty; exactly one fd in SCM_RIGHTS
//	type 2 (fdMsgRelayEnd): body = status (1 byte: 0 clean EOF, 1 error)
//	                        then the error text (at most 1024 bytes)
//
// The token is the one the host put in the RPC request the fd answers; the
// plugin sends the fd before it replies, so the fd is already queued when
// the reply arrives. A RELAY_END tells the host that the plugin side of a
// relayed connection ended, and how, before the plugin shuts down its end of
// the relay: the host can tell a clean EOF from a plugin that died mid-
// stream. The channel also tells the host at once that the plugin exited:
// the kernel closes the plugin's end and the host reads EOF.
const (
	fdMsgFD       = 1
	fdMsgRelayEnd = 2
	fdMsgHeader   = 9
	fdMsgMax      = fdMsgHeader + 1 + MaxErrorLen
)

// HandoffMode is how an instance's sockets reach the host.
type HandoffMode int

const (
	// HandoffSeqpacket passes fds over a SOCK_SEQPACKET fd channel; the
	// shared UDP socket's relay is a SOCK_SEQPACKET pair too (Linux).
	HandoffSeqpacket HandoffMode = iota + 1
	// HandoffStream passes fds over a framed SOCK_STREAM fd channel; the
	// shared UDP socket's relay is a framed SOCK_STREAM pair (macOS, BSD).
	HandoffStream
	// HandoffConnect passes no fds: the plugin connects back to the host
	// over loopback TCP for every relayed connection and for the shared UDP
	// socket, and every connection is relayed (Windows).
	HandoffConnect
)

// String names the mode: "seqpacket", "stream" or "connect".
func (m HandoffMode) String() string {
	switch m {
	case HandoffSeqpacket:
		return "seqpacket"
	case HandoffStream:
		return "stream"
	case HandoffConnect:
		return "connect"
	}
	return fmt.Sprintf("HandoffMode(%d)", int(m))
}

// PassesFDs reports whether sockets themselves cross the channel.
func (m HandoffMode) PassesFDs() bool { return m != HandoffConnect }

// fdMsg is a parsed fd-channel message (without its fds).
type fdMsg struct {
	typ    byte
	token  uint64
	status byte   // fdMsgRelayEnd
	text   string // fdMsgRelayEnd
}

// parseFDMessage parses one message. nfds is how many fds came with it.
func parseFDMessage(b []byte, nfds int) (fdMsg, error) {
	if len(b) < fdMsgHeader {
		return fdMsg{}, fmt.Errorf("fd channel: message of %d bytes", len(b))
	}
	m := fdMsg{typ: b[0], token: binary.BigEndian.Uint64(b[1:9])}
	if m.token == 0 {
		return fdMsg{}, errors.New("fd channel: token 0")
	}
	switch m.typ {
	case fdMsgFD:
		if len(b) != fdMsgHeader || nfds != 1 {
			return fdMsg{}, fmt.Errorf("fd channel: fd message with %d bytes and %d fds", len(b), nfds)
		}
	case fdMsgRelayEnd:
		if len(b) < fdMsgHeader+1 || nfds != 0 {
			return fdMsg{}, fmt.Errorf("fd channel: relay-end message with %d bytes and %d fds", len(b), nfds)
		}
		m.status = b[fdMsgHeader]
		if m.status > 1 {
			return fdMsg{}, fmt.Errorf("fd channel: relay-end status %d", m.status)
		}
		m.text = Clip(string(b[fdMsgHeader+1:]), MaxErrorLen)
	default:
		return fdMsg{}, fmt.Errorf("fd channel: message type %d", m.typ)
	}
	return m, nil
}

func encodeFDMessage(typ byte, token uint64, body []byte) []byte {
	b := make([]byte, fdMsgHeader, fdMsgHeader+len(body))
	b[0] = typ
	binary.BigEndian.PutUint64(b[1:], token)
	return append(b, body...)
}

// Handoff is what arrives under a token: an fd (fd modes) or a connection
// the plugin made to the host (HandoffConnect). [FDChan.ConnOf] and its
// siblings check it and turn it into what the request asked for.
type Handoff struct {
	f    *os.File
	c    net.Conn
	kind byte // HandoffConnect: connectRelay or connectPacket
}

func (h Handoff) close() {
	if h.f != nil {
		h.f.Close()
	}
	if h.c != nil {
		h.c.Close()
	}
}

// Slot waits for what the plugin sends under one token.
type Slot struct {
	fd     chan Handoff  // buffered 1
	ended  chan struct{} // closed on RELAY_END
	endErr error         // set before ended closes: nil for a clean EOF
}

// Ended is closed when the plugin reports that its side of the relay under
// this slot's token ended (a relay-end message).
func (s *Slot) Ended() <-chan struct{} { return s.ended }

// EndErr is how the relay ended, once Ended is closed: nil for a clean EOF,
// else the plugin's error.
func (s *Slot) EndErr() error { return s.endErr }

// FDChan is the host end of a plugin's fd channel.
type FDChan struct {
	mode   HandoffMode
	conn   net.Conn // the channel (fd modes) or the control connection
	log    *slog.Logger
	dead   chan struct{} // closed when the plugin's end is gone
	doneRd chan struct{} // closed when the reader returns
	back   *connectListener

	mu    sync.Mutex
	next  uint64
	slots map[uint64]*Slot
	err   error // why the channel died
}

func newFDChanOf(mode HandoffMode, log *slog.Logger) *FDChan {
	return &FDChan{mode: mode, log: log, dead: make(chan struct{}), doneRd: make(chan struct{}), slots: map[uint64]*Slot{}}
}

// Mode is how the plugin's sockets reach the host over this channel.
func (f *FDChan) Mode() HandoffMode { return f.mode }

// Dead is closed when the plugin's end of the channel is gone: the plugin
// exited (the kernel closed its end) or Close was called.
func (f *FDChan) Dead() <-chan struct{} { return f.dead }

// Err says why the channel died (nil while it lives).
func (f *FDChan) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// AwaitControl waits up to d for the control connection of a HandoffConnect
// channel, which the plugin makes before its go-plugin handshake; it
// returns nil at once in the fd modes.
func (f *FDChan) AwaitControl(d time.Duration) error {
	if f.back == nil {
		return nil
	}
	return f.back.awaitControl(d)
}

// Alloc reserves a token, for a request whose reply hands a socket over.
// Release it when done.
func (f *FDChan) Alloc() (uint64, *Slot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	s := &Slot{fd: make(chan Handoff, 1), ended: make(chan struct{})}
	f.slots[f.next] = s
	return f.next, s
}

// Release forgets a token, closing a hand-off that arrived and was not taken.
func (f *FDChan) Release(token uint64) {
	f.mu.Lock()
	s := f.slots[token]
	delete(f.slots, token)
	f.mu.Unlock()
	if s != nil {
		select {
		case h := <-s.fd:
			h.close()
		default:
		}
	}
}

// fdWait bounds the wait for an fd after its reply: the plugin sends the fd
// before it replies, so it is already queued unless the plugin lied. (A
// connection made back to the host may still be on its way: it was
// connected, and its hello written, before the reply.)
const fdWait = time.Second

// Take waits for the token's hand-off (normally queued before the reply).
func (f *FDChan) Take(ctx context.Context, s *Slot) (Handoff, error) {
	wait := fdWait
	if f.mode == HandoffConnect {
		wait = connectWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	select {
	case h := <-s.fd:
		return h, nil
	default:
	}
	select {
	case h := <-s.fd:
		return h, nil
	case <-f.dead:
		select {
		case h := <-s.fd:
			return h, nil
		default:
		}
		return Handoff{}, fmt.Errorf("%w before it sent the connection", ErrCrashed)
	case <-ctx.Done():
		return Handoff{}, BadReply("reply names an fd the plugin never sent (%v)", ctx.Err())
	}
}

// Close shuts the host end and waits for the reader.
func (f *FDChan) Close() {
	if f.back != nil {
		f.back.close()
	}
	if f.conn != nil {
		f.conn.Close()
	}
	<-f.doneRd
}

// ended records why the channel died and tells the waiters.
func (f *FDChan) ended(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	close(f.dead)
}

// readFrames reads framed messages (HandoffStream and HandoffConnect)
// until recv fails. Fds may come with any read; they are queued and every
// fd message takes the oldest (a plugin sends each fd with the first byte
// of its message, so it has arrived by the time the message is complete).
func (f *FDChan) readFrames(recv func(b, oob []byte) (n, oobn, flags int, err error)) {
	defer close(f.doneRd)
	fr := newFrameReader(fdMsgMax, 4*(frameHeader+fdMsgMax))
	oob := make([]byte, oobSpace)
	var queue []int
	var err error
	defer func() {
		for _, fd := range queue {
			closeFD(fd)
		}
	}()
	for {
		for {
			msg, ok, bad := fr.next()
			if !ok {
				break
			}
			if bad {
				f.log.Warn("plugin sent garbage on the fd channel", "err", "oversized frame")
				continue
			}
			var fds []int
			if len(msg) > 0 && msg[0] == fdMsgFD && len(queue) > 0 {
				fds, queue = queue[:1:1], queue[1:]
			}
			m, perr := parseFDMessage(msg, len(fds))
			if perr != nil {
				f.garbage(fds, perr)
				continue
			}
			f.deliver(m, fds)
		}
		var n, oobn, flags int
		n, oobn, flags, err = recv(fr.space(), oob)
		if err == nil && n == 0 && oobn == 0 {
			err = errors.New("fd channel closed by the plugin")
		}
		if err != nil {
			break
		}
		fr.wrote(n)
		fds := parseRights(oob[:oobn])
		if flags&msgTruncated != 0 {
			f.log.Warn("plugin sent garbage on the fd channel", "err", "truncated control message")
		}
		queue = append(queue, fds...)
		if len(queue) > maxQueuedFDs { // fds no message asked for
			f.garbage(queue[:len(queue)-maxQueuedFDs], errors.New("fd channel: fds without messages"))
			queue = append(queue[:0], queue[len(queue)-maxQueuedFDs:]...)
		}
	}
	f.ended(err)
}

// maxQueuedFDs bounds the fds a stream channel holds for messages to come.
const maxQueuedFDs = 64

func (f *FDChan) garbage(fds []int, err error) {
	for _, fd := range fds {
		closeFD(fd)
	}
	f.log.Warn("plugin sent garbage on the fd channel", "err", err)
}

func (f *FDChan) deliver(m fdMsg, fds []int) {
	switch m.typ {
	case fdMsgFD:
		f.put(m.token, Handoff{f: os.NewFile(uintptr(fds[0]), "dwebswarm-handoff")})
	case fdMsgRelayEnd:
		f.mu.Lock()
		s := f.slots[m.token]
		f.mu.Unlock()
		if s == nil {
			return
		}
		f.mu.Lock()
		select {
		case <-s.ended:
		default:
			if m.status != 0 {
				s.endErr = errors.New(m.text)
			}
			close(s.ended)
		}
		f.mu.Unlock()
	}
}

// put hands h to the token's slot, closing it when nobody waits for it.
func (f *FDChan) put(token uint64, h Handoff) {
	f.mu.Lock()
	s := f.slots[token]
	f.mu.Unlock()
	if s == nil {
		h.close() // the caller gave up (cancelled dial) or a bogus token
		return
	}
	select {
	case s.fd <- h:
	default:
		h.close()
		f.log.Warn("plugin sent two fds for one token", "token", token)
	}
}

// StreamConn is a connection that half-closes: the host end of a relay.
type StreamConn interface {
	net.Conn
	CloseWrite() error
}

// RelayOf checks a relay hand-off and returns the host's end of it.
func (f *FDChan) RelayOf(h Handoff) (StreamConn, error) {
	if f.mode == HandoffConnect {
		if h.c == nil || h.kind != connectRelay {
			h.close()
			return nil, BadReply("relay hand-off is not a relay connection")
		}
		return h.c.(StreamConn), nil
	}
	defer h.f.Close()
	c, err := fileConn(h.f, true)
	if err != nil {
		return nil, err
	}
	return c.(StreamConn), nil
}

// ConnOf checks a connection handed off by fd and returns it.
func (f *FDChan) ConnOf(h Handoff) (net.Conn, error) {
	if f.mode == HandoffConnect {
		h.close()
		return nil, BadReply("plugin handed off a connection by fd, but this host passes no fds (%v)", f.mode)
	}
	defer h.f.Close()
	return fileConn(h.f, false)
}

// fileConn checks the socket type of a handed-off fd and wraps it. A relay
// must be a unix socket.
func fileConn(f *os.File, relay bool) (net.Conn, error) {
	typ, listening, err := socketType(f)
	if err != nil {
		return nil, err
	}
	if typ != syscall.SOCK_STREAM || listening {
		return nil, BadReply("handed-off connection fd is not a connected stream socket")
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, BadReply("handed-off connection fd: %v", err)
	}
	if _, ok := c.(*net.UnixConn); relay && !ok {
		c.Close()
		return nil, BadReply("relay fd is a %T, want a unix socket", c)
	}
	return c, nil
}

// ListenerOf checks a listener handed off by fd and returns it.
func (f *FDChan) ListenerOf(h Handoff) (net.Listener, error) {
	if f.mode == HandoffConnect {
		h.close()
		return nil, BadReply("plugin handed off a listener by fd, but this host passes no fds (%v)", f.mode)
	}
	defer h.f.Close()
	typ, listening, err := socketType(h.f)
	if err != nil {
		return nil, err
	}
	if typ != syscall.SOCK_STREAM || !listening {
		return nil, BadReply("handed-off listener fd is not a listening stream socket")
	}
	l, err := net.FileListener(h.f)
	if err != nil {
		return nil, BadReply("handed-off listener fd: %v", err)
	}
	return l, nil
}

// PacketLinkOf checks the hand-off of a shared UDP socket's relay and
// returns the host's end of it.
func (f *FDChan) PacketLinkOf(h Handoff) (MsgConn, error) {
	if f.mode == HandoffConnect {
		if h.c == nil || h.kind != connectPacket {
			h.close()
			return nil, BadReply("shared udp socket hand-off is not a packet relay connection")
		}
		return newFramedMsgConn(h.c), nil
	}
	defer h.f.Close()
	want := syscall.SOCK_SEQPACKET
	if f.mode == HandoffStream {
		want = syscall.SOCK_STREAM
	}
	typ, listening, err := socketType(h.f)
	if err != nil {
		return nil, err
	}
	if typ != want || listening {
		return nil, BadReply("shared udp socket fd is not a connected %s socket", sockTypeName(want))
	}
	c, err := net.FileConn(h.f)
	if err != nil {
		return nil, BadReply("shared udp socket fd: %v", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, BadReply("shared udp socket fd is a %T, want a unix socket", c)
	}
	if f.mode == HandoffStream {
		return newFramedMsgConn(uc), nil
	}
	return newPacketMsgConn(uc), nil
}

func sockTypeName(t int) string {
	if t == syscall.SOCK_SEQPACKET {
		return "SOCK_SEQPACKET"
	}
	return "SOCK_STREAM"
}

// ---- plugin side ----

// OpenSender opens the plugin end of the fd channel its host set up: fd 3
// in the fd modes, a control connection back to the host where no fds pass
// (the host's [ConnectEnv] says where). Not started by a dwebswarm host, or
// given no usable channel, the sender fails every hand-off with an error
// saying why (the plugin can still answer Info).
func OpenSender() *FDSender {
	switch {
	case os.Getenv(MagicCookieKey) != MagicCookieValue:
		return &FDSender{err: errors.New("not started by a dwebswarm host")}
	case os.Getenv(ConnectEnv) != "":
		return openConnectSender(os.Getenv(ConnectEnv)) // the host passes no fds
	}
	return openFDSender() // only when started by a host: fd 3 is ours then
}

// FDSender is the plugin end of the fd channel.
type FDSender struct {
	mode HandoffMode
	conn *net.UnixConn // fd modes: fd 3; nil when the host gave none
	ctl  net.Conn      // HandoffConnect: the control connection
	back *connectDialer
	err  error // why there is no channel

	wmu sync.Mutex // one message at a time on a stream
}

// PassesFDs reports whether kernel sockets go to the host by fd (false
// where the host passes none: HandoffConnect).
func (s *FDSender) PassesFDs() bool { return s.back == nil && s.mode != HandoffConnect }

// writeMsg sends one message, with oob (SCM_RIGHTS) when given.
func (s *FDSender) writeMsg(m, oob []byte) error {
	switch {
	case s.conn != nil && s.mode == HandoffSeqpacket:
		_, _, err := s.conn.WriteMsgUnix(m, oob, nil)
		return err
	case s.conn != nil:
		fr := appendFrame(nil, m)
		s.wmu.Lock()
		defer s.wmu.Unlock()
		n, _, err := s.conn.WriteMsgUnix(fr, oob, nil)
		if err == nil && n < len(fr) {
			_, err = s.conn.Write(fr[n:])
		}
		return err
	case s.ctl != nil:
		if oob != nil {
			return errors.New("fd channel: this host passes no fds")
		}
		fr := appendFrame(nil, m)
		s.wmu.Lock()
		defer s.wmu.Unlock()
		_, err := s.ctl.Write(fr)
		return err
	}
	return s.err
}

// SendRelayEnd tells the host that the plugin side of the relay under
// token ended: cleanly (cause nil) or with cause.
func (s *FDSender) SendRelayEnd(token uint64, cause error) error {
	body := []byte{0}
	if cause != nil {
		body = append([]byte{1}, Clip(cause.Error(), MaxErrorLen)...)
	}
	return s.writeMsg(encodeFDMessage(fdMsgRelayEnd, token, body), nil)
}

// SendSyscallConn sends the fd behind c without duplicating it first.
func (s *FDSender) SendSyscallConn(token uint64, c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = s.sendFD(token, int(fd)) }); err != nil {
		return err
	}
	return serr
}

// NewRelay makes a relay for a connection under token and returns the
// plugin's end of it: one end of a stream socketpair whose other end went
// to the host, or (HandoffConnect) a connection made to the host.
func (s *FDSender) NewRelay(token uint64) (StreamConn, error) {
	if s.back != nil {
		c, err := s.back.dial(connectRelay, token)
		if err != nil {
			return nil, err
		}
		return c.(StreamConn), nil
	}
	if s.conn == nil {
		return nil, s.err
	}
	uc, err := s.sendPair(token, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	return uc, nil
}

// NewPacketLink makes the relay of the shared UDP socket under token and
// returns the plugin's end of it.
func (s *FDSender) NewPacketLink(token uint64) (MsgConn, error) {
	if s.back != nil {
		c, err := s.back.dial(connectPacket, token)
		if err != nil {
			return nil, err
		}
		return newFramedMsgConn(c), nil
	}
	if s.conn == nil {
		return nil, s.err
	}
	if s.mode == HandoffSeqpacket {
		uc, err := s.sendPair(token, syscall.SOCK_SEQPACKET, pktSocketBuffer)
		if err != nil {
			return nil, err
		}
		return newPacketMsgConn(uc), nil
	}
	uc, err := s.sendPair(token, syscall.SOCK_STREAM, pktSocketBuffer)
	if err != nil {
		return nil, err
	}
	return newFramedMsgConn(uc), nil
}
