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
	h := AppendHeader(nil, topic)
	if len(h) != HeaderSize || HeaderSize != 37 || string(h[:5]) != "DWSF1" {
		t.Fatalf("header %x", h)
	}
	got, err := ParseHeader(h)
	if err != nil || got != topic {
		t.Fatalf("ParseHeader = %v, %v", got, err)
	}
	// ReadHeader reads exactly the header, byte by byte too
	r := bytes.NewReader(append(h, "rest"...))
	if got, err = ReadHeader(iotest.OneByteReader(r)); err != nil || got != topic {
		t.Fatalf("ReadHeader = %v, %v", got, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Fatalf("ReadHeader consumed past the header: rest %q", rest)
	}
}

func TestReadHeaderRejects(t *testing.T) {
	good := AppendHeader(nil, framework.TopicFromString("x"))
	for name, in := range map[string]string{
		"empty":        "",
		"http":         "GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789",
		"short magic":  "DWS",
		"old version":  "DWSF0" + strings.Repeat("x", 32),
		"short topic":  string(good[:20]),
		"almost there": string(good[:HeaderSize-1]),
	} {
		if _, err := ReadHeader(strings.NewReader(in)); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: err %v, want ErrBadHeader", name, err)
		}
	}
	// a wrong magic is refused after 5 bytes, before the topic arrives
	r := io.MultiReader(strings.NewReader("HELLO"), blockingReader{})
	if _, err := ReadHeader(r); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("err %v", err)
	}
}

type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { panic("read past the magic") }

func FuzzParseHeader(f *testing.F) {
	f.Add(AppendHeader(nil, framework.TopicFromString("a")))
	f.Add([]byte("DWSF1"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		topic, err := ParseHeader(b)
		rtopic, rerr := ReadHeader(bytes.NewReader(b))
		if err == nil {
			if !bytes.Equal(AppendHeader(nil, topic), b) {
				t.Fatalf("accepted %x does not re-encode to itself", b)
			}
			if rerr != nil || rtopic != topic {
				t.Fatalf("ReadHeader disagrees: %v %v", rtopic, rerr)
			}
			return
		}
		if !errors.Is(err, ErrBadHeader) {
			t.Fatalf("error %v does not wrap ErrBadHeader", err)
		}
		// ReadHeader accepts exactly the valid prefixes of b
		if rerr == nil {
			if len(b) < HeaderSize || !bytes.Equal(AppendHeader(nil, rtopic), b[:HeaderSize]) {
				t.Fatalf("ReadHeader accepted %x", b)
			}
		} else if !errors.Is(rerr, ErrBadHeader) {
			t.Fatalf("ReadHeader error %v does not wrap ErrBadHeader", rerr)
		}
	})
}
