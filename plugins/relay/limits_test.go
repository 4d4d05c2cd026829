package relay_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// limitHits collects a relay's OnLimit calls.
type limitHits chan string

func (h limitHits) hook(kind string, _ secure.PublicKey) {
	select {
	case h <- kind:
	default:
	}
}

func (h limitHits) wait(t testing.TB, kind string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case got := <-h:
			if got == kind {
				return
			}
		case <-deadline:
			t.Fatalf("limit %q never hit", kind)
		}
	}
}

// bareRelay starts a relay that announces nothing.
func bareRelay(t testing.TB, cfg relay.ServerConfig) *relay.Server {
	t.Helper()
	if cfg.KeyPair.Public.IsZero() {
		cfg.KeyPair = keyPair(t)
	}
	s, err := relay.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// bareClient reserves at relays without a swarm: the test accepts the
// relayed connections itself.
func bareClient(t testing.TB, cfg relay.ClientConfig) (*relay.Client, net.Listener) {
	t.Helper()
	if cfg.KeyPair.Public.IsZero() {
		cfg.KeyPair = keyPair(t)
	}
	if cfg.Retry == 0 {
		cfg.Retry = 20 * time.Millisecond
	}
	c, err := relay.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := c.Listen(context.Background(), "127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ln
}

func allocation(t testing.TB, c *relay.Client, after int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.WaitReservation(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(r.Relay)
	return net.JoinHostPort(host, itoa(r.Port))
}

func itoa(n int) string { return (&net.TCPAddr{Port: n}).String()[1:] }

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func accept(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readsEOF waits until c reads EOF or fails (the relay closed it).
func readsEOF(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the relay kept the connection open")
	}
}

// TestHostileTooManySessions: a dialler that opens more connections than
// SessionsPerClient gets the extra ones closed at once; the ones admitted
// stay usable.
func TestHostileTooManySessions(t *testing.T) {
	hits := make(limitHits, 16)
	r := bareRelay(t, relay.ServerConfig{Limits: relay.Limits{SessionsPerClient: 2}, OnLimit: hits.hook})
	c, ln := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}})
	addr := allocation(t, c, 0)
	d1, d2 := dial(t, addr), dial(t, addr)
	b1, b2 := accept(t, ln), accept(t, ln)
	d3 := dial(t, addr)
	hits.wait(t, "sessions-per-client")
	readsEOF(t, d3)
	if st := r.Stats(); st.Sessions != 2 || st.LimitSessionsPerClient != 1 {
		t.Fatalf("stats %+v", st)
	}
	// the client's connect-backs race: find which accepted conn is whose
	if _, err := d1.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	got := map[string]net.Conn{}
	for _, b := range []net.Conn{b1, b2} {
		msg := make([]byte, 3)
		if _, err := io.ReadFull(b, msg); err != nil {
			t.Fatal(err)
		}
		got[string(msg)] = b
	}
	if got["one"] == nil || got["two"] == nil {
		t.Fatalf("relayed data mixed up: %v", got)
	}
	// a slot freed is a slot again
	d1.Close()
	readsEOF(t, got["one"])
	got["one"].Close()
	waitStats(t, r, func(st relay.Stats) bool { return st.Sessions == 1 })
	dial(t, addr)
	accept(t, ln)
}

func waitStats(t testing.TB, r *relay.Server, ok func(relay.Stats) bool) {
	t.Helper()
	// Sessions drop when the relay's goroutines finish; bounded wait.
	for i := 0; i < 2000; i++ {
		if ok(r.Stats()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("stats never matched: %+v", r.Stats())
}

// TestHostileTooManyBytes: a client whose connections push more than
// BytesPerClient has the crossing connection cut and later ones refused.
func TestHostileTooManyBytes(t *testing.T) {
	hits := make(limitHits, 16)
	const limit = 256 << 10
	r := bareRelay(t, relay.ServerConfig{Limits: relay.Limits{BytesPerClient: limit}, OnLimit: hits.hook})
	c, ln := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}})
	addr := allocation(t, c, 0)
	d := dial(t, addr)
	b := accept(t, ln)
	go func() {
		buf := make([]byte, 32<<10)
		for i := 0; i < 64; i++ { // 2 MiB at most
			if _, err := d.Write(buf); err != nil {
				return
			}
		}
	}()
	n, _ := io.Copy(io.Discard, b)
	if n > limit {
		t.Fatalf("%d bytes went through a %d-byte budget", n, limit)
	}
	hits.wait(t, "bytes")
	d2 := dial(t, addr)
	readsEOF(t, d2)
	if st := r.Stats(); st.LimitBytes < 2 || st.BytesRelayed > limit {
		t.Fatalf("stats %+v", st)
	}
}

// TestHostileNeverCloses: a relayed connection is cut after
// SessionDuration (on the relay's clock), whatever its peers do.
func TestHostileNeverCloses(t *testing.T) {
	hits := make(limitHits, 16)
	clk := clockwork.NewFakeClock()
	r := bareRelay(t, relay.ServerConfig{Limits: relay.Limits{SessionDuration: time.Minute}, OnLimit: hits.hook,
		Clock: clk, KeepAlive: time.Hour, Timeout: 2 * time.Hour})
	c, ln := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}})
	addr := allocation(t, c, 0)
	d := dial(t, addr)
	b := accept(t, ln) // the duration timer is armed before the stream opens
	clk.Advance(time.Minute + time.Second)
	hits.wait(t, "duration")
	readsEOF(t, d)
	readsEOF(t, b)
	if st := r.Stats(); st.LimitDuration != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestHostileClientsAndInfohashes: the relay holds at most Clients
// reservations, and a client announces at most InfohashesPerClient
// infohashes.
func TestHostileClientsAndInfohashes(t *testing.T) {
	hits := make(limitHits, 64)
	fa := &fakeAnnouncer{}
	r := bareRelay(t, relay.ServerConfig{Limits: relay.Limits{Clients: 1, InfohashesPerClient: 1}, OnLimit: hits.hook, Announcer: fa})
	c1, _ := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}})
	allocation(t, c1, 0)
	c2, _ := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}})
	hits.wait(t, "clients")
	if _, ok, _ := c2.Reservation(); ok {
		t.Fatal("a second client reserved past the limit")
	}
	sink := nopSink{}
	for _, name := range []string{"one", "two"} {
		if err := c1.Join(context.Background(), framework.JoinRequest{Topic: framework.TopicFromString(name), Announce: true, Port: 1}, sink); err != nil {
			t.Fatal(err)
		}
	}
	hits.wait(t, "infohashes")
	if st := r.Stats(); st.Announced != 1 || st.Clients != 1 || st.LimitInfohashes != 1 {
		t.Fatalf("stats %+v", st)
	}
}

type fakeAnnouncer struct{}

func (fakeAnnouncer) AnnounceInfohash(_ [20]byte, _ int, flushed func()) (func(), error) {
	if flushed != nil {
		flushed()
	}
	return func() {}, nil
}

type nopSink struct{}

func (nopSink) Peer(framework.Peer) {}
func (nopSink) Flushed()            {}
func (nopSink) Updated()            {}
