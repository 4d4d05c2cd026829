package framework_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

func TestTopicIsExactly32Bytes(t *testing.T) {
	for _, n := range []int{0, 1, 31, 33, 64} {
		if _, err := framework.TopicFromBytes(make([]byte, n)); !errors.Is(err, framework.ErrInvalidTopic) {
			t.Errorf("%d bytes: err = %v, want ErrInvalidTopic", n, err)
		}
	}
	b := make([]byte, 32)
	b[0], b[31] = 1, 2
	tp, err := framework.TopicFromBytes(b)
	if err != nil || tp[0] != 1 || tp[31] != 2 {
		t.Fatalf("32 bytes: %v %v", tp, err)
	}
}

func TestTopicHexAndString(t *testing.T) {
	want := framework.Topic(sha256.Sum256([]byte("my-dwebswarm-topic")))
	if got := framework.TopicFromString("my-dwebswarm-topic"); got != want {
		t.Fatal("TopicFromString is not SHA-256")
	}
	back, err := framework.ParseTopic(want.String())
	if err != nil || back != want {
		t.Fatalf("hex round trip: %v %v", back, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("a", 63), strings.Repeat("a", 66)} {
		if _, err := framework.ParseTopic(bad); !errors.Is(err, framework.ErrInvalidTopic) {
			t.Errorf("ParseTopic(%q) err = %v", bad, err)
		}
	}
	if a, err := framework.ParseTopicArg(want.String()); err != nil || a != want {
		t.Fatalf("ParseTopicArg(hex) = %v, %v", a, err)
	}
	if a, err := framework.ParseTopicArg("my-dwebswarm-topic"); err != nil || a != want {
		t.Fatalf("ParseTopicArg(name) = %v, %v", a, err)
	}
	var u framework.Topic
	if err := u.UnmarshalText([]byte(want.String())); err != nil || u != want {
		t.Fatal("UnmarshalText")
	}
}

func TestPeerAddressValidation(t *testing.T) {
	for _, bad := range []string{"", "x", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", ":80", "127.0.0.1:http"} {
		if _, err := framework.ParsePeerAddr(bad, framework.Topic{}); !errors.Is(err, framework.ErrInvalidPeer) {
			t.Errorf("ParsePeerAddr(%q) err = %v, want ErrInvalidPeer", bad, err)
		}
	}
	p, err := framework.ParsePeerAddr("[::1]:49737", framework.Topic{})
	if err != nil || p.Host != "::1" || p.Port != 49737 || p.Addr() != "[::1]:49737" {
		t.Fatalf("%+v %v", p, err)
	}
}

func FuzzParseTopic(f *testing.F) {
	f.Add(framework.TopicFromString("x").String())
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := framework.ParseTopic(s)
		if err == nil && tp.String() != strings.ToLower(s) {
			t.Fatalf("round trip %q -> %q", s, tp.String())
		}
	})
}

func FuzzParsePeerAddr(f *testing.F) {
	f.Add("127.0.0.1:49737")
	f.Add("[::1]:1")
	f.Add("host:99999")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := framework.ParsePeerAddr(s, framework.Topic{})
		if err == nil {
			if p.Port < 1 || p.Port > 65535 || p.Host == "" {
				t.Fatalf("accepted %q as %+v", s, p)
			}
		} else if !errors.Is(err, framework.ErrInvalidPeer) {
			t.Fatalf("error %v does not wrap ErrInvalidPeer", err)
		}
	})
}
