package remote

import (
	"errors"

	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
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
	ErrBadReply = wire.ErrBadReply
	// ErrCrashed: a relayed connection was cut because its plugin exited.
	ErrCrashed = wire.ErrCrashed
)
