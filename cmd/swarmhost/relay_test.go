package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// recordingRelay listens on 127.0.0.1 and relays every connection to
// target, recording the bytes of both directions. The cleanup closes it
// and waits for its goroutines.
type recordingRelay struct {
	ln   net.Listener
	mu   sync.Mutex
	rec  bytes.Buffer
	n    int // connections relayed to the target
	wg   sync.WaitGroup
	conn map[net.Conn]struct{}
}

func newRecordingRelay(t *testing.T, target string) *recordingRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingRelay{ln: ln, conn: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.relay(c, target)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for c := range r.conn {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *recordingRelay) track(c net.Conn) {
	r.mu.Lock()
	r.conn[c] = struct{}{}
	r.mu.Unlock()
}

func (r *recordingRelay) relay(c net.Conn, target string) {
	r.track(c)
	defer c.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return // the peer is not listening yet: its dialler requeues
	}
	r.track(up)
	defer up.Close()
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(c, io.TeeReader(up, r))
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(up, io.TeeReader(c, r))
	up.(*net.TCPConn).CloseWrite()
	<-done
}

func (r *recordingRelay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.Write(p)
}

func (r *recordingRelay) recorded() (b []byte, relayed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.rec.Bytes()), r.n
}

// pipeThroughRelay runs an announcing pipe and a looking one whose only
// peer is a recording relay in front of the announcer, and returns what
// the relay recorded.
func pipeThroughRelay(t *testing.T, topicName, fromA, fromB string, extra ...string) []byte {
	t.Helper()
	port := freePort(t)
	relay := newRecordingRelay(t, "127.0.0.1:"+strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		code     int
		out, err string
	}
	annc := make(chan result, 1)
	go func() {
		args := append([]string{"pipe", "--announce", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--timeout", "20s"}, extra...)
		c, o, e := runCmd(ctx, strings.NewReader(fromA), append(args, topicName)...)
		annc <- result{c, o, e}
	}()
	args := append([]string{"pipe", "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--peer", relay.ln.Addr().String(), "--timeout", "20s"}, extra...)
	c, out, errOut := runCmd(ctx, strings.NewReader(fromB), append(args, topicName)...)
	a := <-annc
	if c != 0 || out != fromA {
		t.Fatalf("looker exit %d, got %d bytes (want %d): %s", c, len(out), len(fromA), errOut)
	}
	if a.code != 0 || a.out != fromB {
		t.Fatalf("announcer exit %d out %q: %s", a.code, a.out, a.err)
	}
	rec, n := relay.recorded()
	if n == 0 || len(rec) < len(fromA)+len(fromB) {
		t.Fatalf("the relay carried %d connections, %d bytes: the pipes did not go through it", n, len(rec))
	}
	return rec
}

// TestPipeShowsNoPlaintextOnTheWire: two pipes talk through a relay that
// records every byte; the relay sees neither the data nor the topic. With
// --plaintext on both ends the same relay records the data (so it is
// where the bytes pass).
func TestPipeShowsNoPlaintextOnTheWire(t *testing.T) {
	const name = "relay test topic"
	topic, err := framework.ParseTopicArg(name)
	if err != nil {
		t.Fatal(err)
	}
	fromA := strings.Repeat("announcer's secret line\n", 2000)
	fromB := "looker's secret reply"
	rec := pipeThroughRelay(t, name, fromA, fromB)
	for what, b := range map[string]string{
		"the announcer's data": "announcer's secret", "the looker's data": fromB,
		"the topic": string(topic[:8]), "the topic's name": name,
	} {
		if bytes.Contains(rec, []byte(b)) {
			t.Errorf("the relay recorded %s", what)
		}
	}

	t.Run("plaintext", func(t *testing.T) {
		rec := pipeThroughRelay(t, name, fromA, fromB, "--plaintext")
		if !bytes.Contains(rec, []byte(fromA)) || !bytes.Contains(rec, []byte(fromB)) {
			t.Fatalf("the relay did not record the plaintext (%d bytes)", len(rec))
		}
	})
}

// TestStaticPeersOfDifferentTopicsDoNotConnect: a looker whose static peer
// announces another topic is refused in the handshake (it cannot prove a
// topic the announcer accepts: both log why) and gives up at its timeout; the announcer
// never reports a connection.
func TestStaticPeersOfDifferentTopicsDoNotConnect(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		code     int
		out, err string
	}
	annc := make(chan result, 1)
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		c, o, e := runCmd(actx, strings.NewReader("for topic x"), "pipe", "--announce", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--log-level", "debug", "topic x")
		annc <- result{c, o, e}
	}()
	c, out, errOut := runCmd(ctx, strings.NewReader("for topic y"), "pipe", "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--peer", "127.0.0.1:"+strconv.Itoa(port), "--timeout", "5s", "--log-level", "debug", "topic y")
	stop()
	a := <-annc
	if c != 1 || out != "" || !strings.Contains(errOut, "no peer connected within 5s") || !strings.Contains(errOut, "topic not proven") {
		t.Fatalf("looker exit %d out %q:\n%s", c, out, errOut)
	}
	if a.out != "" || strings.Contains(a.err, "connected") || !strings.Contains(a.err, "topic not proven") {
		t.Fatalf("announcer exit %d out %q:\n%s", a.code, a.out, a.err)
	}
}
