package utp_test

import (
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/testutil"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// node is a uTP transport on its own udpmux socket on 127.0.0.1, as a
// swarm sets it up.
type node struct {
	mux *udpmux.Mux
	tr  *utp.Transport
	ln  net.Listener
}

// newUTP returns a uTP transport with the default Config.
func newUTP(t testing.TB) *utp.Transport {
	t.Helper()
	tr, err := utp.New(utp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newNode(t testing.TB, cfg utp.Config) *node {
	t.Helper()
	mux, err := udpmux.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := utp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.UsePacketConn(mux.Other()); err != nil {
		t.Fatal(err)
	}
	ln, err := tr.Listen(context.Background(), "127.0.0.1", mux.Port())
	if err != nil {
		t.Fatal(err)
	}
	n := &node{mux: mux, tr: tr, ln: ln}
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) close() {
	n.ln.Close()
	n.tr.Close()
	n.mux.Close()
}

func (n *node) peer() framework.Peer {
	return framework.Peer{Host: "127.0.0.1", Port: n.mux.Port()}
}

// connect dials b from a and returns both ends.
func connect(t testing.TB, a, b *node) (client, server net.Conn) {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := b.ln.Accept()
		ch <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := a.tr.Dial(ctx, b.peer())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		c.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() { c.Close(); r.c.Close() })
	return c, r.c
}

// pattern is a deterministic pseudo-random stream.
type pattern struct{ r *rand.ChaCha8 }

func newPattern(seed byte) *pattern {
	var s [32]byte
	s[0] = seed
	return &pattern{rand.NewChaCha8(s)}
}

func (p *pattern) Read(b []byte) (int, error) { return p.r.Read(b) }

// send writes n bytes of pattern seed to w with chunked writes and returns
// their SHA-256.
func send(w io.Writer, n int64, seed byte) ([32]byte, error) {
	h := sha256.New()
	_, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(newPattern(seed), n), make([]byte, 256<<10))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, err
}

// recv reads r to EOF and returns the byte count and SHA-256.
func recv(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum, err
}
