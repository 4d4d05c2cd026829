package secure

import (
	"errors"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
)

// Default session timers; see [Config].
const (
	// DefaultKeepAlive is how long a session may go without sending before
	// it sends a keep-alive frame.
	DefaultKeepAlive = 5 * time.Second
	// DefaultTimeout is how long a session may go without receiving
	// anything before it ends with [ErrTimeout].
	DefaultTimeout = 15 * time.Second
)

// Sentinel errors; the errors of this package wrap them with %w.
var (
	// ErrHandshake is a malformed or failed handshake.
	ErrHandshake = errors.New("secure: handshake failed")
	// ErrVersion is a peer with no protocol version in common with us.
	ErrVersion = errors.New("secure: no common protocol version")
	// ErrTopic is an initiator that proved no topic the responder accepts,
	// or a responder that could not prove the initiator's topic.
	ErrTopic = errors.New("secure: topic not proven")
	// ErrRefused is an Accept callback (ours or the peer's) that said no:
	// a handshake error, or why an initiator's session ended when the
	// responder refused it after Client returned.
	ErrRefused = errors.New("secure: refused")
	// ErrTampered is a frame that failed authentication, was replayed,
	// reordered or truncated, or broke the framing rules.
	ErrTampered = errors.New("secure: frame tampered with")
	// ErrTimeout is a session that received nothing within its Timeout.
	ErrTimeout = errors.New("secure: peer silent")
	// ErrClosedByPeer is a session the peer closed or reset.
	ErrClosedByPeer = errors.New("secure: closed by peer")
)

// Config is one end of a session.
type Config struct {
	// KeyPair is our static key pair (required).
	KeyPair KeyPair
	// Topic is, on the initiator, the topic it dials for; zero = none.
	Topic [32]byte
	// Topics returns, on the responder, the topics it accepts initiators
	// for. It is called once per handshake.
	Topics func() [][32]byte
	// AllowNoTopic lets the responder accept an initiator that names no
	// topic.
	AllowNoTopic bool
	// Accept, if set, runs on both sides once the remote static key is
	// authenticated (and, on the responder, the topic is known): on the
	// initiator before msg3, where an error makes Client fail; on the
	// responder after msg3, where an error makes Server fail and ends the
	// initiator's session, which Client has already returned, with
	// ErrRefused (its data is discarded unread). The errors wrap
	// ErrRefused.
	Accept func(remote PublicKey, topic [32]byte) error
	// KeepAlive: send a keep-alive frame after this long without sending
	// (0 = DefaultKeepAlive).
	KeepAlive time.Duration
	// Timeout: end the session after this long without receiving anything
	// (0 = DefaultTimeout).
	Timeout time.Duration
	// Clock runs keep-alive and timeout; nil = the real clock.
	Clock clockwork.Clock
	// OnClose, if set, is called exactly once, from the session's own
	// goroutine, when the session ends for any reason (remote close or
	// reset, timeout, tampering, local Close) with why (nil after a
	// local Close). It must not block.
	OnClose func(err error)
	// Logger: nil = discard.
	Logger *slog.Logger
	// Relayed, on the responder, says that the connection reached it
	// through a relay: msg2 carries the flag to the initiator, inside the
	// handshake's encryption (a relay can neither forge nor strip it), and
	// Conn.Relayed reports it on both sides.
	Relayed bool

	// versions overrides the protocol versions we speak (tests).
	versions []byte
	// onFrame and onStall, if set, run on the session's goroutine after
	// each authenticated frame and when the receive buffer is full
	// (tests).
	onFrame func(typ byte)
	onStall func()
}

func (cfg *Config) fill() {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.versions) == 0 {
		cfg.versions = supportedVersions
	}
}
