package secure

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every await in these tests; it is a hang detector, never
// an expectation about speed.
const guard = 20 * time.Second

func mustKey(t testing.TB) KeyPair {
	t.Helper()
	kp, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// tcpPair is a connected pair of loopback TCP sockets.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return a, r.c
}

// hook sees every length-prefixed message (handshake message or frame,
// header included) a relay forwards: dir 0 is client→server, i counts
// messages per direction. It returns the bytes to forward and whether to
// close the relay after them.
type hook func(dir, i int, msg []byte) (out []byte, closeAfter bool)

// relay joins a and b, passing messages through h.
func relay(a, b net.Conn, h hook) (wait func()) {
	var wg sync.WaitGroup
	pump := func(dir int, src, dst net.Conn) {
		defer wg.Done()
		defer dst.Close()
		defer src.Close()
		for i := 0; ; i++ {
			var hdr [2]byte
			if _, err := io.ReadFull(src, hdr[:]); err != nil {
				return
			}
			msg := make([]byte, 2+int(binary.BigEndian.Uint16(hdr[:])))
			copy(msg, hdr[:])
			if _, err := io.ReadFull(src, msg[2:]); err != nil {
				return
			}
			out, stop := msg, false
			if h != nil {
				out, stop = h(dir, i, msg)
			}
			if _, err := dst.Write(out); err != nil || stop {
				return
			}
		}
	}
	wg.Add(2)
	go pump(0, a, b)
	go pump(1, b, a)
	return wg.Wait
}

type result struct {
	c   *Conn
	err error
}

// handshake runs Client(ccfg) and Server(scfg) over loopback TCP, through
// a relay with h when h is set.
func handshake(t testing.TB, ccfg, scfg Config, h hook) (client, server result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cn, sn := tcpPair(t)
	if h != nil {
		// client ⇄ cn|r1 … relay … r2|sn ⇄ server
		r1 := sn
		r2, srv := tcpPair(t)
		sn = srv
		t.Cleanup(relay(r1, r2, h))
	}
	ch := make(chan result, 1)
	go func() {
		c, err := Server(ctx, sn, scfg)
		ch <- result{c, err}
	}()
	c, err := Client(ctx, cn, ccfg)
	client = result{c, err}
	server = <-ch
	t.Cleanup(func() {
		for _, r := range []result{client, server} {
			if r.c != nil {
				r.c.Close()
				<-r.c.Done()
			}
		}
	})
	return client, server
}

// mustPair is a successful handshake between fresh keys on topic.
func mustPair(t testing.TB, topic [32]byte, ccfg, scfg Config, h hook) (*Conn, *Conn) {
	t.Helper()
	if ccfg.KeyPair.Public.IsZero() {
		ccfg.KeyPair = mustKey(t)
	}
	if scfg.KeyPair.Public.IsZero() {
		scfg.KeyPair = mustKey(t)
	}
	ccfg.Topic = topic
	if scfg.Topics == nil {
		scfg.Topics = func() [][32]byte { return [][32]byte{topic} }
	}
	c, s := handshake(t, ccfg, scfg, h)
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake: client %v, server %v", c.err, s.err)
	}
	return c.c, s.c
}

func await(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(guard):
		t.Fatalf("%s: never happened", what)
	}
}
