package framework_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// An inbound connection on which no Read returned a byte within the
// unproven timeout is closed (reason unproven); a proven one stays.
func TestUnprovenInboundIsClosedAtTheTimeout(t *testing.T) {
	n := newPlainNode(t)
	proven := dialProven(t, n)
	raw, _ := net.Dial("tcp", n.addr())
	t.Cleanup(func() { raw.Close() })
	silent := n.waitConn(t, false)
	if st := n.Stats(); st.Unproven != 1 || st.Servers != 2 {
		t.Fatalf("stats %+v, want 1 unproven of 2 servers", st)
	}
	// only the silent connection's timer waits
	n.advance(t, 1, framework.DefaultUnprovenTimeout)
	ev := n.waitDisconn(t, silent)
	if ev.Reason != framework.ReasonUnproven || !errors.Is(ev.Err, framework.ErrUnproven) {
		t.Fatalf("reason %q err %v, want unproven", ev.Reason, ev.Err)
	}
	// the peer sees the close
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent connection still open at the peer")
	}
	st := n.Stats()
	if st.Unproven != 0 || st.UnprovenClosed != 1 || st.Servers != 1 {
		t.Fatalf("stats %+v, want the proven connection alone, 1 closed as unproven", st)
	}
	for _, c := range n.Connections() {
		if c != proven {
			t.Fatalf("open connection %v is not the proven one", c.RemoteAddr())
		}
	}
}

// WithUnprovenTimeout(0) never closes a silent connection.
func TestUnprovenTimeoutZeroKeepsSilentConnections(t *testing.T) {
	n := newPlainNode(t, framework.WithUnprovenTimeout(0))
	if _, kept := dialRaw(t, n); !kept {
		t.Fatal("inbound refused")
	}
	n.waitConn(t, false)
	n.clk.Advance(time.Hour)
	swarmtest.None[*framework.DisconnectionEvent](n.rec, 30*time.Millisecond)
	if st := n.Stats(); st.Unproven != 1 || st.Servers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// At an inbound limit the oldest silent inbound connection gives way to
// the new one (reason displaced); proven ones never do.
func TestSilentInboundGivesWay(t *testing.T) {
	// maxPeers 4: 1 slot kept for dials, an inbound share of 3
	n := newPlainNode(t, framework.WithMaxPeers(4))
	proven := dialProven(t, n)
	first, _ := dialRaw(t, n)
	oldest := n.waitConn(t, false)
	dialRaw(t, n)
	n.waitConn(t, false)
	if st := n.Stats(); st.Servers != 3 || st.Unproven != 2 || st.DialReserve != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, kept := dialRaw(t, n); !kept {
		t.Fatal("new inbound connection refused while a silent one could give way")
	}
	ev := n.waitDisconn(t, oldest)
	if ev.Reason != framework.ReasonDisplaced || !errors.Is(ev.Err, framework.ErrDisplaced) {
		t.Fatalf("reason %q err %v, want displaced", ev.Reason, ev.Err)
	}
	if _, err := first.Read(make([]byte, 1)); err == nil {
		t.Fatal("displaced connection still open at the peer")
	}
	n.waitConn(t, false)
	if st := n.Stats(); st.Servers != 3 || st.Displaced != 1 {
		t.Fatalf("stats %+v, want 3 servers, 1 displaced", st)
	}
	swarmtest.None[*framework.InboundRefusedEvent](n.rec, 0)
	if !open(n, proven) {
		t.Fatal("the proven connection gave way")
	}
}

func open(n *node, c *framework.Conn) bool {
	for _, x := range n.Connections() {
		if x == c {
			return true
		}
	}
	return false
}

// Inbound connections take at most maxPeers less the dial reserve: with
// every inbound slot proven, a new inbound connection is refused (limit
// inboundShare) and the swarm still dials out.
func TestDialReserveKeepsSlotsForDials(t *testing.T) {
	server := newNode(t)
	n := newNode(t, framework.WithMaxPeers(4))
	for range 3 {
		dialProven(t, n)
	}
	if _, kept := dialRaw(t, n); kept {
		t.Fatal("inbound connection took a slot kept for dials")
	}
	e := swarmtest.Wait(n.rec, func(*framework.InboundRefusedEvent) bool { return true })
	if e.Limit != "inboundShare" || !errors.Is(e.Err, framework.ErrLimit) {
		t.Fatalf("refusal %+v, want limit inboundShare", e)
	}
	if _, err := n.Connect(context.Background(), server.peer(topicA)); err != nil {
		t.Fatalf("dial out with every inbound slot taken: %v", err)
	}
	if st := n.Stats(); st.Servers != 3 || st.Clients != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDialReserveDefaultsAndOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []framework.Option
		want int
	}{
		{"default", nil, framework.DefaultMaxPeers / 4},
		{"maxPeers 1", []framework.Option{framework.WithMaxPeers(1)}, 0},
		{"maxPeers 3", []framework.Option{framework.WithMaxPeers(3)}, 1},
		{"maxPeers 100", []framework.Option{framework.WithMaxPeers(100)}, 25},
		{"never dials", []framework.Option{framework.WithMaxClientSockets(-1)}, 0},
		{"at most maxClientSockets", []framework.Option{framework.WithMaxClientSockets(2)}, 2},
		{"explicit", []framework.Option{framework.WithDialReserve(0)}, 0},
		{"explicit 10", []framework.Option{framework.WithDialReserve(10)}, 10},
	} {
		sw, err := framework.New(append(tc.opts, framework.WithTransport(tcp.New()))...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := sw.Stats().DialReserve; got != tc.want {
			t.Errorf("%s: dial reserve %d, want %d", tc.name, got, tc.want)
		}
		sw.Close()
	}
	for name, opts := range map[string][]framework.Option{
		"reserve -2":            {framework.WithDialReserve(-2)},
		"reserve = maxPeers":    {framework.WithMaxPeers(4), framework.WithDialReserve(4)},
		"unproven timeout -1ns": {framework.WithUnprovenTimeout(-1)},
	} {
		_, err := framework.New(append(opts, framework.WithTransport(tcp.New()))...)
		if !errors.Is(err, framework.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
}

// hostileTarget is a swarm whose handler answers "ping" with "pong" on
// every inbound connection, as a protocol's handshake would, and reads
// everything else.
func hostileTarget(t testing.TB, opts ...framework.Option) *framework.Swarm {
	base := []framework.Option{
		framework.WithTransport(tcp.New()), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithConnectionHandler(pong),
	}
	sw, err := framework.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw
}

func pong(c *framework.Conn) {
	if c.Client() {
		return // the test's own: it reads the answer
	}
	defer c.Close()
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		return
	}
	if _, err := c.Write([]byte("pong")); err != nil {
		return
	}
	io.Copy(io.Discard, c)
}

// ping checks that c is answered.
func ping(c net.Conn) error {
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != "pong" {
		return errors.New("no pong: " + string(b))
	}
	return nil
}

// idleSockets opens n TCP connections to addr that never send a byte (an
// attacker's); the returned func closes them (so does cleanup).
func idleSockets(t testing.TB, addr string, n int) func() {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	done := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	t.Cleanup(done)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("attacker dial: %v", err)
		}
		conns = append(conns, c)
	}
	return done
}

// waitAccepted waits until the swarm has taken in n inbound connections
// (open or displaced), bounded by DefaultWait.
func waitAccepted(t testing.TB, sw *framework.Swarm, n int) framework.Stats {
	t.Helper()
	deadline := time.Now().Add(4 * swarmtest.DefaultWait)
	for {
		st := sw.Stats()
		if st.Servers+int(st.Displaced)+int(st.UnprovenClosed) >= n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("swarm took in %d of %d inbound connections: %+v", st.Servers+int(st.Displaced)+int(st.UnprovenClosed), n, st)
		}
		time.Sleep(time.Millisecond) // polling a counter, bounded
	}
}

// idleFlood is the number of idle sockets of the hostile tests (issue 13:
// 24 were enough to lock a swarm out; ulimit -n here is 20000).
const idleFlood = 1000

// TestIdleSocketFloodCannotLockOut: 1 000 idle TCP connections aimed at a
// swarm (default maxPeers 24) in plaintext mode hold at most its inbound
// share; a legitimate peer still connects and is answered, and the swarm
// still dials out. (With sessions: TestIdleSocketFloodCannotLockOutSessions.)
func TestIdleSocketFloodCannotLockOut(t *testing.T) {
	target := hostileTarget(t, framework.WithPlaintext())
	legit := hostileTarget(t, framework.WithPlaintext())
	remote := hostileTarget(t, framework.WithPlaintext())
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(target.Port()))

	idleSockets(t, addr, idleFlood)
	st := waitAccepted(t, target, idleFlood)
	share := framework.DefaultMaxPeers - st.DialReserve
	if st.Servers > share || st.Unproven > share {
		t.Fatalf("stats %+v: more inbound connections than the inbound share %d", st, share)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*swarmtest.DefaultWait)
	defer cancel()
	connectsBothWays(ctx, t, legit, target, remote)
	st = target.Stats()
	if st.Servers > share || st.Clients != 1 || st.Displaced < uint64(idleFlood-share) {
		t.Fatalf("stats %+v: want at most %d servers, 1 client, ≥ %d displaced", st, share, idleFlood-share)
	}
}

// BenchmarkConnectUnderIdleSocketFlood reports how long a legitimate peer
// takes to connect and be answered (ms-to-connect) once 1 000 idle sockets
// were aimed at the swarm, and how long the swarm then takes to dial out
// (ms-to-dial-out).
func BenchmarkConnectUnderIdleSocketFlood(b *testing.B) {
	var connect, dialOut time.Duration
	for range b.N {
		b.StopTimer()
		target := hostileTarget(b)
		legit := hostileTarget(b)
		remote := hostileTarget(b)
		stop := idleSockets(b, net.JoinHostPort("127.0.0.1", strconv.Itoa(target.Port())), idleFlood)
		b.StartTimer()
		start := time.Now()
		c, err := legit.Connect(context.Background(), framework.Peer{Host: "127.0.0.1", Port: target.Port()})
		if err != nil {
			b.Fatal(err)
		}
		if err := ping(c); err != nil {
			b.Fatal(err)
		}
		connect += time.Since(start)
		start = time.Now()
		out, err := target.Connect(context.Background(), framework.Peer{Host: "127.0.0.1", Port: remote.Port()})
		if err != nil {
			b.Fatal(err)
		}
		if err := ping(out); err != nil {
			b.Fatal(err)
		}
		dialOut += time.Since(start)
		b.StopTimer()
		stop()
		target.Close()
		legit.Close()
		remote.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(connect)/float64(time.Millisecond)/float64(b.N), "ms-to-connect")
	b.ReportMetric(float64(dialOut)/float64(time.Millisecond)/float64(b.N), "ms-to-dial-out")
}

// TestIdleSocketFloodCannotLockOutSessions: 1 000 idle TCP connections
// from one address hold no slot at all: 8 wait in their handshake (the
// per-IP cap), the rest are closed at once; a legitimate peer from another
// address connects and is answered, and the swarm still dials out.
func TestIdleSocketFloodCannotLockOutSessions(t *testing.T) {
	target := hostileTarget(t, framework.WithAllowNoTopic(true))
	legit := hostileTarget(t)
	remote := hostileTarget(t, framework.WithAllowNoTopic(true))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(target.Port()))
	for range idleFlood {
		dialFrom(t, "127.0.0.2", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*swarmtest.DefaultWait)
	defer cancel()
	if err := target.AwaitStats(ctx, func(st framework.Stats) bool {
		return st.Handshakes.Overflow+uint64(st.Handshakes.InProgress) == idleFlood
	}); err != nil {
		t.Fatalf("%v: %+v", err, target.Stats())
	}
	if st := target.Stats(); st.Handshakes.InProgress > framework.DefaultPendingHandshakesPerIP || st.Servers != 0 {
		t.Fatalf("stats %+v", st)
	}
	connectsBothWays(ctx, t, legit, target, remote)
	if st := target.Stats(); st.Servers != 1 || st.Clients != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// connectsBothWays checks, during an attack on target, that a legitimate
// peer connects to target and is answered, and that target can still dial
// out to remote and be answered.
func connectsBothWays(ctx context.Context, t *testing.T, legit, target, remote *framework.Swarm) {
	t.Helper()
	c, err := legit.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: target.Port()})
	if err != nil {
		t.Fatalf("legitimate peer: %v", err)
	}
	if err := ping(c); err != nil {
		t.Fatalf("legitimate peer not answered: %v", err)
	}
	out, err := target.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: remote.Port()})
	if err != nil {
		t.Fatalf("target cannot dial out: %v", err)
	}
	if err := ping(out); err != nil {
		t.Fatalf("target's dial not answered: %v", err)
	}
}
