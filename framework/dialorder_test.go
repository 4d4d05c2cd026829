package framework_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// altTransport stands in for uTP: it reaches peers over TCP after a delay,
// listens on a port of its own, and wants only peers with a referrer.
type altTransport struct {
	delay time.Duration
	dials atomic.Int32
}

func (a *altTransport) Name() string { return "alt" }
func (a *altTransport) Listen(ctx context.Context, host string, _ int) (framework.Listener, error) {
	return tcp.New().Listen(ctx, host, 0)
}
func (a *altTransport) Dial(ctx context.Context, p framework.Peer) (net.Conn, error) {
	a.dials.Add(1)
	time.Sleep(a.delay) // a slow transport that ignores cancellation (bounded)
	var d net.Dialer
	return d.DialContext(context.Background(), "tcp", p.Addr()) // connects even after losing
}
func (a *altTransport) WantsPeer(p framework.Peer) bool { return p.Referrer != nil }

func TestDialRaceFirstConnectionWinsAndLosersAreClosed(t *testing.T) {
	server := newNode(t)
	alt := &altTransport{delay: 30 * time.Millisecond}
	n := newNode(t, framework.WithTransport(alt))
	p := server.peer(topicA)
	p.Referrer = &framework.Referrer{Host: "127.0.0.1", Port: 1, ID: make([]byte, 20)}
	c, err := n.Connect(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type() != "tcp" || alt.dials.Load() != 1 {
		t.Fatalf("type %s, alt dials %d", c.Type(), alt.dials.Load())
	}
	// the server saw the winner and the loser; the loser is closed at once
	server.waitConn(t, false)
	loser := server.waitConn(t, false)
	go readUntilEOF(loser)
	server.waitDisconn(t, nil)
	if len(n.Connections()) != 1 {
		t.Fatalf("%d connections on the dialling side", len(n.Connections()))
	}
}

func TestDialFilterSkipsTransportsThatDoNotWantThePeer(t *testing.T) {
	server := newNode(t)
	alt := &altTransport{}
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

func (a *altTransport) Order() int { return 10 }
