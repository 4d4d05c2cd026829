package forward

import (
	"context"
	"net"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// TestConnectLooksUpOnDemand: a connecting daemon that started before its
// server knows no peer (or only a dead one) after its DHT rounds; its
// next rounds are minutes away. A forwarded connection must ask for a
// lookup now and get through once the server is announced, instead of
// failing with "no peer known" until the next round.
func TestConnectLooksUpOnDemand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tn, err := dhttest.Start(ctx, 10, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	// no fast relookups: after its first round, a join's next one is
	// RoundMin (5 minutes) away
	withDHT := func() framework.Option {
		return dwebswarm.DHT(tn.Config(dht.Config{Ephemeral: dht.Bool(true), FastRelookups: []time.Duration{}}))
	}
	deadAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		return ln.Addr().String()
	}

	for _, tc := range []struct {
		name  string
		extra []framework.Option
	}{
		{"no peer known", nil},
		{"known peer fails", []framework.Option{dwebswarm.StaticPeers(deadAddr())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := framework.TopicFromString(t.Name())
			// the client first: its one round finds nothing
			b := newSwarm(t, append([]framework.Option{withDHT()}, tc.extra...)...)
			mb := newManager(t, b, Options{PeerWait: 30 * time.Second})
			if err := mb.Add(ctx, Service{Name: "echo", Topic: topic, Connect: "127.0.0.1:0"}); err != nil {
				t.Fatal(err)
			}
			if err := b.Join(ctx, topic); err != nil {
				t.Fatal(err)
			}
			if err := b.Flushed(ctx, topic); err != nil {
				t.Fatal(err)
			}
			// then the server, announced
			a := newSwarm(t, withDHT())
			ma := newManager(t, a, Options{})
			if err := ma.Add(ctx, Service{Name: "echo", Topic: topic, Serve: echoServer(t)}); err != nil {
				t.Fatal(err)
			}
			if err := a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
				t.Fatal(err)
			}
			if err := a.Flushed(ctx, topic); err != nil {
				t.Fatal(err)
			}
			c := dial(t, mb.Addr("echo").String())
			c.SetDeadline(time.Now().Add(30 * time.Second))
			roundTrip(t, c, "found on demand")
		})
	}
}
