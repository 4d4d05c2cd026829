package remote_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// udpNode is a uTP transport (in process or a plugin) on its own shared
// socket on 127.0.0.1, listening, set up as a swarm would.
type udpNode struct {
	mux *udpmux.Mux
	tr  framework.Transport
	ln  net.Listener
}

func newUDPNode(t testing.TB, tr framework.Transport) *udpNode {
	t.Helper()
	mux, err := udpmux.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() }) // after the transport's own cleanup
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	ln, err := tr.Listen(ctx, "127.0.0.1", mux.Port()) // before the socket, like the swarm
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := tr.(framework.PacketConnUser).UsePacketConn(mux.Other()); err != nil {
		t.Fatal(err)
	}
	return &udpNode{mux: mux, tr: tr, ln: ln}
}

func (n *udpNode) peer() framework.Peer { return framework.Peer{Host: "127.0.0.1", Port: n.mux.Port()} }

func inProcessUTP(t testing.TB) *utp.Transport {
	tr, err := utp.New(utp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// A plugin that asks for the shared socket gets it relayed: an
// out-of-process uTP transport talks to an in-process one both ways, and
// after a crash the restarted plugin gets a fresh socketpair and works on
// the same port.
func TestRemoteUTPOnSharedSocket(t *testing.T) {
	ev := newEvents()
	cfg := config(t, "utp")
	cfg.OnEvent = ev.add
	rtr := startTransport(t, cfg)
	if !rtr.WantsPacketConn() {
		t.Fatal("the utp plugin does not ask for the shared socket")
	}
	if tcpTr := startTransport(t, config(t, "tcp")); tcpTr.WantsPacketConn() {
		t.Fatal("the tcp plugin asks for the shared socket")
	}
	remoteNode := newUDPNode(t, rtr)
	localNode := newUDPNode(t, inProcessUTP(t))
	if err := rtr.UsePacketConn(remoteNode.mux.Other()); err == nil {
		t.Fatal("a second UsePacketConn succeeded")
	}

	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	// in process → plugin
	go acceptEcho(remoteNode.ln)
	c, err := localNode.tr.Dial(ctx, remoteNode.peer())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "to the plugin")
	c.Close()
	// plugin → in process
	go acceptEcho(localNode.ln)
	c, err = rtr.Dial(ctx, localNode.peer())
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteAddr().String() != localNode.peer().Addr() {
		t.Fatalf("remote addr %s, want %s", c.RemoteAddr(), localNode.peer().Addr())
	}
	roundTrip(t, c, "from the plugin")
	c.Close()

	// crash: the relayed socket is handed to the new instance
	kill9(t, rtr.PID())
	ev.wait(t, remote.EventRestarted, 10*time.Second)
	go acceptEcho(localNode.ln)
	c, err = rtr.Dial(ctx, localNode.peer())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "after the restart")
	c.Close()
}

// acceptEcho echoes one accepted connection.
func acceptEcho(l net.Listener) {
	c, err := l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	io.Copy(c, c)
}

// An out-of-process DHT in a swarm finds, on a loopback testnet, what an
// in-process DHT swarm announced, and the swarms connect.
func TestSwarmOverRemoteDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	tn, err := dhttest.Start(ctx, 10, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	local, err := dht.New(tn.Config(dht.Config{Ephemeral: dht.Bool(true)}))
	if err != nil {
		t.Fatal(err)
	}
	a, recA := newSwarm(t, framework.WithTransport(tcp.New()), framework.WithDiscovery(local))
	if err := a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flushed(ctx, topic); err != nil {
		t.Fatal(err)
	}
	d, err := remote.NewDiscovery(config(t, "dht", joinList(tn.Bootstrap())))
	if err != nil {
		t.Fatal(err)
	}
	if !d.WantsPacketConn() {
		d.Close()
		t.Fatal("the dht plugin does not ask for the shared socket")
	}
	b, recB := newSwarm(t, framework.WithTransport(tcp.New()), framework.WithDiscovery(d))
	if err := b.Join(ctx, topic, framework.Announce(false), framework.Lookup(true)); err != nil {
		t.Fatal(err)
	}
	cb := swarmtest.Wait[*framework.ConnectionEvent](recB, nil).Conn
	ca := swarmtest.Wait[*framework.ConnectionEvent](recA, nil).Conn
	if cb.RemoteAddr().String() != addrOf(a) {
		t.Fatalf("b connected to %s, want %s", cb.RemoteAddr(), addrOf(a))
	}
	exchange(t, cb, ca)
	if dhttest.Violations() != 0 {
		t.Fatalf("%d packets to non-loopback addresses", dhttest.Violations())
	}
}

func joinList(l []string) string {
	s := ""
	for i, x := range l {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}
