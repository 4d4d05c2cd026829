package framework_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

func TestValidatePeerRejectsBeforeAnyDial(t *testing.T) {
	var mu sync.Mutex
	var consulted []int
	n := newNode(t, framework.WithValidatePeer(func(p framework.Peer) bool {
		mu.Lock()
		defer mu.Unlock()
		consulted = append(consulted, p.Port)
		return p.Host != "127.0.0.2"
	}))
	n.join(t, topicA)
	even := deadPeer(t, topicA)
	odd := deadPeer(t, topicA)
	odd.Host = "127.0.0.2"
	n.disc.Emit(odd, even)
	rej := swarmtest.Wait(n.rec, func(*framework.PeerRejectedEvent) bool { return true })
	if rej.Peer.Host != odd.Host || !errors.Is(rej.Reason, framework.ErrRejected) {
		t.Fatalf("rejected %+v", rej)
	}
	swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return e.Peer.Port == even.Port })
	if got := n.nextDial(t); got != even.Addr() {
		t.Fatalf("dialled %s", got)
	}
	n.noDial(t, 30*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(consulted) != 2 {
		t.Fatalf("validator consulted %d times, want 2", len(consulted))
	}
}

func TestValidatorPanicIsContainedAsRejection(t *testing.T) {
	n := newNode(t, framework.WithValidators(framework.ValidatorFunc(func(framework.Peer) error { panic("boom") })))
	n.join(t, topicA)
	n.disc.Emit(deadPeer(t, topicA))
	rej := swarmtest.Wait(n.rec, func(*framework.PeerRejectedEvent) bool { return true })
	if !errors.Is(rej.Reason, framework.ErrRejected) {
		t.Fatalf("reason %v", rej.Reason)
	}
	n.noDial(t, 30*time.Millisecond)
}

// orderedValidator claims a position through an Order method: the engine
// must ignore it and consult validators in the order given.
type orderedValidator struct {
	name  string
	order int
	err   error
	log   chan<- string
}

func (v orderedValidator) Name() string { return v.name }
func (v orderedValidator) Order() int   { return v.order }
func (v orderedValidator) Validate(context.Context, framework.Peer) error {
	v.log <- v.name
	return v.err
}

func TestValidatorsRunInTheOrderGiven(t *testing.T) {
	log := make(chan string, 3)
	stop := errors.New("second says no")
	n := newNode(t, framework.WithValidators(
		orderedValidator{name: "first", order: 100, log: log},
		orderedValidator{name: "second", order: 10, err: stop, log: log},
	), framework.WithValidators(orderedValidator{name: "third", order: -5, log: log}))
	n.join(t, topicA)
	n.disc.Emit(deadPeer(t, topicA))
	rej := swarmtest.Wait(n.rec, func(*framework.PeerRejectedEvent) bool { return true })
	if !errors.Is(rej.Reason, stop) {
		t.Fatalf("reason %v, want the second validator's", rej.Reason)
	}
	if a, b := <-log, <-log; a != "first" || b != "second" {
		t.Fatalf("consulted %s then %s, want first then second", a, b)
	}
	select {
	case v := <-log:
		t.Fatalf("%s consulted after the rejection", v)
	default:
	}
}

func TestInvalidDiscoveredPeerIsRejected(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA)
	n.disc.Emit(framework.Peer{Host: "127.0.0.1", Port: 0, Topic: topicA})
	rej := swarmtest.Wait(n.rec, func(*framework.PeerRejectedEvent) bool { return true })
	if !errors.Is(rej.Reason, framework.ErrInvalidPeer) {
		t.Fatalf("reason %v", rej.Reason)
	}
}

func TestDisconnectionFiresExactlyOncePerConnection(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	client.join(t, topicA)
	client.disc.Emit(server.peer(topicA))
	cc := client.waitConn(t, true)
	sc := server.waitConn(t, false)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); cc.Close() }()
		go func() { defer wg.Done(); cc.Write([]byte("x")) }()
	}
	wg.Wait()
	if err := cc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	readUntilEOF(sc)
	client.waitDisconn(t, cc)
	server.waitDisconn(t, sc)
	swarmtest.None[*framework.DisconnectionEvent](client.rec, 30*time.Millisecond)
	swarmtest.None[*framework.DisconnectionEvent](server.rec, 0)
}

func TestHalfCloseThenEOFEndsTheConnection(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	cc, err := client.Connect(context.Background(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	sc := server.waitConn(t, false)
	if err := cc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := sc.Read(buf); err == nil {
		t.Fatal("server read data after half-close")
	}
	if _, err := sc.Write([]byte("y")); err != nil {
		t.Fatalf("server cannot answer after client half-close: %v", err)
	}
	if _, err := cc.Read(buf); err != nil || buf[0] != 'y' {
		t.Fatalf("client read %q %v", buf, err)
	}
	sc.CloseWrite() // server done too: both directions finished on the server
	server.waitDisconn(t, sc)
	cc.Read(buf) // EOF: both directions finished on the client
	client.waitDisconn(t, cc)
}

func TestCloseClosesEverything(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	client.join(t, topicA, framework.Announce(true))
	client.disc.Emit(server.peer(topicA))
	cc := client.waitConn(t, true)
	port := client.Port()
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	ev := client.waitDisconn(t, cc)
	if ev.Err != framework.ErrClosed || ev.Reason != framework.ReasonSwarmClosed {
		t.Fatalf("reason %s, err %v", ev.Reason, ev.Err)
	}
	client.rec.Drain() // the subscription ends after the last event
	// topicA and the own peer topic, announced with it (WithFindable)
	if l := client.disc.Leaves(); len(l) != 2 {
		t.Fatalf("topic not un-announced on close: %v", l)
	}
	// the port is free again
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port still bound: %v", err)
	}
	l.Close()
	// calls after close fail clearly
	if err := client.Close(); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if err := client.Join(context.Background(), topicA); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("join after close: %v", err)
	}
	if _, err := client.Connect(context.Background(), server.peer(topicA)); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("connect after close: %v", err)
	}
	if len(client.Connections()) != 0 {
		t.Fatal("connections left open")
	}
}

func TestConnectDialsOnePeerByHand(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	c, err := client.Connect(context.Background(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Client() || c.Type() != "tcp" || c.Peer() == nil || c.Peer().Port != server.Port() {
		t.Fatalf("info: client=%v type=%s peer=%v", c.Client(), c.Type(), c.Peer())
	}
	if ev := client.waitConn(t, true); ev != c {
		t.Fatal("no connection event for a manual connect")
	}
	sc := server.waitConn(t, false)
	if sc.Peer() != nil || sc.Client() {
		t.Fatal("inbound connection has a peer")
	}
	dead := deadPeer(t, topicA)
	if _, err := client.Connect(context.Background(), dead); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	if ev := swarmtest.Wait(client.rec, func(e *framework.DialFailedEvent) bool { return true }); !ev.Manual || ev.Peer.Port != dead.Port || ev.Err == nil {
		t.Fatalf("dial-failed event %+v", ev)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := client.Connect(ctx, server.peer(topicA)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled connect: %v", err)
	}
	if _, err := client.Connect(context.Background(), framework.Peer{Host: "127.0.0.1"}); !errors.Is(err, framework.ErrInvalidPeer) {
		t.Fatalf("bad peer: %v", err)
	}
}

func TestPortChoice(t *testing.T) {
	// preferred, +1, +2 taken: a random port
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	base := 0
	for base == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p > 65000 {
			continue
		}
		ok := true
		var ls []net.Listener
		for i := range 3 {
			x, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, x)
		}
		for _, x := range ls {
			x.Close()
		}
		if ok {
			base = p
		}
	}
	mk := func(opts ...framework.Option) (*framework.Swarm, error) {
		sw, err := framework.New(append([]framework.Option{framework.WithTransport(tcp.New()), framework.WithListenHost("127.0.0.1")}, opts...)...)
		if err != nil {
			return nil, err
		}
		if err := sw.Start(context.Background()); err != nil {
			sw.Close()
			return nil, err
		}
		t.Cleanup(func() { sw.Close() })
		return sw, nil
	}
	a, err := mk(framework.WithPreferredPort(base))
	if err != nil || a.Port() != base {
		t.Fatalf("preferred port: %v %v", a, err)
	}
	b, err := mk(framework.WithPreferredPort(base))
	if err != nil || b.Port() != base+1 {
		t.Fatalf("preferred+1: got %d %v", b.Port(), err)
	}
	c, err := mk(framework.WithPreferredPort(base))
	if err != nil || c.Port() != base+2 {
		t.Fatalf("preferred+2: got %d %v", c.Port(), err)
	}
	d, err := mk(framework.WithPreferredPort(base))
	if err != nil || d.Port() == 0 || d.Port() >= base && d.Port() <= base+2 {
		t.Fatalf("random: got %d %v", d.Port(), err)
	}
	// an exact port that is taken is an error, not a fallback
	if _, err := mk(framework.WithPort(base)); !errors.Is(err, framework.ErrPortInUse) {
		t.Fatalf("exact port in use: %v", err)
	}
}

func TestSubscriptionDeliversInOrderAndEndsAtClose(t *testing.T) {
	n := newNode(t)
	sub := n.Subscribe()
	for i := range 50 {
		n.join(t, framework.TopicFromString(fmt.Sprint(i)))
	}
	n.Close()
	var flushed int
	for ev := range sub.C() {
		if _, ok := ev.(*framework.FlushedEvent); ok {
			flushed++
		}
	}
	if flushed != 50 {
		t.Fatalf("flushed events %d, want 50 (none lost)", flushed)
	}
}

func TestFlushWaitsForQueuedPeers(t *testing.T) {
	server := newNode(t)
	n := newNode(t)
	n.join(t, topicA)
	n.disc.Emit(server.peer(topicA))
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats(); st.Queued != 0 || st.Dialing != 0 || st.Clients != 1 {
		t.Fatalf("after flush: %+v", st)
	}
}

// The disconnection event says who or what closed the connection.
func TestDisconnectionReasonTellsWhoClosed(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	connect := func(topic framework.Topic) (*framework.Conn, *framework.Conn) {
		t.Helper()
		cc, err := client.Connect(context.Background(), server.peer(topic))
		if err != nil {
			t.Fatal(err)
		}
		return cc, server.waitConn(t, false)
	}
	check := func(side string, ev *framework.DisconnectionEvent, want framework.DisconnectReason, wantErr bool) {
		t.Helper()
		if ev.Reason != want || (ev.Err != nil) != wantErr {
			t.Errorf("%s: reason %q err %v, want %q (error %v)", side, ev.Reason, ev.Err, want, wantErr)
		}
	}

	// closed by us; the peer reads io.EOF, then closes: closed by the peer
	cc, sc := connect(topicA)
	cc.Close()
	check("closer", client.waitDisconn(t, cc), framework.ReasonClosedLocally, false)
	readUntilEOF(sc)
	check("peer of the closer", server.waitDisconn(t, sc), framework.ReasonClosedByPeer, false)

	// half-closes: the side that half-closed first closed it locally, the
	// other side (whose Read saw io.EOF first) was closed by the peer
	cc, sc = connect(topicA)
	if err := cc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, sc); err != nil {
		t.Fatal(err)
	}
	if err := sc.CloseWrite(); err != nil { // both directions done on the server
		t.Fatal(err)
	}
	check("second to half-close", server.waitDisconn(t, sc), framework.ReasonClosedByPeer, false)
	if _, err := io.Copy(io.Discard, cc); err != nil { // both directions done on the client
		t.Fatal(err)
	}
	check("first to half-close", client.waitDisconn(t, cc), framework.ReasonClosedLocally, false)

	// a reset: an I/O error on the side that reads it
	cc, sc = connect(topicA)
	tc, ok := sc.Session().NetConn().(*net.TCPConn)
	if !ok {
		t.Fatalf("server conn is %T, not TCP", sc.Session().NetConn())
	}
	tc.SetLinger(0) // close sends a RST, and no session close frame goes first
	tc.Close()
	sc.Close()
	if ev := server.waitDisconn(t, sc); ev.Reason != framework.ReasonClosedLocally && ev.Reason != framework.ReasonIOError {
		t.Errorf("reset side: reason %q, want closed_locally or io_error", ev.Reason)
	}
	buf := make([]byte, 1)
	if _, err := cc.Read(buf); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read after reset: %v, want a reset error", err)
	}
	check("peer of the reset", client.waitDisconn(t, cc), framework.ReasonIOError, true)

	// a ban (by another node: a ban bans the server's key as well)
	banner := newNode(t)
	bc, err := banner.Connect(context.Background(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	sc = server.waitConn(t, false)
	go readUntilEOF(sc)
	bc.Ban()
	ev := banner.waitDisconn(t, bc)
	check("banner", ev, framework.ReasonBanned, true)
	if !errors.Is(ev.Err, framework.ErrBanned) {
		t.Errorf("ban: err %v", ev.Err)
	}
	server.waitDisconn(t, sc)

	// the swarm closing
	cc, sc = connect(topicB)
	go readUntilEOF(sc)
	client.Close()
	ev = client.waitDisconn(t, cc)
	check("closed swarm", ev, framework.ReasonSwarmClosed, true)
	if !errors.Is(ev.Err, framework.ErrClosed) {
		t.Errorf("swarm close: err %v", ev.Err)
	}
	if s := framework.ReasonClosedByPeer.String(); s != "closed_by_peer" {
		t.Errorf("String() = %q", s)
	}
}
