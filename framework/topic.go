package framework

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
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

// Prefixes of [ParseTopicArg] that force one reading of the text.
const (
	TopicNamePrefix = "name:" // the rest is a name, hashed whatever it looks like
	TopicHexPrefix  = "hex:"  // the rest must be 64 hex digits
)

// TopicError is a topic text that [ParseTopicArg] refuses. It wraps
// [ErrInvalidTopic].
type TopicError struct {
	Text    string // the text given
	Problem string // what is wrong
	Hint    string // how to say what was meant
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("%s: topic %q: %s (%s)", ErrInvalidTopic, abbrev(e.Text), e.Problem, e.Hint)
}

// Unwrap returns ErrInvalidTopic.
func (e *TopicError) Unwrap() error { return ErrInvalidTopic }

// ParseTopicArg is the one rule for a topic written as text, on the
// command line and in the daemon's config:
//
//  1. "name:NAME" is NAME hashed with SHA-256, whatever NAME looks like;
//     "hex:HEX" must be 64 hex digits.
//  2. An empty text (or only spaces) is an error.
//  3. Exactly 64 hex digits (either case) are the topic's 32 bytes.
//  4. A text that looks like hex but is not 64 hex digits is an error with a
//     hint: 32 characters or more, at least 90% of them hex digits (a
//     truncated or overlong hex topic, a "0x" prefix, a mistyped letter).
//  5. Anything else is a name, hashed with SHA-256 ([TopicFromString]).
//
// Errors are [*TopicError] and wrap [ErrInvalidTopic].
func ParseTopicArg(s string) (Topic, error) {
	if name, ok := strings.CutPrefix(s, TopicNamePrefix); ok {
		if name == "" {
			return Topic{}, &TopicError{s, "empty name after " + TopicNamePrefix, "give a name, e.g. name:my-topic"}
		}
		return TopicFromString(name), nil
	}
	if h, ok := strings.CutPrefix(s, TopicHexPrefix); ok {
		if t, err := ParseTopic(h); err == nil {
			return t, nil
		}
		return Topic{}, &TopicError{s, hexProblem(h), "after " + TopicHexPrefix + " give exactly 64 hex digits"}
	}
	if strings.TrimSpace(s) == "" {
		return Topic{}, &TopicError{s, "empty topic", "give 64 hex digits, or any name: it is hashed with SHA-256"}
	}
	if t, err := ParseTopic(s); err == nil {
		return t, nil
	}
	if looksHex(s) {
		return Topic{}, &TopicError{s, hexProblem(s), "a hex topic has exactly 64 hex digits; to hash this text as a name, write " + TopicNamePrefix + abbrev(s)}
	}
	return TopicFromString(s), nil
}

// looksHex: 32 characters or more, at least 90% of them hex digits.
func looksHex(s string) bool {
	if len(s) < TopicSize {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if isHexDigit(s[i]) {
			n++
		}
	}
	return n*10 >= len(s)*9
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// hexProblem says what keeps s from being 64 hex digits.
func hexProblem(s string) string {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return fmt.Sprintf("looks like hex but character %d (%q) is not a hex digit", i+1, s[i])
		}
	}
	return fmt.Sprintf("looks like hex but has %d digits, want %d", len(s), 2*TopicSize)
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
