package forward

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Magic opens every forwarding header; its last character is the version.
// Version 1 ("DWSF1" followed by the raw topic, sent before sessions
// existed) is refused like any other bad magic.
const Magic = "DWSF2"

// Header kinds: the byte after [Magic].
const (
	// KindSession: the header names no topic; the serving side takes the
	// topic the dialler proved in the session's handshake. The only kind a
	// session may send.
	KindSession byte = 0x00
	// KindTopic: the 32-byte topic follows. The only kind of plaintext
	// connections (framework.WithPlaintext), which carry no proven topic.
	KindTopic byte = 0x01
)

// Header sizes: a session's header (magic and kind) and a plaintext one
// (magic, kind and topic).
const (
	SessionHeaderSize   = len(Magic) + 1
	PlaintextHeaderSize = SessionHeaderSize + framework.TopicSize
)

// Header is a decoded forwarding header.
type Header struct {
	// Named reports a KindTopic header: Topic is the topic it names. When
	// false (KindSession) the topic is the session's.
	Named bool
	Topic framework.Topic
}

// Status is the one byte the serving side answers a header with.
type Status byte

const (
	// StatusOK: the service accepted the connection and the target is
	// connected; the raw stream follows in both directions.
	StatusOK Status = 0x00
	// StatusNoService: this peer runs no service for the topic. The serving
	// side closes the connection after the byte.
	StatusNoService Status = 0x01
	// StatusTargetDown: the service exists but its target address refused
	// or timed out. The serving side closes the connection after the byte.
	StatusTargetDown Status = 0x02
	// StatusForbidden: the service exists but does not allow the
	// dialler's key (its allow list). The serving side closes the
	// connection after the byte, without dialling the target.
	StatusForbidden Status = 0x03
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNoService:
		return "no service for this topic"
	case StatusTargetDown:
		return "service target unreachable"
	case StatusForbidden:
		return "key not allowed by the service"
	}
	return fmt.Sprintf("unknown status 0x%02x", byte(s))
}

// ErrBadHeader is returned for a header that does not start with [Magic],
// has an unknown kind, is cut short, or (on the serving side) has the kind
// the connection's mode does not allow.
var ErrBadHeader = errors.New("forward: bad header")

// ErrNoHeader wraps [ErrBadHeader] for a stream that ended (closed, reset,
// timed out) before its first byte: not a bad peer but, most often, the
// losing connection of a race between transports that its dialler closed.
var ErrNoHeader = fmt.Errorf("%w: closed before its first byte", ErrBadHeader)

// AppendHeader appends the encoding of h to b: [SessionHeaderSize] bytes
// when h.Named is false, [PlaintextHeaderSize] when it is true.
func AppendHeader(b []byte, h Header) []byte {
	b = append(b, Magic...)
	if !h.Named {
		return append(b, KindSession)
	}
	b = append(b, KindTopic)
	return append(b, h.Topic[:]...)
}

// ParseHeader decodes a header that is exactly b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < SessionHeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadHeader, len(b), SessionHeaderSize)
	}
	if !bytes.Equal(b[:len(Magic)], []byte(Magic)) {
		return Header{}, fmt.Errorf("%w: magic %q, want %q", ErrBadHeader, b[:len(Magic)], Magic)
	}
	want, err := headerSize(b[len(Magic)])
	if err != nil {
		return Header{}, err
	}
	if len(b) != want {
		return Header{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), want)
	}
	if want == SessionHeaderSize {
		return Header{}, nil
	}
	return Header{Named: true, Topic: framework.Topic(b[SessionHeaderSize:])}, nil
}

// headerSize is the whole header's length for a kind byte.
func headerSize(kind byte) (int, error) {
	switch kind {
	case KindSession:
		return SessionHeaderSize, nil
	case KindTopic:
		return PlaintextHeaderSize, nil
	}
	return 0, fmt.Errorf("%w: unknown kind 0x%02x", ErrBadHeader, kind)
}

// ReadHeader reads exactly one header from r (never more bytes) and decodes
// it. A wrong magic is rejected as soon as its 5 bytes are in, an unknown
// kind as soon as its byte is, without waiting for more. A stream that ends
// early is ErrBadHeader wrapping the read error; one that ends before its
// first byte is [ErrNoHeader].
func ReadHeader(r io.Reader) (Header, error) {
	var b [PlaintextHeaderSize]byte
	if n, err := io.ReadFull(r, b[:len(Magic)]); err != nil {
		if n == 0 {
			return Header{}, fmt.Errorf("%w: %w", ErrNoHeader, err)
		}
		return Header{}, fmt.Errorf("%w: after %d bytes: %w", ErrBadHeader, n, err)
	}
	if !bytes.Equal(b[:len(Magic)], []byte(Magic)) {
		return Header{}, fmt.Errorf("%w: magic %q, want %q", ErrBadHeader, b[:len(Magic)], Magic)
	}
	if _, err := io.ReadFull(r, b[len(Magic):SessionHeaderSize]); err != nil {
		return Header{}, fmt.Errorf("%w: after %d bytes: %w", ErrBadHeader, len(Magic), err)
	}
	want, err := headerSize(b[len(Magic)])
	if err != nil {
		return Header{}, err
	}
	if n, err := io.ReadFull(r, b[SessionHeaderSize:want]); err != nil {
		return Header{}, fmt.Errorf("%w: after %d of %d bytes: %w", ErrBadHeader, SessionHeaderSize+n, want, err)
	}
	return ParseHeader(b[:want])
}
