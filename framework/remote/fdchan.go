package remote

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

	"golang.org/x/sys/unix"
)

// The fd channel carries file descriptors from a plugin to its host. It is
// an AF_UNIX SOCK_SEQPACKET socketpair: the host keeps one end and gives the
// other to the plugin as its fd 3 (exec.Cmd.ExtraFiles). Every message is
// one datagram, plugin → host:
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
	fdMsgMax      = fdMsgHeader + 1 + maxErrorLen
)

// fdMsg is a parsed fd-channel message (without its fds).
type fdMsg struct {
	typ    byte
	token  uint64
	status byte   // fdMsgRelayEnd
	text   string // fdMsgRelayEnd
}

// parseFDMessage parses one datagram. nfds is how many fds came with it.
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
		m.text = clip(string(b[fdMsgHeader+1:]), maxErrorLen)
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

// newFDChannelPair makes the socketpair: the host end as a connection, the
// plugin end as a file for cmd.ExtraFiles (close it after the start).
func newFDChannelPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fd channel: socketpair: %w", err)
	}
	hf := os.NewFile(uintptr(fds[0]), "dwebswarm-fdchan-host")
	c, err := net.FileConn(hf)
	hf.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("fd channel: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "dwebswarm-fdchan"), nil
}

// slot waits for what the plugin sends under one token.
type slot struct {
	fd     chan *os.File // buffered 1
	ended  chan struct{} // closed on RELAY_END
	endErr error         // set before ended closes: nil for a clean EOF
}

// fdChan is the host end of a plugin's fd channel.
type fdChan struct {
	conn   *net.UnixConn
	log    *slog.Logger
	dead   chan struct{} // closed when the plugin's end is gone
	doneRd chan struct{} // closed when the reader returns

	mu    sync.Mutex
	next  uint64
	slots map[uint64]*slot
	err   error // why the channel died
}

func newFDChan(c *net.UnixConn, log *slog.Logger) *fdChan {
	f := &fdChan{conn: c, log: log, dead: make(chan struct{}), doneRd: make(chan struct{}), slots: map[uint64]*slot{}}
	go f.read()
	return f
}

// alloc reserves a token. Release it when done.
func (f *fdChan) alloc() (uint64, *slot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	s := &slot{fd: make(chan *os.File, 1), ended: make(chan struct{})}
	f.slots[f.next] = s
	return f.next, s
}

// release forgets a token, closing an fd that arrived and was not taken.
func (f *fdChan) release(token uint64) {
	f.mu.Lock()
	s := f.slots[token]
	delete(f.slots, token)
	f.mu.Unlock()
	if s != nil {
		select {
		case fl := <-s.fd:
			fl.Close()
		default:
		}
	}
}

// fdWait bounds the wait for an fd after its reply: the plugin sends the fd
// before it replies, so it is already queued unless the plugin lied.
const fdWait = time.Second

// take waits for the token's fd (it is normally queued before the reply).
func (f *fdChan) take(ctx context.Context, s *slot) (*os.File, error) {
	ctx, cancel := context.WithTimeout(ctx, fdWait)
	defer cancel()
	select {
	case fl := <-s.fd:
		return fl, nil
	default:
	}
	select {
	case fl := <-s.fd:
		return fl, nil
	case <-f.dead:
		select {
		case fl := <-s.fd:
			return fl, nil
		default:
		}
		return nil, fmt.Errorf("%w before it sent the connection", ErrCrashed)
	case <-ctx.Done():
		return nil, badReply("reply names an fd the plugin never sent (%v)", ctx.Err())
	}
}

// close shuts the host end and waits for the reader.
func (f *fdChan) close() {
	f.conn.Close()
	<-f.doneRd
}

func (f *fdChan) read() {
	defer close(f.doneRd)
	buf := make([]byte, fdMsgMax+1)
	oob := make([]byte, unix.CmsgSpace(4*8))
	var err error
	for {
		var n, oobn, flags int
		n, oobn, flags, _, err = f.conn.ReadMsgUnix(buf, oob)
		if err == nil && n == 0 && oobn == 0 {
			err = errors.New("fd channel closed by the plugin")
		}
		if err != nil {
			break
		}
		fds := parseRights(oob[:oobn])
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			f.garbage(fds, errors.New("fd channel: truncated message"))
			continue
		}
		m, perr := parseFDMessage(buf[:n], len(fds))
		if perr != nil {
			f.garbage(fds, perr)
			continue
		}
		f.deliver(m, fds)
	}
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	close(f.dead)
}

func (f *fdChan) garbage(fds []int, err error) {
	for _, fd := range fds {
		unix.Close(fd)
	}
	f.log.Warn("plugin sent garbage on the fd channel", "err", err)
}

func (f *fdChan) deliver(m fdMsg, fds []int) {
	f.mu.Lock()
	s := f.slots[m.token]
	f.mu.Unlock()
	switch m.typ {
	case fdMsgFD:
		fl := os.NewFile(uintptr(fds[0]), "dwebswarm-handoff")
		if s == nil {
			fl.Close() // the caller gave up (cancelled dial) or a bogus token
			return
		}
		select {
		case s.fd <- fl:
		default:
			fl.Close()
			f.log.Warn("plugin sent two fds for one token", "token", m.token)
		}
	case fdMsgRelayEnd:
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

// parseRights returns every fd in the control messages (closing none).
func parseRights(oob []byte) []int {
	if len(oob) == 0 {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var out []int
	for i := range msgs {
		if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			out = append(out, fds...)
		}
	}
	return out
}

// socketType returns SO_TYPE and SO_ACCEPTCONN of a socket file.
func socketType(fl *os.File) (typ int, listening bool, err error) {
	rc, err := fl.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		if serr != nil {
			return
		}
		var acc int
		acc, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		listening = acc != 0
	})
	if cerr != nil {
		return 0, false, cerr
	}
	if serr != nil {
		if errors.Is(serr, syscall.ENOTSOCK) {
			return 0, false, badReply("handed-off fd is not a socket")
		}
		return 0, false, serr
	}
	return typ, listening, nil
}

// ---- plugin side ----

// fdSender is the plugin end of the fd channel.
type fdSender struct {
	conn *net.UnixConn // nil when the host gave none
	err  error
}

// openFDSender adopts fd 3 when it is the host's SOCK_SEQPACKET channel.
func openFDSender() *fdSender {
	typ, err := unix.GetsockoptInt(3, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_SEQPACKET {
		return &fdSender{err: errors.New("fd 3 is not a dwebswarm host's fd channel: connections cannot be handed off (was the plugin started by a dwebswarm host?)")}
	}
	syscall.CloseOnExec(3)
	fl := os.NewFile(3, "dwebswarm-fdchan")
	c, err := net.FileConn(fl)
	fl.Close()
	if err != nil {
		return &fdSender{err: fmt.Errorf("fd channel: %w", err)}
	}
	return &fdSender{conn: c.(*net.UnixConn)}
}

func (s *fdSender) sendFD(token uint64, fd int) error {
	if s.conn == nil {
		return s.err
	}
	_, _, err := s.conn.WriteMsgUnix(encodeFDMessage(fdMsgFD, token, nil), unix.UnixRights(fd), nil)
	return err
}

func (s *fdSender) sendRelayEnd(token uint64, cause error) error {
	if s.conn == nil {
		return s.err
	}
	body := []byte{0}
	if cause != nil {
		body = append([]byte{1}, clip(cause.Error(), maxErrorLen)...)
	}
	_, _, err := s.conn.WriteMsgUnix(encodeFDMessage(fdMsgRelayEnd, token, body), nil, nil)
	return err
}

// sendSyscallConn sends the fd behind c without duplicating it first.
func (s *fdSender) sendSyscallConn(token uint64, c syscall.Conn) error {
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
