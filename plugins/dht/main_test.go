package dht_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/testutil"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

var (
	sharedOnce sync.Once
	shared     *dhttest.Testnet
	sharedErr  error
)

// testnet returns a 50-node testnet shared by the tests of this package.
func testnet(t testing.TB) *dhttest.Testnet {
	t.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared, sharedErr = dhttest.Start(ctx, 50, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	testutil.Main(m, func() {
		if shared != nil {
			shared.Close()
		}
	})
}

// sink records what a Node reports for one join.
type sink struct {
	mu      sync.Mutex
	peers   []framework.Peer
	flushes int
	updates int
	closed  bool // set by the test: any later call is an error
	late    int

	peerCh   chan framework.Peer
	flushCh  chan struct{}
	updateCh chan struct{}
}

func newSink() *sink {
	return &sink{peerCh: make(chan framework.Peer, 4096), flushCh: make(chan struct{}, 16), updateCh: make(chan struct{}, 4096)}
}

func (s *sink) Peer(p framework.Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.late++
	}
	s.peers = append(s.peers, p)
	select {
	case s.peerCh <- p:
	default:
	}
}

func (s *sink) Flushed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.late++
	}
	s.flushes++
	select {
	case s.flushCh <- struct{}{}:
	default:
	}
}

func (s *sink) Updated() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.late++
	}
	s.updates++
	select {
	case s.updateCh <- struct{}{}:
	default:
	}
}

// seal marks the sink closed: calls after seal are counted as late.
func (s *sink) seal() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *sink) lateCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.late
}

func (s *sink) counts() (peers, flushes, updates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers), s.flushes, s.updates
}

func waitSignal(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timeout after %v waiting for %s", d, what)
	}
}

// waitPeer waits for a peer with the given port.
func waitPeer(t testing.TB, s *sink, port int, d time.Duration) framework.Peer {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-s.peerCh:
			if p.Port == port {
				return p
			}
		case <-deadline:
			t.Fatalf("timeout after %v waiting for peer with port %d", d, port)
		}
	}
}

func newDisc(t testing.TB, tn *dhttest.Testnet, cfg dht.Config) *dht.Node {
	t.Helper()
	d, err := tn.ListenNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var topicSeq atomic.Int64

// topic returns a topic unique to this call, so that repeated runs in one
// process (-count) never see each other's announces on the shared testnet.
func topic(name string) framework.Topic {
	return framework.TopicFromString(fmt.Sprintf("%s#%d", name, topicSeq.Add(1)))
}

func join(t testing.TB, d *dht.Node, req framework.JoinRequest) *sink {
	t.Helper()
	s := newSink()
	if err := d.Join(context.Background(), req, s); err != nil {
		t.Fatal(err)
	}
	return s
}
