//go:build linux

package mdns

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

// Every test that opens an mDNS socket does it inside a netlab namespace:
// nothing here multicasts on the machine's real interfaces.

// fast is a timing for tests that want many cycles in little time.
func fast() Config {
	return Config{
		QueryBurst:       []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond},
		QueryIntervalMin: 200 * time.Millisecond,
		QueryIntervalMax: 300 * time.Millisecond,
		ResponseWindow:   50 * time.Millisecond,
	}
}

// onlyFirstQuery queries once at join and then not for an hour: finds after
// that can only come from announcements.
func onlyFirstQuery() Config {
	return Config{QueryBurst: []time.Duration{0}, QueryIntervalMin: time.Hour, QueryIntervalMax: time.Hour}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DWS_MDNS_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// startIn creates a Discovery and starts it inside host h (as a swarm
// started there would).
func startIn(h *netlab.Host, cfg Config) (*Discovery, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := h.Do(func() error { return d.Start(context.Background()) }); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// newIn creates a Discovery, starts it inside host h and closes it at
// cleanup.
func newIn(t testing.TB, h *netlab.Host, cfg Config) *Discovery {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	d, err := startIn(h, cfg)
	if err != nil {
		t.Fatalf("in %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

// sink records what a Discovery reports for one join.
type sink struct {
	mu      sync.Mutex
	peers   []framework.Peer
	first   time.Time // of the first peer
	flushed int
	updated int
	peerCh  chan framework.Peer
	flushCh chan struct{}
	updCh   chan struct{}
}

func newSink() *sink {
	return &sink{
		peerCh:  make(chan framework.Peer, 4096),
		flushCh: make(chan struct{}, 16),
		updCh:   make(chan struct{}, 4096),
	}
}

func (s *sink) Peer(p framework.Peer) {
	s.mu.Lock()
	s.peers = append(s.peers, p)
	if s.first.IsZero() {
		s.first = time.Now()
	}
	s.mu.Unlock()
	select {
	case s.peerCh <- p:
	default:
	}
}

func (s *sink) Flushed() {
	s.mu.Lock()
	s.flushed++
	s.mu.Unlock()
	select {
	case s.flushCh <- struct{}{}:
	default:
	}
}

func (s *sink) Updated() {
	s.mu.Lock()
	s.updated++
	s.mu.Unlock()
	select {
	case s.updCh <- struct{}{}:
	default:
	}
}

func (s *sink) snapshot() (peers []framework.Peer, flushed, updated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]framework.Peer(nil), s.peers...), s.flushed, s.updated
}

func (s *sink) waitPeer(t testing.TB, within time.Duration) framework.Peer {
	t.Helper()
	select {
	case p := <-s.peerCh:
		return p
	case <-time.After(within):
		t.Fatalf("no peer within %v", within)
		return framework.Peer{}
	}
}

func (s *sink) waitFlushed(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case <-s.flushCh:
	case <-time.After(within):
		t.Fatalf("not flushed within %v", within)
	}
}

// waitUpdates waits for n more Updated calls.
func (s *sink) waitUpdates(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for range n {
		select {
		case <-s.updCh:
		case <-deadline:
			t.Fatalf("fewer than %d updates within %v", n, within)
		}
	}
}

func join(t testing.TB, d *Discovery, topic framework.Topic, announce, lookup bool, port int) *sink {
	t.Helper()
	s := newSink()
	req := framework.JoinRequest{Topic: topic, Announce: announce, Lookup: lookup, Port: port}
	if err := d.Join(context.Background(), req, s); err != nil {
		t.Fatalf("join: %v", err)
	}
	return s
}

func topicN(name string, i int) framework.Topic {
	return framework.TopicFromString(fmt.Sprintf("%s/%d", name, i))
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil {
		return def
	}
	return v
}
