package relay_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

func keyPair(t testing.TB) secure.KeyPair {
	t.Helper()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// tap records what a relay forwards.
type tap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (tp *tap) observe(_ string, b []byte) {
	tp.mu.Lock()
	tp.buf.Write(b)
	tp.mu.Unlock()
}

func (tp *tap) bytes() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]byte(nil), tp.buf.Bytes()...)
}

// announced collects a relay's OnAnnounced calls.
type announced struct {
	ch chan [20]byte
}

func newAnnounced() *announced { return &announced{ch: make(chan [20]byte, 64)} }

func (a *announced) hook(ih [20]byte, _ int) { a.ch <- ih }

func (a *announced) wait(t testing.TB, ih [20]byte) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-a.ch:
			if got == ih {
				return
			}
		case <-deadline:
			t.Fatalf("infohash %x never announced", ih)
		}
	}
}

type relayOpts struct {
	limits relay.Limits
	tap    *tap
	ann    *announced
}

// startRelay starts a relay on 127.0.0.1 that announces on its own node of
// the testnet.
func startRelay(t testing.TB, tn *dhttest.Testnet, o relayOpts) *relay.Server {
	t.Helper()
	node, err := tn.ListenNode(dht.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := relay.ServerConfig{KeyPair: keyPair(t), Listen: "127.0.0.1:0", Announcer: relay.DHTAnnouncer(node), Limits: o.limits}
	if o.tap != nil {
		relay.SetObserve(&cfg, o.tap.observe)
	}
	if o.ann != nil {
		cfg.OnAnnounced = o.ann.hook
	}
	s, err := relay.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); node.Close() })
	return s
}

func pinned(s *relay.Server) string {
	return s.PublicKey().String() + "@" + s.Addr().String()
}

// hiddenSwarm starts a swarm whose only transport and discovery is a relay
// client: it has no reachable listener of its own and announces nothing
// itself; it is reachable only through its relay.
func hiddenSwarm(t testing.TB, relays ...string) (*framework.Swarm, *relay.Client, secure.KeyPair) {
	t.Helper()
	kp := keyPair(t)
	c, err := relay.NewClient(relay.ClientConfig{KeyPair: kp, Relays: relays, Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	opts := append(c.Options(), framework.WithKeyPair(kp), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	sw, err := framework.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw, c, kp
}

// dhtSwarm starts an ordinary loopback swarm (TCP and the DHT).
func dhtSwarm(t testing.TB, tn *dhttest.Testnet) (*framework.Swarm, secure.KeyPair) {
	t.Helper()
	kp := keyPair(t)
	p, err := dht.New(tn.Config(dht.Config{Ephemeral: dht.Bool(true), FastRelookups: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, time.Second}}))
	if err != nil {
		t.Fatal(err)
	}
	sw, err := framework.New(framework.WithTransport(tcp.New()), framework.WithDiscovery(p), framework.WithKeyPair(kp),
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw, kp
}

func waitConn(t testing.TB, r *swarmtest.Recorder, key secure.PublicKey) *framework.Conn {
	t.Helper()
	return swarmtest.Wait(r, func(e *framework.ConnectionEvent) bool { return e.Conn.RemotePublicKey() == key }).Conn
}

// exchange sends msgA from a to b and msgB back, each followed by a
// half-close, and checks both arrive intact.
func exchange(t testing.TB, ca, cb *framework.Conn, msgA, msgB []byte) {
	t.Helper()
	errs := make(chan error, 2)
	go func() {
		_, err := ca.Write(msgA)
		if err == nil {
			err = ca.CloseWrite()
		}
		errs <- err
	}()
	go func() {
		_, err := cb.Write(msgB)
		if err == nil {
			err = cb.CloseWrite()
		}
		errs <- err
	}()
	gotB, err := io.ReadAll(cb)
	if err != nil || !bytes.Equal(gotB, msgA) {
		t.Fatalf("b read %d bytes (want %d), err %v", len(gotB), len(msgA), err)
	}
	gotA, err := io.ReadAll(ca)
	if err != nil || !bytes.Equal(gotA, msgB) {
		t.Fatalf("a read %d bytes (want %d), err %v", len(gotA), len(msgB), err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestReachedOnlyThroughTheRelay: B has no listener anyone can find; it
// reserves at R, which announces B's topic on the DHT with B's allocated
// port. A finds R:port like any peer, dials it with TCP, and the Noise
// session runs end to end between A and B: both see the other's key, data
// is intact both ways, and R moved only ciphertext.
func TestReachedOnlyThroughTheRelay(t *testing.T) {
	tn := testnet(t)
	tp, ann := &tap{}, newAnnounced()
	r := startRelay(t, tn, relayOpts{tap: tp, ann: ann})
	b, cl, kb := hiddenSwarm(t, pinned(r))
	topic := framework.TopicFromString("relay loopback test")
	ctx := context.Background()
	if err := b.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	res, err := cl.WaitReservation(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != r.PublicKey() {
		t.Fatalf("reserved at %s, want %s", res.Key.Short(), r.PublicKey().Short())
	}
	ann.wait(t, dht.Infohash(topic))

	a, ka := dhtSwarm(t, tn)
	recA, recB := swarmtest.Record(t, a), swarmtest.Record(t, b)
	if err := a.Join(ctx, topic, framework.Announce(false), framework.Lookup(true)); err != nil {
		t.Fatal(err)
	}
	ca := waitConn(t, recA, kb.Public)
	cb := waitConn(t, recB, ka.Public)
	if cb.Type() != relay.Name {
		t.Fatalf("b's connection type %q, want %q", cb.Type(), relay.Name)
	}
	if !relay.Relayed(cb) || cb.Path() != "relayed" {
		t.Fatalf("b's conn: relayed %v, path %q", relay.Relayed(cb), cb.Path())
	}
	// A dialled an ordinary TCP address; B's handshake told it
	if ca.Type() != "tcp" || !ca.Relayed() || ca.Path() != "relayed" {
		t.Fatalf("a's conn: type %q, relayed %v, path %q", ca.Type(), ca.Relayed(), ca.Path())
	}
	if got := ca.Peer().Port; got != res.Port {
		t.Fatalf("a dialled port %d, want the allocation %d", got, res.Port)
	}
	marker := []byte("PLAINTEXT-MARKER-0123456789")
	msgA := bytes.Repeat(marker, 4000) // ~100 KiB
	msgB := bytes.Repeat([]byte("reply-"+string(marker)), 100)
	exchange(t, ca, cb, msgA, msgB)

	seen := tp.bytes()
	if bytes.Contains(seen, marker) {
		t.Fatal("the relay saw plaintext")
	}
	if bytes.Contains(seen, ka.Public[:]) || bytes.Contains(seen, kb.Public[:]) {
		t.Fatal("the relay saw a static key in clear")
	}
	st := r.Stats()
	// B announces the topic and its own peer topic (findable by key, S8)
	if st.SessionsTotal != 1 || st.Clients != 1 || st.Announced != 2 {
		t.Fatalf("relay stats %+v", st)
	}
	if st.BytesRelayed < uint64(len(msgA)+len(msgB)) || st.BytesRelayed != uint64(len(seen)) {
		t.Fatalf("relay moved %d bytes (tap %d), payload %d", st.BytesRelayed, len(seen), len(msgA)+len(msgB))
	}
}

// TestRelayFoundThroughTheDHT: a client with no configured relay finds one
// under the relay topic's infohash.
func TestRelayFoundThroughTheDHT(t *testing.T) {
	tn := testnet(t)
	ann := newAnnounced()
	r := startRelay(t, tn, relayOpts{ann: ann})
	ann.wait(t, dht.Infohash(relay.Topic))
	node, err := tn.ListenNode(dht.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	c, _ := bareClient(t, relay.ClientConfig{Find: relay.DHTFinder(func() *dht.Node { return node })})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.WaitReservation(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != r.PublicKey() || res.Relay != r.Addr().String() {
		t.Fatalf("reserved at %+v, want %s", res, r.Addr())
	}
}
