package forward

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

func TestHeaderRoundTrip(t *testing.T) {
	topic := framework.TopicFromString("svc")
	for _, tc := range []struct {
		h    Header
		want string
	}{
		{Header{}, "DWSF2\x00"},
		{Header{Named: true, Topic: topic}, "DWSF2\x01" + string(topic[:])},
	} {
		b := AppendHeader(nil, tc.h)
		if string(b) != tc.want {
			t.Fatalf("AppendHeader(%+v) = %x, want %x", tc.h, b, tc.want)
		}
		got, err := ParseHeader(b)
		if err != nil || got != tc.h {
			t.Fatalf("ParseHeader = %+v, %v", got, err)
		}
		// ReadHeader reads exactly the header, byte by byte too
		r := bytes.NewReader(append(b, "rest"...))
		if got, err = ReadHeader(iotest.OneByteReader(r)); err != nil || got != tc.h {
			t.Fatalf("ReadHeader = %+v, %v", got, err)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "rest" {
			t.Fatalf("ReadHeader consumed past the header: rest %q", rest)
		}
	}
	if SessionHeaderSize != 6 || PlaintextHeaderSize != 38 {
		t.Fatalf("sizes %d %d", SessionHeaderSize, PlaintextHeaderSize)
	}
	// a session's header carries nothing of the topic
	if b := AppendHeader(nil, Header{}); bytes.Contains(b, topic[:4]) {
		t.Fatalf("session header %x", b)
	}
}

func TestReadHeaderRejects(t *testing.T) {
	named := AppendHeader(nil, Header{Named: true, Topic: framework.TopicFromString("x")})
	for name, in := range map[string]string{
		"empty":        "",
		"http":         "GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789",
		"short magic":  "DWS",
		"old version":  "DWSF0" + strings.Repeat("x", 33),
		"version 1":    "DWSF1" + strings.Repeat("x", 33),
		"no kind":      "DWSF2",
		"unknown kind": "DWSF2\x02" + strings.Repeat("x", 32),
		"short topic":  string(named[:20]),
		"almost there": string(named[:PlaintextHeaderSize-1]),
	} {
		if _, err := ReadHeader(strings.NewReader(in)); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: err %v, want ErrBadHeader", name, err)
		}
	}
	// a wrong magic is refused after 5 bytes, an unknown kind after 6,
	// before anything else arrives
	for _, in := range []string{"HELLO", "DWSF2\x09"} {
		r := io.MultiReader(strings.NewReader(in), blockingReader{})
		if _, err := ReadHeader(r); !errors.Is(err, ErrBadHeader) {
			t.Fatalf("%q: err %v", in, err)
		}
	}
}

type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { panic("read past the magic") }

func FuzzParseHeader(f *testing.F) {
	f.Add(AppendHeader(nil, Header{}))
	f.Add(AppendHeader(nil, Header{Named: true, Topic: framework.TopicFromString("a")}))
	f.Add([]byte("DWSF2"))
	f.Add([]byte("DWSF1" + strings.Repeat("x", 32)))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		rh, rerr := ReadHeader(bytes.NewReader(b))
		if err == nil {
			if !bytes.Equal(AppendHeader(nil, h), b) {
				t.Fatalf("accepted %x does not re-encode to itself", b)
			}
			if rerr != nil || rh != h {
				t.Fatalf("ReadHeader disagrees: %+v %v", rh, rerr)
			}
			return
		}
		if !errors.Is(err, ErrBadHeader) {
			t.Fatalf("error %v does not wrap ErrBadHeader", err)
		}
		// ReadHeader accepts exactly the valid prefixes of b
		if rerr == nil {
			enc := AppendHeader(nil, rh)
			if !bytes.HasPrefix(b, enc) {
				t.Fatalf("ReadHeader accepted %x as %+v", b, rh)
			}
		} else if !errors.Is(rerr, ErrBadHeader) {
			t.Fatalf("ReadHeader error %v does not wrap ErrBadHeader", rerr)
		}
	})
}
