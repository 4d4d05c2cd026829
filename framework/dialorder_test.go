package framework_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// altTransport stands in for uTP: it wants only peers with a referrer,
// listens on a port of its own and reaches peers over TCP. Every dial
// announces its start on started; with gated set it then waits for the
// test's verdict on proceed (nil: connect, an error: fail). A stubborn one
// ignores ctx while it waits and connects even after losing.
type altTransport struct {
	gated    bool
	stubborn bool
	target   string // address to dial instead of the peer's, if set
	dials    atomic.Int32
	started  chan struct{}
	proceed  chan error
	conns    chan *trackedConn // every connection it made
}

func newAlt(gated bool) *altTransport {
	return &altTransport{gated: gated, started: make(chan struct{}, 16), proceed: make(chan error), conns: make(chan *trackedConn, 16)}
}

func (a *altTransport) Name() string { return "alt" }
func (a *altTransport) Order() int   { return 10 }
func (a *altTransport) Listen(ctx context.Context, host string, _ int) (framework.Listener, error) {
	return tcp.New().Listen(ctx, host, 0)
}
func (a *altTransport) WantsPeer(p framework.Peer) bool { return p.Referrer != nil }
func (a *altTransport) Dial(ctx context.Context, p framework.Peer) (net.Conn, error) {
	a.dials.Add(1)
	a.started <- struct{}{}
	if a.gated {
		var err error
		if a.stubborn {
			err = <-a.proceed
		} else {
			select {
			case err = <-a.proceed:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err != nil {
			return nil, err
		}
	}
	addr := p.Addr()
	if a.target != "" {
		addr = a.target
	}
	dctx := ctx
	if a.stubborn {
		dctx = context.Background()
	}
	var d net.Dialer
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, closed: make(chan struct{})}
	a.conns <- tc
	return tc, nil
}

// trackedConn reports its Close.
type trackedConn struct {
	net.Conn
	once   atomic.Bool
	closed chan struct{}
}

func (c *trackedConn) Close() error {
	if c.once.CompareAndSwap(false, true) {
		close(c.closed)
	}
	return c.Conn.Close()
}

// await waits for a signal that must come.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(swarmtest.DefaultWait):
		t.Fatalf("no %s within %v", what, swarmtest.DefaultWait)
		var zero T
		return zero
	}
}

func withReferrer(p framework.Peer) framework.Peer {
	p.Referrer = &framework.Referrer{Host: "127.0.0.1", Port: 1, ID: make([]byte, 20)}
	return p
}

type connected struct {
	c   *framework.Conn
	err error
}

func connectAsync(n *node, p framework.Peer) <-chan connected {
	ch := make(chan connected, 1)
	go func() {
		c, err := n.Connect(context.Background(), p)
		ch <- connected{c, err}
	}()
	return ch
}

// Happy Eyeballs: while TCP is still dialling, the second transport starts
// only once the connection attempt delay has passed on the swarm's clock.
func TestDialSecondTransportWaitsForTheAttemptDelay(t *testing.T) {
	server := newNode(t)
	alt := newAlt(false)
	n := newNode(t, framework.WithTransport(alt))
	n.tr.Hold()
	res := connectAsync(n, withReferrer(server.peer(topicA)))
	n.nextDial(t)
	// TCP is held and has not failed: only the delay's timer can start alt
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	if err := n.clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("no attempt delay timer: %v", err)
	}
	if d := alt.dials.Load(); d != 0 {
		t.Fatalf("alt dialled %d times before the attempt delay", d)
	}
	n.clk.Advance(framework.DefaultConnectionAttemptDelay - time.Millisecond)
	if d := alt.dials.Load(); d != 0 {
		t.Fatalf("alt dialled %d times before the attempt delay", d)
	}
	n.clk.Advance(time.Millisecond)
	await(t, alt.started, "alt dial after the attempt delay")
	r := await(t, res, "connection")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.c.Type() != "alt" {
		t.Fatalf("type %s, want alt (TCP is still held)", r.c.Type())
	}
	// the held TCP dial is cancelled when alt wins
	n.tr.Release()
	server.waitConn(t, false)
	if len(n.Connections()) != 1 {
		t.Fatalf("%d connections on the dialling side", len(n.Connections()))
	}
}

// A TCP failure starts the next transport at once, without the delay.
func TestDialFailureStartsTheNextTransportAtOnce(t *testing.T) {
	server := newNode(t)
	alt := newAlt(false)
	alt.target = server.addr()
	n := newNode(t, framework.WithTransport(alt))
	res := connectAsync(n, withReferrer(deadPeer(t, topicA))) // TCP is refused
	r := await(t, res, "connection")                          // the fake clock never moves
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.c.Type() != "alt" || len(n.tr.Dials()) != 1 {
		t.Fatalf("type %s, tcp dials %v", r.c.Type(), n.tr.Dials())
	}
}

// TCP that connects within the delay is the only dial.
func TestDialTCPWithinTheDelayIsTheOnlyDial(t *testing.T) {
	server := newNode(t)
	alt := newAlt(false)
	n := newNode(t, framework.WithTransport(alt))
	c, err := n.Connect(context.Background(), withReferrer(server.peer(topicA)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Type() != "tcp" || alt.dials.Load() != 0 {
		t.Fatalf("type %s, alt dials %d", c.Type(), alt.dials.Load())
	}
	server.waitConn(t, false)
	swarmtest.None[*framework.ConnectionEvent](server.rec, 50*time.Millisecond)
}

// Both transports connect; the first connection wins and the loser is closed
// without a byte written, before any handshake: the accepting side never
// reports it (its handshake fails). Order comes from signals: TCP is
// released first, alt only after TCP's connection was returned.
func TestDialRaceFirstConnectionWinsAndLosersAreClosed(t *testing.T) {
	server := newNode(t)
	alt := newAlt(true)
	alt.stubborn = true // it connects even after losing
	n := newNode(t, framework.WithTransport(alt))
	n.tr.Hold()
	res := connectAsync(n, withReferrer(server.peer(topicA)))
	n.nextDial(t)
	n.advance(t, 1, framework.DefaultConnectionAttemptDelay)
	await(t, alt.started, "alt dial")
	n.tr.Release()
	r := await(t, res, "connection")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.c.Type() != "tcp" || alt.dials.Load() != 1 {
		t.Fatalf("type %s, alt dials %d", r.c.Type(), alt.dials.Load())
	}
	server.waitConn(t, false) // the winner
	alt.proceed <- nil        // the loser connects now
	loserConn := await(t, alt.conns, "alt connection")
	await(t, loserConn.closed, "the loser's close")
	st := awaitStats(t, server, "the loser's handshake", func(st framework.Stats) bool {
		return st.Handshakes.Failed == 1 && st.Handshakes.InProgress == 0
	})
	if st.Servers != 1 || st.Handshakes.Completed != 1 {
		t.Fatalf("server stats %+v: want only the winner", st)
	}
	swarmtest.None[*framework.ConnectionEvent](server.rec, 10*time.Millisecond)
	if len(n.Connections()) != 1 {
		t.Fatalf("%d connections on the dialling side", len(n.Connections()))
	}
}

// Close waits for every transport dial in flight, even one that ignores its
// context, and closes the connection it makes: nothing outlives Close.
func TestCloseWaitsForDialsThatIgnoreTheirContext(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	server := newNode(t)
	alt := newAlt(true)
	alt.stubborn = true
	n := newNode(t, framework.WithTransport(alt))
	n.tr.Hold()
	res := connectAsync(n, withReferrer(server.peer(topicA)))
	n.nextDial(t)
	n.advance(t, 1, framework.DefaultConnectionAttemptDelay)
	await(t, alt.started, "alt dial")
	n.tr.Release() // TCP wins; alt is still dialling and ignores its context
	if r := await(t, res, "connection"); r.err != nil {
		t.Fatal(r.err)
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	// Close cannot end while alt's dial is in flight: it never returns
	// before the verdict below, however long the scheduler takes
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a dial was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	alt.proceed <- nil
	c := await(t, alt.conns, "alt connection")
	await(t, c.closed, "the late connection's close")
	if err := await(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	// the recorders' subscriptions still hold unread events; they end at
	// the test's cleanup
	goleak.VerifyNone(t, ignore, goleak.IgnoreTopFunction("github.com/dwebswarm/dwebswarm-go/framework.(*Subscription).pump"))
}

// A transport that ignores its context cannot hold a dial past the connect
// timeout: the dial fails in time, the late connection is closed.
func TestConnectTimeoutHoldsWhenATransportIgnoresItsContext(t *testing.T) {
	server := newNode(t)
	alt := newAlt(true)
	alt.stubborn = true
	alt.target = server.addr()
	n := newNode(t, framework.WithTransport(alt), framework.WithConnectTimeout(200*time.Millisecond))
	res := connectAsync(n, withReferrer(deadPeer(t, topicA)))
	await(t, alt.started, "alt dial") // TCP was refused
	r := await(t, res, "dial failure")
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", r.err)
	}
	alt.proceed <- nil
	c := await(t, alt.conns, "alt connection")
	await(t, c.closed, "the late connection's close")
}

func TestDialFilterSkipsTransportsThatDoNotWantThePeer(t *testing.T) {
	server := newNode(t)
	alt := newAlt(false)
	n := newNode(t, framework.WithTransport(alt))
	c, err := n.Connect(context.Background(), server.peer(topicA)) // no referrer
	if err != nil {
		t.Fatal(err)
	}
	if c.Type() != "tcp" || alt.dials.Load() != 0 {
		t.Fatalf("type %s, alt dialled %d times for a peer without referrer", c.Type(), alt.dials.Load())
	}
	server.waitConn(t, false)
	swarmtest.None[*framework.ConnectionEvent](server.rec, 50*time.Millisecond)
}

func TestConnectionAttemptDelayMustBePositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := framework.New(framework.WithTransport(tcp.New()), framework.WithConnectionAttemptDelay(d)); !errors.Is(err, framework.ErrInvalidOption) {
			t.Fatalf("delay %v: err = %v, want ErrInvalidOption", d, err)
		}
	}
}

// With a single transport too, the connect timeout holds when the transport
// ignores its context, and the late connection is closed.
func TestConnectTimeoutHoldsWithASingleStubbornTransport(t *testing.T) {
	server := newNode(t)
	alt := newAlt(true)
	alt.stubborn = true
	alt.target = server.addr()
	sw, err := framework.New(
		framework.WithListenHost("127.0.0.1"),
		framework.WithPreferredPort(0),
		framework.WithTransport(alt),
		framework.WithDiscovery(swarmtest.NewDiscovery()),
		framework.WithConnectTimeout(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	res := make(chan error, 1)
	go func() {
		_, err := sw.Connect(context.Background(), withReferrer(deadPeer(t, topicA)))
		res <- err
	}()
	await(t, alt.started, "alt dial")
	if err := await(t, res, "dial failure"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	alt.proceed <- nil
	c := await(t, alt.conns, "alt connection")
	await(t, c.closed, "the late connection's close")
}
