package dht_test

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// dhtSwarm starts a loopback swarm whose only discovery is the DHT plugin on
// the swarm's shared UDP socket.
func dhtSwarm(t testing.TB, tn *dhttest.Testnet, opts ...framework.Option) (*framework.Swarm, *dht.Plugin) {
	t.Helper()
	return dhtSwarmConfig(t, tn, dht.Config{Ephemeral: dht.Bool(true)}, opts...)
}

// dhtSwarmConfig is dhtSwarm with a DHT configuration of the test's.
func dhtSwarmConfig(t testing.TB, tn *dhttest.Testnet, cfg dht.Config, opts ...framework.Option) (*framework.Swarm, *dht.Plugin) {
	t.Helper()
	p, err := dht.New(tn.Config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	base := []framework.Option{framework.WithTransport(tcp.New()), framework.WithDiscovery(p),
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0)}
	sw, err := framework.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw, p
}

func TestSwarmsFindEachOtherThroughTheDHT(t *testing.T) {
	tn := testnet(t)
	a, pa := dhtSwarm(t, tn)
	b, _ := dhtSwarm(t, tn)
	// the DHT runs on the swarm's port: one UDP socket shared with uTP
	if got := pa.Node().Addr().(*net.UDPAddr).Port; got != a.Port() {
		t.Fatalf("DHT on udp port %d, swarm on %d", got, a.Port())
	}
	recA, recB := swarmtest.Record(t, a), swarmtest.Record(t, b)
	topic := framework.TopicFromString("dht swarm test")
	ctx := context.Background()
	if err := a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flushed(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	pe := swarmtest.Wait(recB, func(e *framework.PeerEvent) bool { return e.Peer.Port == a.Port() })
	if pe.Peer.Referrer == nil || len(pe.Peer.Referrer.ID) != 20 {
		t.Fatalf("peer without referrer: %+v", pe.Peer)
	}
	cb := swarmtest.Wait(recB, func(e *framework.ConnectionEvent) bool { return true }).Conn
	ca := swarmtest.Wait(recA, func(e *framework.ConnectionEvent) bool { return true }).Conn
	go func() { io.WriteString(ca, "over the dht"); ca.CloseWrite() }()
	got, err := io.ReadAll(cb)
	if err != nil || string(got) != "over the dht" {
		t.Fatalf("read %q %v", got, err)
	}
	swarmtest.Wait(recB, func(e *framework.UpdatedEvent) bool { return e.Discovery == dht.Name })
}

// TestNewIsTheSwarmPluginAndOpensNothing: dht.New is what a swarm needs,
// the Plugin; it binds no socket and has no node until the swarm starts it.
func TestNewIsTheSwarmPluginAndOpensNothing(t *testing.T) {
	var p *dht.Plugin
	p, err := dht.New(dht.Config{Bootstrap: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if n := p.Node(); n != nil {
		t.Fatalf("New started a node on %v before the swarm started", n.Addr())
	}
}

func TestPluginRefusesOwnSocketAndJoinBeforeStart(t *testing.T) {
	if _, err := dht.New(dht.Config{ListenAddr: "127.0.0.1:0"}); err == nil {
		t.Fatal("plugin accepted a socket of its own")
	}
	p, err := dht.New(dht.Config{Bootstrap: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join(context.Background(), framework.JoinRequest{Lookup: true}, nil); err == nil {
		t.Fatal("join before the swarm started the plugin")
	}
	p.Close()
}

// BenchmarkSwarmJoinToConnectionDHT20 measures Join → connection event of a
// looking-up swarm when the peer announced on a 20-node loopback testnet
// (goal: ≤ 5 ms p50, half of hyperswarm v2's 10.1 ms here).
func BenchmarkSwarmJoinToConnectionDHT20(b *testing.B) {
	ctx := context.Background()
	tn, err := dhttest.Start(ctx, 20, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer tn.Close()
	server, _ := dhtSwarm(b, tn)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		topic := framework.TopicFromString(time.Now().String() + string(rune('a'+i%26)))
		if err := server.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
			b.Fatal(err)
		}
		if err := server.Flushed(ctx, topic); err != nil {
			b.Fatal(err)
		}
		client, _ := dhtSwarm(b, tn)
		sub := client.Subscribe()
		b.StartTimer()
		start := time.Now()
		if err := client.Join(ctx, topic); err != nil {
			b.Fatal(err)
		}
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case ev := <-sub.C():
				if _, ok := ev.(*framework.ConnectionEvent); ok {
					break wait
				}
			case <-timeout:
				b.Fatal("no connection within 10 s")
			}
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		sub.Close()
		client.Close()
		server.Leave(ctx, topic)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}

// JoinPeer through the DHT: the client knows only the server's key; it
// finds the server under its peer topic, and finds it again after the
// server restarted on another port with the same key.
func TestJoinPeerFindsAPeerByKeyThroughTheDHT(t *testing.T) {
	tn := testnet(t)
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	pt := framework.PeerTopic(kp.Public)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	startServer := func() *framework.Swarm {
		s, _ := dhtSwarm(t, tn, framework.WithKeyPair(kp), framework.WithFindable(framework.FindableAlways))
		if err := s.Flushed(ctx, pt); err != nil {
			t.Fatal(err)
		}
		return s
	}
	server := startServer()
	// the client's requeue timers and DHT rounds stand still: only the
	// test moves the first, so only JoinPeer's refresh looks up again
	clk := clockwork.NewFakeClock()
	client, _ := dhtSwarmConfig(t, tn, dht.Config{Ephemeral: dht.Bool(true), Clock: clockwork.NewFakeClock()}, framework.WithClock(clk))
	rec := swarmtest.Record(t, client)
	if err := client.JoinPeer(ctx, kp.Public); err != nil {
		t.Fatal(err)
	}
	cc := swarmtest.Wait(rec, func(e *framework.ConnectionEvent) bool { return true }).Conn
	if cc.RemotePublicKey() != kp.Public || cc.Peer().Port != server.Port() || cc.Peer().Referrer == nil {
		t.Fatalf("connected to %v key %s", cc.Peer(), cc.RemotePublicKey().Short())
	}
	old := server.Port()
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	swarmtest.Wait(rec, func(e *framework.DisconnectionEvent) bool { return e.Conn == cc })
	server2 := startServer()
	if server2.Port() == old {
		t.Fatalf("the restarted server took the old port %d", old)
	}
	// the requeue timer fires once the new server is announced: the
	// redial of the old address fails, which asks the DHT for a new lookup
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(framework.DefaultRequeue()[0])
	cc2 := swarmtest.Wait(rec, func(e *framework.ConnectionEvent) bool { return true }).Conn
	if cc2.RemotePublicKey() != kp.Public || cc2.Peer().Port != server2.Port() {
		t.Fatalf("reconnected to %v key %s", cc2.Peer(), cc2.RemotePublicKey().Short())
	}
}
