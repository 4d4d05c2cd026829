package framework_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var topicA = framework.TopicFromString("topic a")
var topicB = framework.TopicFromString("topic b")

// node is a swarm on loopback with a manual discovery and a recording
// transport.
type node struct {
	*framework.Swarm
	disc *swarmtest.Discovery
	tr   *swarmtest.Transport
	rec  *swarmtest.Recorder
	clk  *clockwork.FakeClock
	// plain: the node runs in plaintext mode (newPlainNode)
	plain bool
}

// newPlainNode is newNode in plaintext mode: raw sockets, as before
// sessions (the rules of plaintext mode: unproven inbound, manual
// deduplication).
func newPlainNode(t testing.TB, opts ...framework.Option) *node {
	t.Helper()
	n := newNode(t, append([]framework.Option{framework.WithPlaintext()}, opts...)...)
	n.plain = true
	return n
}

func newNode(t testing.TB, opts ...framework.Option) *node {
	t.Helper()
	n := &node{disc: swarmtest.NewDiscovery(), tr: swarmtest.NewTransport(tcp.New()), clk: clockwork.NewFakeClock()}
	base := []framework.Option{
		framework.WithListenHost("127.0.0.1"),
		framework.WithPreferredPort(0),
		framework.WithTransport(n.tr),
		framework.WithDiscovery(n.disc),
		framework.WithClock(n.clk),
		framework.WithConnectTimeout(3 * time.Second),
		// peers reach these nodes by hand and through a manual discovery,
		// whether or not they announced the topic
		framework.WithAcceptTopics(topicA, topicB),
		framework.WithAllowNoTopic(true),
		// these tests dial many ports of 127.0.0.1 on a fake clock; the
		// dial limits have their own tests (bounds_test.go)
		framework.WithDialLimits(framework.DialLimits{Rate: -1, PerIPRate: -1, PortsPerIP: -1}),
	}
	sw, err := framework.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	n.Swarm = sw
	n.rec = swarmtest.Record(t, sw)
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sw.Close(); err != nil && !errors.Is(err, framework.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return n
}

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port()) }

func (n *node) peer(topic framework.Topic) framework.Peer {
	return framework.Peer{Host: "127.0.0.1", Port: n.Port(), Topic: topic, PrivateNet: true}
}

func (n *node) join(t testing.TB, topic framework.Topic, opts ...framework.JoinOption) {
	t.Helper()
	if err := n.Join(context.Background(), topic, opts...); err != nil {
		t.Fatal(err)
	}
}

// nextDial waits for the next dial the node starts.
func (n *node) nextDial(t *testing.T) string {
	t.Helper()
	select {
	case a := <-n.tr.Dialled:
		return a
	case <-time.After(swarmtest.DefaultWait):
		t.Fatalf("no dial within %v (dials so far: %v)", swarmtest.DefaultWait, n.tr.Dials())
		return ""
	}
}

// noDial asserts no dial starts within d.
func (n *node) noDial(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case a := <-n.tr.Dialled:
		t.Fatalf("unexpected dial to %s", a)
	case <-time.After(d):
	}
}

// advance moves the fake clock once the expected number of timers wait.
func (n *node) advance(t *testing.T, waiters int, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	if err := n.clk.BlockUntilContext(ctx, waiters); err != nil {
		t.Fatalf("waiting for %d timers: %v", waiters, err)
	}
	n.clk.Advance(d)
}

// deadPeer returns a loopback peer where nothing listens: dials fail fast.
func deadPeer(t *testing.T, topic framework.Topic) framework.Peer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return framework.Peer{Host: "127.0.0.1", Port: port, Topic: topic, PrivateNet: true}
}

// waitConn waits for the next connection event and returns its conn.
func (n *node) waitConn(t *testing.T, client bool) *framework.Conn {
	t.Helper()
	return swarmtest.Wait(n.rec, func(e *framework.ConnectionEvent) bool { return e.Conn.Client() == client }).Conn
}

func (n *node) waitDisconn(t *testing.T, c *framework.Conn) *framework.DisconnectionEvent {
	t.Helper()
	return swarmtest.Wait(n.rec, func(e *framework.DisconnectionEvent) bool { return c == nil || e.Conn == c })
}

// readUntilEOF is what a user does with a connection: read until the peer is
// done, then close.
func readUntilEOF(c net.Conn) {
	io.Copy(io.Discard, c)
	c.Close()
}
