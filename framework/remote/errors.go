package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/dwebswarm/dwebswarm-go/framework"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// Sentinel errors. Errors of this package wrap one of them (start failures
// wrap ErrStart and the specific cause); test with errors.Is.
var (
	// ErrStart: the plugin could not be started. Start errors also wrap one
	// of ErrBinaryMissing, ErrChecksum, ErrIncompatible or ErrHandshake when
	// that is the cause.
	ErrStart = errors.New("remote: plugin failed to start")
	// ErrBinaryMissing: the configured plugin binary does not exist.
	ErrBinaryMissing = errors.New("remote: plugin binary not found")
	// ErrChecksum: the binary's SHA-256 differs from the pinned one.
	ErrChecksum = errors.New("remote: plugin binary checksum mismatch")
	// ErrIncompatible: the plugin speaks another plugin protocol version or
	// serves another kind of plugin.
	ErrIncompatible = errors.New("remote: incompatible plugin")
	// ErrHandshake: the binary did not complete the go-plugin handshake
	// (not a plugin, printed garbage, exited or never answered).
	ErrHandshake = errors.New("remote: plugin handshake failed")
	// ErrUnavailable: the plugin is not running (crashed and restarting,
	// given up after too many crashes, or closed).
	ErrUnavailable = errors.New("remote: plugin unavailable")
	// ErrTimeout: a call to the plugin did not answer in time.
	ErrTimeout = errors.New("remote: plugin call timed out")
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

// maxErrorLen bounds error messages in both directions.
const maxErrorLen = 1024

// encodeError turns a plugin-side error into its wire form (nil for nil).
func encodeError(err error) *pb.Error {
	if err == nil {
		return nil
	}
	e := &pb.Error{Message: clip(err.Error(), maxErrorLen)}
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

// decodeError rebuilds a plugin's error on the host (nil for nil). The
// message is clipped and never empty; unknown codes wrap nothing.
func decodeError(e *pb.Error) error {
	if e == nil {
		return nil
	}
	msg := clip(e.GetMessage(), maxErrorLen)
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

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func badReply(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadReply, fmt.Sprintf(format, args...))
}
