package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/dwebswarm/dwebswarm-go/framework"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// Sentinels of the wire code; package remote exports them under the same
// names (remote.ErrBadReply is ErrBadReply).
var (
	// ErrBadReply: the plugin answered something that breaks the protocol.
	ErrBadReply = errors.New("remote: invalid reply from plugin")
	// ErrCrashed: a relayed connection was cut because its plugin exited.
	ErrCrashed = errors.New("remote: plugin exited")
)

// pluginError is an error that crossed the process boundary: it reads as
// the plugin's message and wraps the sentinel named by its code.
type pluginError struct {
	msg   string
	wraps []error
}

func (e *pluginError) Error() string   { return e.msg }
func (e *pluginError) Unwrap() []error { return e.wraps }

// IsPluginError reports whether err is, or wraps, an error decoded by
// [DecodeError]: the plugin's own answer, not a failure of the call.
func IsPluginError(err error) bool {
	var pe *pluginError
	return errors.As(err, &pe)
}

// The wire form of errors: a message, the code of the first sentinel in
// this table the error wraps, and its syscall.Errno when it has one. The
// host rebuilds an error that wraps the code's sentinel and the errno.
var codeErrors = []struct {
	code pb.Error_Code
	err  error
}{
	{pb.Error_CLOSED, framework.ErrClosed},
	{pb.Error_PORT_IN_USE, framework.ErrPortInUse},
	{pb.Error_INVALID_PEER, framework.ErrInvalidPeer},
	{pb.Error_REJECTED, framework.ErrRejected},
	{pb.Error_CANCELED, context.Canceled},
	{pb.Error_DEADLINE_EXCEEDED, context.DeadlineExceeded},
	{pb.Error_NET_CLOSED, net.ErrClosed},
	{pb.Error_INVALID_OPTION, framework.ErrInvalidOption},
	{pb.Error_NOT_JOINED, framework.ErrNotJoined},
	{pb.Error_BANNED, framework.ErrBanned},
	{pb.Error_LIMIT, framework.ErrLimit},
}

// MaxErrorLen bounds error messages in both directions.
const MaxErrorLen = 1024

// EncodeError turns a plugin-side error into its wire form (nil for nil).
func EncodeError(err error) *pb.Error {
	if err == nil {
		return nil
	}
	e := &pb.Error{Message: Clip(err.Error(), MaxErrorLen)}
	for _, c := range codeErrors {
		if errors.Is(err, c.err) {
			e.Code = c.code
			break
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.Errno = uint32(errno)
	}
	return e
}

// DecodeError rebuilds a plugin's error on the host (nil for nil). The
// message is clipped and never empty; unknown codes wrap nothing.
func DecodeError(e *pb.Error) error {
	if e == nil {
		return nil
	}
	msg := Clip(e.GetMessage(), MaxErrorLen)
	if msg == "" {
		msg = "plugin error (no message)"
	}
	pe := &pluginError{msg: msg}
	for _, c := range codeErrors {
		if c.code == e.GetCode() {
			pe.wraps = append(pe.wraps, c.err)
		}
	}
	if n := e.GetErrno(); n != 0 && n < 4096 {
		pe.wraps = append(pe.wraps, syscall.Errno(n))
	}
	return pe
}

// Clip cuts s to at most n bytes, ending it with "..." when cut.
func Clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// BadReply returns an error wrapping [ErrBadReply].
func BadReply(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadReply, fmt.Sprintf(format, args...))
}
