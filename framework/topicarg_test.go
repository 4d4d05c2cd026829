package framework_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// TestParseTopicArgRule is the one topic rule of the command line and the
// config, case by case.
func TestParseTopicArgRule(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	raw, _ := framework.ParseTopic(hex64)
	name := func(s string) framework.Topic { return framework.TopicFromString(s) }
	for _, c := range []struct {
		in   string
		want framework.Topic
		bad  string // substring of the error; "" = accepted
	}{
		{hex64, raw, ""},
		{strings.ToUpper(hex64), raw, ""},
		{"hex:" + hex64, raw, ""},
		{"my-topic", name("my-topic"), ""},
		{"cafe", name("cafe"), ""}, // short hex-like words are names
		{strings.Repeat("ab", 15) + "z", name(strings.Repeat("ab", 15) + "z"), ""}, // 31 characters: too short to look like hex
		{"name:" + hex64, name(hex64), ""},
		{"name:" + hex64[:63], name(hex64[:63]), ""},
		{strings.Repeat("this is a long topic name ", 3), name(strings.Repeat("this is a long topic name ", 3)), ""},
		{"", framework.Topic{}, "empty topic"},
		{"   ", framework.Topic{}, "empty topic"},
		{"name:", framework.Topic{}, "empty name"},
		{hex64[:63], framework.Topic{}, "has 63 digits"},
		{hex64 + "a", framework.Topic{}, "has 65 digits"},
		{hex64[:32], framework.Topic{}, "has 32 digits"},
		{hex64[:63] + "g", framework.Topic{}, `character 64 ('g')`},
		{"0x" + hex64, framework.Topic{}, `character 2 ('x')`},
		{"hex:" + hex64[:62], framework.Topic{}, "has 62 digits"},
		{"hex:my-topic", framework.Topic{}, "not a hex digit"},
	} {
		got, err := framework.ParseTopicArg(c.in)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%q: %v, want accepted", c.in, err)
		case c.bad == "" && got != c.want:
			t.Errorf("%q: topic %s, want %s", c.in, got, c.want)
		case c.bad != "":
			var te *framework.TopicError
			if err == nil || !errors.Is(err, framework.ErrInvalidTopic) || !errors.As(err, &te) || te.Hint == "" || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("%q: %v, want a TopicError with a hint containing %q", c.in, err, c.bad)
			}
		}
	}
}

// FuzzParseTopicArg: the rule never panics; what it accepts is either the
// hex reading or a hash of a name; what it refuses wraps ErrInvalidTopic.
func FuzzParseTopicArg(f *testing.F) {
	for _, s := range []string{"", "x", strings.Repeat("ab", 32), strings.Repeat("ab", 31) + "a", "name:x", "hex:00", "0x" + strings.Repeat("0", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := framework.ParseTopicArg(s)
		if err != nil {
			if !errors.Is(err, framework.ErrInvalidTopic) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidTopic", s, err)
			}
			return
		}
		if strings.TrimSpace(s) == "" {
			t.Fatalf("accepted empty %q", s)
		}
		h, hexErr := framework.ParseTopic(strings.TrimPrefix(s, framework.TopicHexPrefix))
		isHex := hexErr == nil && !strings.HasPrefix(s, framework.TopicNamePrefix)
		if isHex && tp != h {
			t.Fatalf("%q: hex read as %s", s, tp)
		}
		if !isHex && tp != framework.TopicFromString(strings.TrimPrefix(s, framework.TopicNamePrefix)) {
			t.Fatalf("%q: %s is neither the hex nor the name's hash", s, tp)
		}
	})
}
