package framework

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// TopicSize is the length of a topic in bytes.
const TopicSize = 32

// Topic identifies a group of peers: exactly 32 bytes, usually the SHA-256 of
// a name or a key. The zero Topic is valid but rarely useful.
type Topic [TopicSize]byte

// TopicFromBytes copies b into a Topic. It fails with [ErrInvalidTopic] unless
// len(b) is exactly 32; it never truncates or pads.
func TopicFromBytes(b []byte) (Topic, error) {
	var t Topic
	if len(b) != TopicSize {
		return t, fmt.Errorf("%w: got %d bytes, want %d", ErrInvalidTopic, len(b), TopicSize)
	}
	copy(t[:], b)
	return t, nil
}

// ParseTopic decodes a topic written as 64 hexadecimal characters.
func ParseTopic(s string) (Topic, error) {
	var t Topic
	if len(s) != 2*TopicSize {
		return t, fmt.Errorf("%w: %q has %d characters, want %d hex characters", ErrInvalidTopic, abbrev(s), len(s), 2*TopicSize)
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return Topic{}, fmt.Errorf("%w: %v", ErrInvalidTopic, err)
	}
	return t, nil
}

// TopicFromString hashes any string with SHA-256, as the seed's usage example
// does with crypto.createHash('sha256').update(name).digest().
func TopicFromString(s string) Topic {
	return Topic(sha256.Sum256([]byte(s)))
}

// TopicFromArg interprets a command-line argument: 64 hex characters are
// decoded, anything else is hashed with [TopicFromString].
func TopicFromArg(s string) Topic {
	if t, err := ParseTopic(s); err == nil {
		return t
	}
	return TopicFromString(s)
}

// String returns the topic as 64 lowercase hexadecimal characters.
func (t Topic) String() string { return hex.EncodeToString(t[:]) }

// Short returns the first 8 hex characters, for logs.
func (t Topic) Short() string { return hex.EncodeToString(t[:4]) }

// MarshalText implements encoding.TextMarshaler (hex).
func (t Topic) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (64 hex characters).
func (t *Topic) UnmarshalText(b []byte) error {
	v, err := ParseTopic(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func abbrev(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
