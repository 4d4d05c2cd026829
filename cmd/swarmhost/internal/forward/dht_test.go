package forward

import (
	"context"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// TestForwardOverDHT is the daemon's flow end to end: the serving side
// announces the topic on a loopback DHT testnet, the connecting side finds
// it by lookup, and an HTTP request goes through.
func TestForwardOverDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn, err := dhttest.Start(ctx, 10, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	withDHT := func() framework.Option {
		return dwebswarm.DHT(tn.Config(dht.Config{Ephemeral: dht.Bool(true)}))
	}
	topic := framework.TopicFromString(t.Name())
	srv := httpServer(t)

	a := newSwarm(t, withDHT())
	ma := newManager(t, a, Options{})
	if err := ma.Add(ctx, Service{Name: "web", Topic: topic, Serve: srv.Listener.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flushed(ctx, topic); err != nil {
		t.Fatal(err)
	}

	b := newSwarm(t, withDHT())
	mb := newManager(t, b, Options{})
	if err := mb.Add(ctx, Service{Name: "web", Topic: topic, Connect: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	// the DHT's lookup rounds (at once, ≈1 s, ≈5 s) may need more than
	// PeerWait on a loaded machine
	if err := mb.WaitPeer(ctx, topic); err != nil {
		t.Fatal(err)
	}
	client := httpClient(t)
	if got, err := get(client, "http://"+mb.Addr("web").String()+"/dht"); err != nil || got != "GET /dht " {
		t.Fatalf("got %q, %v", got, err)
	}
}
