package framework_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// dialRaw connects to n with plain TCP and reports whether the swarm kept
// the connection (refused ones are closed at once: the read sees EOF).
func dialRaw(t *testing.T, n *node) (net.Conn, bool) {
	t.Helper()
	if !n.plain {
		return dialSession(t, n)
	}
	c, err := net.Dial("tcp", n.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	c.SetReadDeadline(time.Time{})
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
		return c, false
	}
	return c, true
}

// dialProven connects to n with plain TCP and sends a byte that the
// swarm's side of the connection reads: an inbound connection proven, which
// no newer one can displace. It returns the swarm's side.
func dialProven(t *testing.T, n *node) *framework.Conn {
	t.Helper()
	if !n.plain {
		if _, kept := dialSession(t, n); !kept {
			t.Fatal("session refused")
		}
		return n.waitConn(t, false)
	}
	c, err := net.Dial("tcp", n.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	sc := n.waitConn(t, false)
	if _, err := io.ReadFull(sc, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return sc
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestMaxPeersRefusesInboundAndStopsDialling(t *testing.T) {
	server := newNode(t)
	n := newNode(t, framework.WithMaxPeers(1))
	n.join(t, topicA)
	n.disc.Emit(server.peer(topicA))
	n.waitConn(t, true)
	n.nextDial(t)
	// at the limit: inbound refused...
	if _, kept := dialRaw(t, n); kept {
		t.Fatal("inbound connection accepted at maxPeers")
	}
	// ...and queued peers are not dialled
	n.disc.Emit(deadPeer(t, topicA))
	swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return e.Peer.Port != server.Port() })
	n.noDial(t, 50*time.Millisecond)
	if st := n.Stats(); st.Clients != 1 || st.Servers != 0 || st.Queued != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxClientSocketsCapsDials(t *testing.T) {
	servers := []*node{newNode(t), newNode(t), newNode(t)}
	n := newNode(t, framework.WithMaxClientSockets(2))
	n.join(t, topicA)
	for _, s := range servers {
		n.disc.Emit(s.peer(topicA))
	}
	first := n.waitConn(t, true)
	n.waitConn(t, true)
	swarmtest.None[*framework.ConnectionEvent](n.rec, 50*time.Millisecond)
	if st := n.Stats(); st.Clients != 2 || st.Queued != 1 {
		t.Fatalf("stats %+v", st)
	}
	// inbound connections are not client sockets: still accepted
	if _, kept := dialRaw(t, n); !kept {
		t.Fatal("inbound refused by maxClientSockets")
	}
	first.Ban() // frees a slot without a requeue
	third := n.waitConn(t, true)
	if third.Peer() == nil {
		t.Fatal("third connection has no peer")
	}
}

func TestMaxClientSocketsMinusOneNeverDials(t *testing.T) {
	n := newNode(t, framework.WithMaxClientSockets(-1))
	n.join(t, topicA)
	n.disc.Emit(deadPeer(t, topicA))
	swarmtest.Wait(n.rec, func(*framework.PeerEvent) bool { return true })
	n.noDial(t, 50*time.Millisecond)
}

func TestMaxServerSocketsZeroIsUnlimited(t *testing.T) {
	n := newNode(t, framework.WithMaxServerSockets(0))
	for range 5 {
		if _, kept := dialRaw(t, n); !kept {
			t.Fatal("inbound refused with maxServerSockets 0")
		}
	}
	if st := n.Stats(); st.Servers != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxServerSocketsMinusOneRefusesInbound(t *testing.T) {
	n := newNode(t, framework.WithMaxServerSockets(-1))
	if _, kept := dialRaw(t, n); kept {
		t.Fatal("inbound accepted with maxServerSockets -1")
	}
	swarmtest.None[*framework.ConnectionEvent](n.rec, 20*time.Millisecond)
}

// At maxServerSockets a new inbound connection is refused when every open
// one is proven (a silent one would give way: TestSilentInboundGivesWay).
func TestMaxServerSocketsCapsInbound(t *testing.T) {
	n := newNode(t, framework.WithMaxServerSockets(2))
	dialProven(t, n)
	dialProven(t, n)
	if _, kept := dialRaw(t, n); kept {
		t.Fatal("inbound #3 kept over maxServerSockets 2")
	}
}

func TestInvalidLimitsAreClearErrors(t *testing.T) {
	for name, o := range map[string]framework.Option{
		"maxPeers 0":            framework.WithMaxPeers(0),
		"maxClientSockets -2":   framework.WithMaxClientSockets(-2),
		"maxServerSockets -2":   framework.WithMaxServerSockets(-2),
		"requeue 0":             framework.WithRequeue(time.Second, 0),
		"forget unresponsive 0": framework.WithForgetUnresponsive(0),
		"forget banned -1":      framework.WithForgetBanned(-1),
		"port 70000":            framework.WithPort(70000),
		"preferred port -1":     framework.WithPreferredPort(-1),
		"connect timeout 0":     framework.WithConnectTimeout(0),
		"nil validatePeer":      framework.WithValidatePeer(nil),
		"nil logger":            framework.WithLogger(nil),
	} {
		_, err := framework.New(o, framework.WithTransport(swarmtest.NewTransport(nil)))
		if !errors.Is(err, framework.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := framework.New(); !errors.Is(err, framework.ErrNoTransport) {
		t.Errorf("no transport: %v", err)
	}
}

// dialSession opens a session to n (a node in the default, encrypted mode)
// as a foreign swarm with a fresh key would, for topicA. It reports whether
// n kept it: the handshake completed and n reported the connection (n
// refuses at its limits before the handshake). The connection event stays
// in n's recorder.
func dialSession(t *testing.T, n *node) (net.Conn, bool) {
	t.Helper()
	c, err := net.Dial("tcp", n.addr())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	sess, err := secure.Client(ctx, c, secure.Config{KeyPair: kp, Topic: topicA})
	if err != nil {
		return c, false
	}
	t.Cleanup(func() { sess.Close() })
	if err := n.AwaitStats(ctx, func(st framework.Stats) bool { return st.Handshakes.InProgress == 0 }); err != nil {
		t.Fatal(err)
	}
	return sess, true
}
