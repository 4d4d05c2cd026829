package forward

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Magic opens every forwarding header; its last character is the version.
const Magic = "DWSF1"

// HeaderSize is the length of the header the connecting side sends first:
// the magic followed by the 32-byte topic.
const HeaderSize = len(Magic) + framework.TopicSize

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
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNoService:
		return "no service for this topic"
	case StatusTargetDown:
		return "service target unreachable"
	}
	return fmt.Sprintf("unknown status 0x%02x", byte(s))
}

// ErrBadHeader is returned for a header that does not start with [Magic]
// or is cut short.
var ErrBadHeader = errors.New("forward: bad header")

// ErrNoHeader wraps [ErrBadHeader] for a stream that ended (closed, reset,
// timed out) before its first byte: not a bad peer but, most often, the
// losing connection of a race between transports that its dialler closed.
var ErrNoHeader = fmt.Errorf("%w: closed before its first byte", ErrBadHeader)

// AppendHeader appends the header for topic to b.
func AppendHeader(b []byte, topic framework.Topic) []byte {
	b = append(b, Magic...)
	return append(b, topic[:]...)
}

// ParseHeader decodes a header of exactly [HeaderSize] bytes.
func ParseHeader(b []byte) (framework.Topic, error) {
	if len(b) != HeaderSize {
		return framework.Topic{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), HeaderSize)
	}
	if !bytes.Equal(b[:len(Magic)], []byte(Magic)) {
		return framework.Topic{}, fmt.Errorf("%w: magic %q, want %q", ErrBadHeader, b[:len(Magic)], Magic)
	}
	return framework.Topic(b[len(Magic):]), nil
}

// ReadHeader reads exactly one header from r (never more bytes) and decodes
// it. A wrong magic is rejected as soon as its 5 bytes are in, without
// waiting for the topic. A stream that ends early is ErrBadHeader wrapping
// the read error; one that ends before its first byte is [ErrNoHeader].
func ReadHeader(r io.Reader) (framework.Topic, error) {
	var b [HeaderSize]byte
	if n, err := io.ReadFull(r, b[:len(Magic)]); err != nil {
		if n == 0 {
			return framework.Topic{}, fmt.Errorf("%w: %w", ErrNoHeader, err)
		}
		return framework.Topic{}, fmt.Errorf("%w: after %d of %d bytes: %w", ErrBadHeader, n, HeaderSize, err)
	}
	if !bytes.Equal(b[:len(Magic)], []byte(Magic)) {
		return framework.Topic{}, fmt.Errorf("%w: magic %q, want %q", ErrBadHeader, b[:len(Magic)], Magic)
	}
	if n, err := io.ReadFull(r, b[len(Magic):]); err != nil {
		return framework.Topic{}, fmt.Errorf("%w: after %d of %d bytes: %w", ErrBadHeader, len(Magic)+n, HeaderSize, err)
	}
	return ParseHeader(b[:])
}
