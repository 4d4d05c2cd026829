package utp_test

import (
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

func startSwarm(t testing.TB, opts ...framework.Option) *framework.Swarm {
	t.Helper()
	// the tests Connect without a topic
	base := []framework.Option{framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithAllowNoTopic(true)}
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

// exchange checks that data flows both ways between two swarm conns.
func exchange(t *testing.T, a, b *framework.Conn) {
	t.Helper()
	go func() { io.WriteString(a, "ping"); a.CloseWrite() }()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "ping" {
		t.Fatalf("read %q %v", got, err)
	}
	go func() { io.WriteString(b, "pong"); b.CloseWrite() }()
	got, err = io.ReadAll(a)
	if err != nil || string(got) != "pong" {
		t.Fatalf("read %q %v", got, err)
	}
}

func TestUTPOnlySwarmPairConnects(t *testing.T) {
	a := startSwarm(t, framework.WithTransport(newUTP(t)))
	b := startSwarm(t, framework.WithTransport(newUTP(t)))
	recB := swarmtest.Record(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := a.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: b.Port()})
	if err != nil {
		t.Fatal(err)
	}
	cb := swarmtest.Wait(recB, func(e *framework.ConnectionEvent) bool { return true }).Conn
	if ca.Type() != "utp" || cb.Type() != "utp" {
		t.Fatalf("types %q %q, want utp", ca.Type(), cb.Type())
	}
	if _, ok := ca.Session().NetConn().(*utp.Conn); !ok {
		t.Fatalf("client conn is %T", ca.Session().NetConn())
	}
	exchange(t, ca, cb)
}

func TestSwarmWithTCPAndUTPReportsTheConnectionType(t *testing.T) {
	ua, ub := newUTP(t), newUTP(t)
	a := startSwarm(t, framework.WithTransport(tcp.New(), ua))
	b := startSwarm(t, framework.WithTransport(tcp.New(), ub))
	recB := swarmtest.Record(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// both transports on one port number
	ca, err := a.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: b.Port()})
	if err != nil {
		t.Fatal(err)
	}
	want := "tcp"
	if _, ok := ca.Session().NetConn().(*utp.Conn); ok {
		want = "utp"
	}
	if ca.Type() != want {
		t.Fatalf("client type %q for a %T", ca.Type(), ca.Session().NetConn())
	}
	cb := swarmtest.Wait(recB, func(e *framework.ConnectionEvent) bool { return e.Conn.Type() == want }).Conn
	exchange(t, ca, cb)
	// the loser of the race was closed by the dialler: when a losing uTP
	// connection reached the server, the server reads its FIN (or its
	// RESET, when the dial was cancelled right after the handshake)
	if want == "tcp" {
		for _, c := range b.Connections() {
			if c.Type() != "utp" {
				continue
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("losing uTP connection: read %v, want EOF or a reset", err)
			}
		}
	}
	// uTP alone works on the same swarms too
	cu, err := ua.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: b.Port()})
	if err != nil {
		t.Fatal(err)
	}
	cu.Close()
	t.Logf("race won by %s", want)
}

func TestDHTAndUTPShareOneSocket(t *testing.T) {
	ctx := context.Background()
	tn, err := dhttest.Start(ctx, 8, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	mk := func() (*framework.Swarm, *dht.Plugin) {
		p, err := dht.New(tn.Config(dht.Config{Ephemeral: dht.Bool(true)}))
		if err != nil {
			t.Fatal(err)
		}
		return startSwarm(t, framework.WithTransport(newUTP(t)), framework.WithDiscovery(p)), p
	}
	a, pa := mk()
	b, _ := mk()
	if got := pa.Node().Addr().(interface{ String() string }).String(); got == "" {
		t.Fatal("no dht address")
	}
	recA, recB := swarmtest.Record(t, a), swarmtest.Record(t, b)
	topic := framework.TopicFromString("utp shares the dht socket")
	if err := a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flushed(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	cb := swarmtest.Wait(recB, func(e *framework.ConnectionEvent) bool { return true }).Conn
	ca := swarmtest.Wait(recA, func(e *framework.ConnectionEvent) bool { return true }).Conn
	if cb.Type() != "utp" || ca.Type() != "utp" {
		t.Fatalf("types %q %q", cb.Type(), ca.Type())
	}
	// a bulk transfer and DHT traffic at once on the same sockets
	errc := make(chan error, 1)
	var sent [32]byte
	go func() {
		var err error
		sent, err = send(ca, 16<<20, 7)
		if err == nil {
			err = ca.CloseWrite()
		}
		errc <- err
	}()
	topic2 := framework.TopicFromString("second topic during the transfer")
	if err := a.Join(ctx, topic2, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := a.Flushed(fctx, topic2); err != nil {
		t.Fatalf("dht announce during a uTP transfer: %v", err)
	}
	n, got, err := recv(cb)
	if werr := <-errc; werr != nil || err != nil || n != 16<<20 || got != sent {
		t.Fatalf("transfer: %d bytes, intact %v, errors %v %v", n, got == sent, werr, err)
	}
	// and the DHT still answers afterwards
	if err := b.Join(ctx, topic2); err != nil {
		t.Fatal(err)
	}
	swarmtest.Wait(recB, func(e *framework.PeerEvent) bool { return e.Peer.Port == a.Port() && e.Peer.Topic == topic2 })
}
