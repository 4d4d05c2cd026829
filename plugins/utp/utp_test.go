package utp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

type closeWriter interface{ CloseWrite() error }

// The transport contract (listen, dial, round trip, 64 MiB each way,
// half-close, 100 concurrent connections, a closed port, cancellation,
// Close unblocking Accept, addresses, a taken port) is the conformance
// suite's, run on the registry's factory; the tests below are uTP's own.
func TestConformance(t *testing.T) {
	conformance.RunTransportSuite(t, builtin.UTP())
}

// After CloseWrite, a write fails with EPIPE while the half-closed side
// still reads what the peer sends back.
func TestWriteAfterCloseWriteIsEPIPE(t *testing.T) {
	a, b := newNode(t, utp.Config{}), newNode(t, utp.Config{})
	c, s := connect(t, a, b)
	if err := c.(closeWriter).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after CloseWrite: %v, want EPIPE", err)
	}
	if _, err := io.ReadAll(s); err != nil { // ends at the client's CloseWrite
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	s.(closeWriter).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "back" {
		t.Fatalf("got %q %v", got, err)
	}
}

// transfer sends n bytes each way at once over one connection and checks
// both arrive intact.
func transfer(t *testing.T, c, s net.Conn, n int64) {
	t.Helper()
	type result struct {
		sent, got [32]byte
		count     int64
		err       error
	}
	run := func(w, r net.Conn, seed byte, out chan<- result) {
		var res result
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			res.sent, err = send(w, n, seed)
			if err == nil {
				err = w.(closeWriter).CloseWrite()
			}
			if err != nil {
				res.err = err
			}
		}()
		count, sum, err := recv(r)
		wg.Wait()
		if res.err == nil {
			res.err = err
		}
		res.count, res.got = count, sum
		out <- res
	}
	// c→s and s→c
	ab, ba := make(chan result, 1), make(chan result, 1)
	go run(c, s, 1, ab)
	go run(s, c, 2, ba)
	timeout := time.After(2 * time.Minute)
	var r1, r2 result
	for i := 0; i < 2; i++ {
		select {
		case r := <-ab:
			r1 = r
		case r := <-ba:
			r2 = r
		case <-timeout:
			t.Fatal("transfer still running after 2 minutes")
		}
	}
	// r1: c wrote, s read; r2: s wrote, c read
	if r1.err != nil || r2.err != nil {
		t.Fatalf("errors: %v / %v", r1.err, r2.err)
	}
	if r1.count != n || r2.count != n {
		t.Fatalf("received %d and %d bytes, want %d", r1.count, r2.count, n)
	}
	if r1.sent != r1.got || r2.sent != r2.got {
		t.Fatal("data corrupted")
	}
}

// TestTransfer256MiBIntact moves 256 MiB one way (about 0.6 s, 3 s with
// -race, at the default loopback packet size).
func TestTransfer256MiBIntact(t *testing.T) {
	a, b := newNode(t, utp.Config{}), newNode(t, utp.Config{})
	c, s := connect(t, a, b)
	start := time.Now()
	const n = 256 << 20
	errc := make(chan error, 1)
	var sent [32]byte
	go func() {
		var err error
		sent, err = send(c, n, 3)
		if err == nil {
			err = c.(closeWriter).CloseWrite()
		}
		errc <- err
	}()
	count, got, err := recv(s)
	if werr := <-errc; werr != nil {
		t.Fatal(werr)
	}
	if err != nil || count != n || got != sent {
		t.Fatalf("received %d bytes (want %d), intact %v, err %v", count, n, got == sent, err)
	}
	d := time.Since(start)
	t.Logf("256 MiB in %v (%.0f MiB/s); sender stats %+v", d, 256/d.Seconds(), a.tr.Stats())
}

func TestSmallPacketsTransferIntact(t *testing.T) {
	// the packet size used toward other hosts, on loopback
	cfg := utp.Config{LoopbackPacketSize: utp.DefaultPacketSize}
	a, b := newNode(t, cfg), newNode(t, cfg)
	c, s := connect(t, a, b)
	transfer(t, c, s, 8<<20)
}

// Beyond the suite's concurrency check: once 100 echoed connections close,
// the transport keeps none of them (Stats).
func TestHundredConnectionsAreReleased(t *testing.T) {
	a, b := newNode(t, utp.Config{}), newNode(t, utp.Config{})
	const conns, size = 100, 64 << 10
	var wg sync.WaitGroup
	// server: echo every connection
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range conns {
			c, err := b.ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
				c.(closeWriter).CloseWrite()
			}()
		}
	}()
	errs := make(chan error, conns)
	var cwg sync.WaitGroup
	for i := range conns {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := a.tr.Dial(ctx, b.peer())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			go func() {
				send(c, size, byte(i))
				c.(closeWriter).CloseWrite()
			}()
			want, _ := send(io.Discard, size, byte(i))
			n, got, err := recv(c)
			if err != nil || n != size || got != want {
				errs <- errors.New("echo mismatch")
				return
			}
			errs <- nil
		}()
	}
	cwg.Wait()
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	b.ln.Close()
	wg.Wait()
	if st := a.tr.Stats(); st.Conns > conns {
		t.Fatalf("%d connections left", st.Conns)
	}
	t.Logf("client %+v server %+v", a.tr.Stats(), b.tr.Stats())
}

func TestPeerClosedMidTransferIsAnError(t *testing.T) {
	a, b := newNode(t, utp.Config{}), newNode(t, utp.Config{})
	c, s := connect(t, a, b)
	werr := make(chan error, 1)
	go func() {
		_, err := send(c, 1<<30, 4) // far more than the reader takes
		werr <- err
	}()
	if _, err := io.ReadFull(s, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	s.Close() // unread data: the connection is reset, as TCP does
	select {
	case err := <-werr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("writer got %v, want a reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writer still writing 10 s after the reader closed")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a reset connection succeeded")
	}
}

func TestPeerVanishedMidTransferIsAnError(t *testing.T) {
	cfg := utp.Config{IdleTimeout: time.Second, KeepAlive: 200 * time.Millisecond}
	a, b := newNode(t, cfg), newNode(t, cfg)
	c, s := connect(t, a, b)
	werr := make(chan error, 1)
	go func() {
		_, err := send(c, 1<<30, 5)
		werr <- err
	}()
	rerr := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(c, make([]byte, 1))
		rerr <- err
	}()
	if _, err := io.ReadFull(s, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	b.mux.Close() // the peer's socket is gone: no RESET, just silence
	for _, ch := range []chan error{werr, rerr} {
		select {
		case err := <-ch:
			if !errors.Is(err, utp.ErrPeerSilent) {
				t.Fatalf("got %v, want ErrPeerSilent", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no error 10 s after the peer vanished")
		}
	}
}

func TestDialClosedPortFailsWithinTheTimeout(t *testing.T) {
	a := newNode(t, utp.Config{})
	// a port with no socket at all: nothing answers
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = a.tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: port})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("took %v", d)
	}
	t.Log(err)

	// a uTP socket that does not listen: refused at once
	b := newNode(t, utp.Config{})
	b.ln.Close()
	start = time.Now()
	_, err = a.tr.Dial(context.Background(), b.peer())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want ECONNREFUSED", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %v", d)
	}
	t.Log(err)
}

// A dial cancelled while it waits for a silent peer returns at once (the
// suite cancels before the dial).
func TestDialToASilentPeerHonoursCancellation(t *testing.T) {
	a := newNode(t, utp.Config{})
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0") // swallows the SYNs
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = a.tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancellation took %v", d)
	}
}

func TestWithoutPacketConnFailsClearly(t *testing.T) {
	tr := newUTP(t)
	if _, err := tr.Dial(context.Background(), framework.Peer{Host: "127.0.0.1", Port: 9}); !errors.Is(err, utp.ErrNoPacketConn) {
		t.Fatalf("dial: %v, want ErrNoPacketConn", err)
	}
	// Listen before UsePacketConn (the engine's order) reserves the port;
	// Accept without a socket fails clearly
	l, err := tr.Listen(context.Background(), "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr().(*net.UDPAddr).Port == 0 {
		t.Fatal("no port reserved")
	}
	if _, err := l.Accept(); !errors.Is(err, utp.ErrNoPacketConn) {
		t.Fatalf("accept: %v, want ErrNoPacketConn", err)
	}
}

func TestListenOnAnotherPortThanTheSocketFails(t *testing.T) {
	a := newNode(t, utp.Config{})
	if _, err := a.tr.Listen(context.Background(), "127.0.0.1", a.mux.Port()+1); err == nil {
		t.Fatal("listen on a port the socket is not bound on succeeded")
	}
	if _, err := a.tr.Listen(context.Background(), "127.0.0.1", a.mux.Port()); !errors.Is(err, framework.ErrPortInUse) {
		t.Fatalf("second listen: %v, want ErrPortInUse", err)
	}
}

func TestGarbageAtTheSharedSocketIsIgnored(t *testing.T) {
	a, b := newNode(t, utp.Config{}), newNode(t, utp.Config{})
	c, s := connect(t, a, b)
	junk, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // garbage at both sockets while data flows
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := garbage(r, i)
			for _, n := range []*node{a, b} {
				junk.WriteTo(p, n.mux.LocalAddr())
			}
			if i%64 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	transfer(t, c, s, 16<<20)
	close(stop)
	wg.Wait()
	if a.tr.Stats().Ignored == 0 || b.tr.Stats().Ignored == 0 {
		t.Fatalf("no garbage seen: %+v %+v", a.tr.Stats(), b.tr.Stats())
	}
	// and new connections still work
	c2, s2 := connect(t, b, a)
	transfer(t, c2, s2, 1<<20)
	t.Logf("ignored: %d / %d", a.tr.Stats().Ignored, b.tr.Stats().Ignored)
}

// garbage makes junk datagrams: random bytes, truncated headers, bad
// versions, broken extensions, and well-formed packets of unknown
// connections. It never makes a well-formed SYN (that would be a real
// connection attempt, which BEP 29 accepts without a handshake).
func garbage(r *rand.Rand, i int) []byte {
	p := make([]byte, r.IntN(1500))
	for j := range p {
		p[j] = byte(r.Uint32())
	}
	switch i % 6 {
	case 1:
		p = p[:min(len(p), 19)] // shorter than a header
	case 2:
		if len(p) > 0 {
			p[0] = p[0]&0xf0 | 2 // version 2
		}
	case 3:
		if len(p) >= 22 {
			p[0], p[1], p[21] = 0x01, 1, 255 // sack extension longer than the packet
		}
	case 4:
		if len(p) >= 20 {
			p[0], p[1] = byte(r.IntN(4))<<4|1, 0 // data/fin/state/reset to a random connection
		}
	}
	if len(p) > 0 && p[0] == 0x41 {
		p[0] = 0x42
	}
	return p
}

// TestNewTakesOneConfig: utp.New is the one constructor; the zero Config
// takes every default, and a bad field is an error (never a panic).
func TestNewTakesOneConfig(t *testing.T) {
	if _, err := utp.New(utp.Config{}); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	for _, cfg := range []utp.Config{{PacketSize: 1}, {LoopbackPacketSize: 1 << 20}, {ReadBuffer: 100}} {
		if _, err := utp.New(cfg); !errors.Is(err, framework.ErrInvalidOption) {
			t.Errorf("New(%+v): %v, want ErrInvalidOption", cfg, err)
		}
	}
}

// A SYN that reached the shared socket before the transport had it (the
// swarm binds the socket, then hands it over) waits in the socket's queue
// and is answered once the transport starts, by the listener that was
// waiting for the socket: not refused.
func TestSynQueuedBeforeUsePacketConnIsAccepted(t *testing.T) {
	client := newNode(t, utp.Config{})
	mux, err := udpmux.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	tr := newUTP(t)
	defer tr.Close()
	ln, err := tr.Listen(context.Background(), "127.0.0.1", mux.Port()) // before the socket
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dialed := make(chan error, 1)
	go func() {
		c, err := client.tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: mux.Port()})
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	for mux.Other().(*udpmux.Conn).Buffered() == 0 { // the SYN is queued
		select {
		case <-ctx.Done():
			t.Fatal("the SYN never reached the socket")
		case <-time.After(time.Millisecond):
		}
	}
	if err := tr.UsePacketConn(mux.Other()); err != nil {
		t.Fatal(err)
	}
	if err := <-dialed; err != nil {
		t.Fatalf("dial: %v", err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// In-order data goes straight into a blocked Read's buffer: a reader that
// times out again and again while data streams in still gets every byte,
// once, in order (the buffer it offered is never written after its Read
// returned).
func TestReadDeadlinesWhileDataStreams(t *testing.T) {
	a, b := newNode(t, utp.Config{LoopbackPacketSize: utp.DefaultPacketSize}), newNode(t, utp.Config{})
	c, s := connect(t, a, b)
	const n = 8 << 20
	sent := make(chan [32]byte, 1)
	go func() {
		sum, err := send(c, n, 7)
		if err != nil {
			t.Error(err)
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		sent <- sum
	}()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	got, timeouts := 0, 0
	for {
		if err := s.SetReadDeadline(time.Now().Add(200 * time.Microsecond)); err != nil {
			t.Fatal(err)
		}
		k, err := s.Read(buf)
		h.Write(buf[:k])
		clear(buf) // a late write into buf would corrupt the next chunk
		got += k
		if errors.Is(err, os.ErrDeadlineExceeded) {
			timeouts++
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := <-sent
	if got != n || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("got %d bytes (want %d), content differs: %v (%d timeouts)", got, n, !bytes.Equal(h.Sum(nil), want[:]), timeouts)
	}
}

// Two Reads blocked at once on one connection: between them they get
// every byte, once (the order between them is theirs to sort out).
func TestConcurrentReadsGetEveryByte(t *testing.T) {
	a, b := newNode(t, utp.Config{LoopbackPacketSize: utp.DefaultPacketSize}), newNode(t, utp.Config{})
	c, s := connect(t, a, b)
	const n = 8 << 20
	go func() {
		if _, err := send(c, n, 3); err != nil {
			t.Error(err)
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				k, err := s.Read(buf)
				total.Add(int64(k))
				if err != nil {
					if err != io.EOF {
						t.Error(err)
					}
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("readers stalled after %d of %d bytes", total.Load(), n)
	}
	if total.Load() != n {
		t.Fatalf("%d bytes read, want %d", total.Load(), n)
	}
}
