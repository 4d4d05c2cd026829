package secure

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countConn counts its Write calls and cuts its reads to at most max bytes
// (0: no limit). It is not a *net.TCPConn, so a session on it reads
// through net.Conn.
type countConn struct {
	net.Conn
	writes atomic.Int64
	max    int
}

func (c *countConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func (c *countConn) Read(b []byte) (int, error) {
	if c.max > 0 && len(b) > c.max {
		b = b[:c.max]
	}
	return c.Conn.Read(b)
}

// wrappedPair is a session whose ends run on cc and sc wrapping loopback TCP.
func wrappedPair(t *testing.T, cc, sc *countConn) (*Conn, *Conn) {
	t.Helper()
	a, z := tcpPair(t)
	cc.Conn, sc.Conn = a, z
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := Server(ctx, sc, Config{KeyPair: mustKey(t), AllowNoTopic: true})
		ch <- res{s, err}
	}()
	c, err := Client(ctx, cc, Config{KeyPair: mustKey(t)})
	r := <-ch
	if err != nil || r.err != nil {
		t.Fatalf("handshake: client %v, server %v", err, r.err)
	}
	t.Cleanup(func() {
		c.Close()
		r.c.Close()
		<-c.Done()
		<-r.c.Done()
	})
	return c, r.c
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// A 64 KiB Write is two frames (65518 bytes at most per frame) sealed into
// one transport write, not one write per frame.
func TestWriteSealsFramesIntoOneTransportWrite(t *testing.T) {
	cc, sc := &countConn{}, &countConn{}
	c, s := wrappedPair(t, cc, sc)
	msg := randomBytes(t, 64<<10)
	before := cc.writes.Load()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load() - before; n != 1 {
		t.Errorf("a 64 KiB Write made %d transport writes, want 1", n)
	}
	big := randomBytes(t, 1<<20) // 17 frames: 5 writes of at most txFrames
	before = cc.writes.Load()
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	if n, want := cc.writes.Load()-before, int64((1<<20/maxBody+1+txFrames-1)/txFrames); n != want {
		t.Errorf("a 1 MiB Write made %d transport writes, want %d", n, want)
	}
	got := make([]byte, len(msg)+len(big))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(msg, big...)) {
		t.Fatal("data differs")
	}
}

// Frames of every size arrive intact whether the transport hands them over
// a byte at a time (through net.Conn) or in bursts (a TCP socket, read
// ahead through its RawConn), both directions.
func TestReadAheadDeliversFramesIntact(t *testing.T) {
	sizes := []int{1, 2, 17, 100, maxBody - 1, maxBody, maxBody + 1, 3*maxBody + 5, 200 << 10}
	run := func(t *testing.T, w, r *Conn) {
		var want []byte
		done := make(chan error, 1)
		msgs := make([][]byte, len(sizes))
		for i, n := range sizes {
			msgs[i] = randomBytes(t, n)
			want = append(want, msgs[i]...)
		}
		go func() {
			for _, m := range msgs {
				if _, err := w.Write(m); err != nil {
					done <- err
					return
				}
			}
			done <- w.CloseWrite()
		}()
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d, or they differ", len(got), len(want))
		}
	}
	// a fresh pair per direction: once both sides sent FIN the last one
	// closes the transport
	for _, max := range []int{5, 4096} {
		t.Run(fmt.Sprintf("reads of %d bytes", max), func(t *testing.T) {
			c, s := wrappedPair(t, &countConn{max: max}, &countConn{max: max})
			run(t, c, s)
			c, s = wrappedPair(t, &countConn{max: max}, &countConn{max: max})
			run(t, s, c)
		})
	}
	t.Run("tcp", func(t *testing.T) {
		c, s := mustPair(t, topicA, Config{}, Config{}, nil)
		if c.rx.raw == nil || s.rx.raw == nil {
			t.Fatal("a session on TCP does not read through the socket's RawConn")
		}
		run(t, c, s)
		c, s = mustPair(t, topicA, Config{}, Config{}, nil)
		run(t, s, c)
	})
}

// A Read that waits receives the next frame's data straight into its
// buffer, not through the receive buffer; what does not fit is queued and
// read next, in order.
func TestWaitingReadGetsDataDirectly(t *testing.T) {
	c, s := mustPair(t, topicA, Config{}, Config{}, nil)
	msg := randomBytes(t, 3000)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 1000)
		n, err := s.Read(b)
		if err != nil {
			t.Error(err)
		}
		got <- b[:n]
	}()
	// await the Read's registration: a condition, bounded by guard
	for deadline := time.Now().Add(guard); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		waiting := s.pend != nil
		s.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Read never waited")
		}
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	first := <-got
	if !bytes.Equal(first, msg[:1000]) {
		t.Fatalf("first Read returned %d bytes, not the first 1000", len(first))
	}
	if n := s.handedOff.Load(); n != 1000 {
		t.Errorf("%d bytes handed straight to the Read, want 1000", n)
	}
	rest := make([]byte, 2000)
	if _, err := io.ReadFull(s, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, msg[1000:]) {
		t.Fatal("the queued rest differs")
	}
}
