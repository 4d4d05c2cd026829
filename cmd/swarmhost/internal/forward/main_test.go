package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every blocking step of a test.
const wait = 10 * time.Second

// logBuf collects log output safely.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newSwarm starts a loopback swarm in daemon mode (the queue never dials).
func newSwarm(t testing.TB, opts ...framework.Option) *framework.Swarm {
	t.Helper()
	all := append([]framework.Option{
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithMaxClientSockets(-1), framework.WithMaxPeers(1024),
		// as the daemon does (hostconfig.NodeOptions): one session per stream
		framework.WithHandshakeLimits(framework.HandshakeLimits{Pending: 1024, PendingPerIP: 1024}),
		// the tests dial the swarms by hand, for topics they do not announce
		framework.WithAllowNoTopic(true),
		framework.WithLogger(testLogger(nil)),
	}, opts...)
	sw, err := dwebswarm.New(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw
}

func newManager(t testing.TB, sw *framework.Swarm, opt Options) *Manager {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger(nil)
	}
	m := New(sw, opt)
	t.Cleanup(func() { m.Close() })
	return m
}

// pair is a serving swarm A and a connecting swarm B that lists A as a
// static peer.
type pair struct {
	a, b   *framework.Swarm
	ma, mb *Manager
}

func newPair(t testing.TB, opt Options) *pair {
	t.Helper()
	p := &pair{}
	p.a = newSwarm(t)
	p.ma = newManager(t, p.a, opt)
	p.b = newSwarm(t, dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(p.a.Port())))
	p.mb = newManager(t, p.b, opt)
	return p
}

// service adds a serve service on A and a connect service on B for topic
// and returns the local address to dial on B's side.
func (p *pair) service(t testing.TB, name string, topic framework.Topic, target string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.ma.Add(ctx, Service{Name: name, Topic: topic, Serve: target}); err != nil {
		t.Fatal(err)
	}
	// as the daemon does (run.go): a serve topic is announced, which is
	// what lets the swarm accept sessions for it
	if _, ok := p.a.Status(topic); !ok {
		if err := p.a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.mb.Add(ctx, Service{Name: name, Topic: topic, Connect: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.b.Status(topic); !ok {
		if err := p.b.Join(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.mb.WaitPeer(ctx, topic); err != nil {
		t.Fatal(err)
	}
	return p.mb.Addr(name).String()
}

// echoServer answers every connection with what it reads, half-close aware:
// it half-closes when the client did.
func echoServer(t testing.TB) string {
	t.Helper()
	return tcpServer(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
}

// tcpServer runs fn for every connection on a loopback listener; the
// cleanup closes the listener and every connection and waits.
func tcpServer(t testing.TB, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				fn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads as many bytes back.
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// expectClosed reads until the connection ends; it must end with EOF or a
// reset (never the deadline) and carry no data.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", wait)
	}
	if len(b) != 0 {
		t.Fatalf("got %q before the close, want nothing", b)
	}
}

// disconnections counts DisconnectionEvents of sw from now on.
type disconnections struct {
	sub *framework.Subscription
}

func watchDisconnections(t testing.TB, sw *framework.Swarm) *disconnections {
	d := &disconnections{sub: sw.Subscribe()}
	t.Cleanup(d.sub.Close)
	return d
}

// wait blocks until n more disconnections happened.
func (d *disconnections) wait(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(wait)
	for n > 0 {
		select {
		case ev, ok := <-d.sub.C():
			if !ok {
				t.Fatal("subscription ended")
			}
			if _, ok := ev.(*framework.DisconnectionEvent); ok {
				n--
			}
		case <-timeout:
			t.Fatalf("%d disconnections still missing after %v", n, wait)
		}
	}
}
