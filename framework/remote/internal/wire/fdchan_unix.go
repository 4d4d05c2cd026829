//go:build unix

package wire

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// oobSpace is the control-message buffer of one fd-channel read.
var oobSpace = unix.CmsgSpace(4 * 8)

// msgTruncated are the recvmsg flags of a cut message or control message.
const msgTruncated = unix.MSG_TRUNC | unix.MSG_CTRUNC

// NewFDChannel makes the fd channel of an instance (HandoffSeqpacket or
// HandoffStream) and starts reading it: the host end as the channel, the
// plugin end as a file for cmd.ExtraFiles (close it after the start).
func NewFDChannel(mode HandoffMode, log *slog.Logger) (*FDChan, *os.File, error) {
	typ := unix.SOCK_SEQPACKET
	if mode == HandoffStream {
		typ = unix.SOCK_STREAM
	}
	fds, err := socketpair(typ)
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
	uc := c.(*net.UnixConn)
	f := newFDChanOf(mode, log)
	f.conn = uc
	if mode == HandoffStream {
		go f.readFrames(func(b, oob []byte) (int, int, int, error) {
			n, oobn, flags, _, err := uc.ReadMsgUnix(b, oob)
			return n, oobn, flags, err
		})
	} else {
		go f.readPackets(uc)
	}
	return f, os.NewFile(uintptr(fds[1]), "dwebswarm-fdchan"), nil
}

// readPackets reads a SOCK_SEQPACKET channel: one message per datagram,
// its fds with it.
func (f *FDChan) readPackets(conn *net.UnixConn) {
	defer close(f.doneRd)
	buf := make([]byte, fdMsgMax+1)
	oob := make([]byte, oobSpace)
	var err error
	for {
		var n, oobn, flags int
		n, oobn, flags, _, err = conn.ReadMsgUnix(buf, oob)
		if err == nil && n == 0 && oobn == 0 {
			err = errors.New("fd channel closed by the plugin")
		}
		if err != nil {
			break
		}
		fds := parseRights(oob[:oobn])
		if flags&msgTruncated != 0 {
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
	f.ended(err)
}

func closeFD(fd int) { unix.Close(fd) }

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
			return 0, false, BadReply("handed-off fd is not a socket")
		}
		return 0, false, serr
	}
	return typ, listening, nil
}

// ---- plugin side ----

// openFDSender adopts fd 3 when it is a host's fd channel: SOCK_SEQPACKET
// (HandoffSeqpacket) or SOCK_STREAM (HandoffStream).
func openFDSender() *FDSender {
	typ, err := unix.GetsockoptInt(3, unix.SOL_SOCKET, unix.SO_TYPE)
	mode := HandoffSeqpacket
	switch {
	case err != nil:
	case typ == unix.SOCK_SEQPACKET:
	case typ == unix.SOCK_STREAM:
		mode = HandoffStream
	default:
		err = fmt.Errorf("socket type %d", typ)
	}
	if err != nil {
		return &FDSender{err: errors.New("fd 3 is not a dwebswarm host's fd channel: connections cannot be handed off (was the plugin started by a dwebswarm host?)")}
	}
	syscall.CloseOnExec(3)
	fl := os.NewFile(3, "dwebswarm-fdchan")
	c, err := net.FileConn(fl)
	fl.Close()
	if err != nil {
		return &FDSender{err: fmt.Errorf("fd channel: %w", err)}
	}
	return &FDSender{mode: mode, conn: c.(*net.UnixConn)}
}

func (s *FDSender) sendFD(token uint64, fd int) error {
	if s.conn == nil {
		if s.err == nil {
			return errors.New("fd channel: this host passes no fds")
		}
		return s.err
	}
	return s.writeMsg(encodeFDMessage(fdMsgFD, token, nil), unix.UnixRights(fd))
}

// sendPair makes an AF_UNIX socketpair of type typ (socket buffers of buf
// bytes when buf > 0), sends one end to the host under token and returns
// the other.
func (s *FDSender) sendPair(token uint64, typ, buf int) (*net.UnixConn, error) {
	fds, err := socketpair(typ)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	if buf > 0 {
		for _, fd := range fds {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, buf)
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buf)
		}
	}
	err = s.sendFD(token, fds[1])
	unix.Close(fds[1])
	if err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("hand it to the host: %w", err)
	}
	f := os.NewFile(uintptr(fds[0]), "dwebswarm-pair")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// IsConnReset reports a connection reset or broken pipe.
func IsConnReset(err error) bool {
	return errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE)
}
