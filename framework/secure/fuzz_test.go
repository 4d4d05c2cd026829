package secure

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

// FuzzHandshakePayloads feeds arbitrary bytes to the decoders of msg1,
// msg2 and msg3 payloads and of reject bodies: they must never panic, and
// what they accept must re-encode to a prefix of the input.
func FuzzHandshakePayloads(f *testing.F) {
	f.Add((&hello{versions: []byte{1}, kind: kindTopic}).marshal())
	f.Add((&hello{versions: []byte{1, 2}}).marshal())
	f.Add((&reply{version: 1, kind: kindTopic}).marshal())
	f.Add([]byte{rejectVersion, 1, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := parseHello(b); err == nil {
			if m := h.marshal(); len(m) > len(b) || string(m) != string(b[:len(m)]) {
				t.Fatalf("hello %x re-encodes to %x", b, m)
			}
		}
		if r, err := parseReply(b); err == nil {
			if m := r.marshal(); len(m) > len(b) || string(m) != string(b[:len(m)]) {
				t.Fatalf("reply %x re-encodes to %x", b, m)
			}
		}
		parseFinish(b)
		parseReject(b)
	})
}

// FuzzServerHandshakeStream feeds arbitrary bytes to a responder as the
// initiator's stream: it must fail (nothing in the input can prove a
// topic or authenticate) and never panic.
func FuzzServerHandshakeStream(f *testing.F) {
	f.Add([]byte{0, 3, 1, 1, 0})
	f.Add(append([]byte{0, 35}, make([]byte, 35)...))
	kp, _ := GenerateKeyPair()
	f.Fuzz(func(t *testing.T, b []byte) {
		a, z := net.Pipe() // synchronous: drain what the responder writes
		done := make(chan struct{})
		go func() { defer close(done); io.Copy(io.Discard, a) }()
		go func() {
			a.Write(b)
			a.Close()
		}()
		_, err := Server(context.Background(), z, Config{KeyPair: kp, Topics: func() [][32]byte { return [][32]byte{topicA} }})
		a.Close()
		<-done
		if err == nil {
			t.Fatalf("a responder accepted %x", b)
		}
	})
}

// FuzzFrames completes a real handshake, then feeds arbitrary bytes as the
// initiator's frame stream to the responder: the responder must deliver
// nothing and end with an error other than a clean EOF.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{0, 17, 1, 2, 3})
	f.Add([]byte{0, 0})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, s := mustPair(t, topicA, Config{}, Config{}, nil)
		raw := c.NetConn()
		raw.Write(b)
		raw.Close()
		got, err := io.ReadAll(s)
		if len(got) != 0 {
			t.Fatalf("delivered %x from unauthenticated input %x", got, b)
		}
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("stream %x ended with %v", b, err)
		}
	})
}

// FuzzClientHandshakeStream feeds arbitrary bytes to an initiator as the
// responder's stream: it must fail and never panic.
func FuzzClientHandshakeStream(f *testing.F) {
	f.Add([]byte{0, 0, rejectVersion, 1, 2})
	f.Add([]byte{0, 0, rejectTopic, 0})
	f.Add(append([]byte{0, 130}, make([]byte, 130)...))
	kp, _ := GenerateKeyPair()
	f.Fuzz(func(t *testing.T, b []byte) {
		a, z := net.Pipe()
		done := make(chan struct{})
		go func() { defer close(done); io.Copy(io.Discard, a) }()
		go func() {
			a.Write(b)
			a.Close()
		}()
		_, err := Client(context.Background(), z, Config{KeyPair: kp, Topic: topicA})
		a.Close()
		<-done
		if err == nil {
			t.Fatalf("an initiator completed against %x", b)
		}
	})
}
