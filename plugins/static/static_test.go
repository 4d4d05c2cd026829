package static_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type sink struct {
	mu               sync.Mutex
	peers            []framework.Peer
	flushed, updated int
	updatedCh        chan struct{}
}

func newSink() *sink { return &sink{updatedCh: make(chan struct{}, 100)} }

func (s *sink) Peer(p framework.Peer) { s.mu.Lock(); s.peers = append(s.peers, p); s.mu.Unlock() }
func (s *sink) Flushed()              { s.mu.Lock(); s.flushed++; s.mu.Unlock() }
func (s *sink) Updated() {
	s.mu.Lock()
	s.updated++
	s.mu.Unlock()
	s.updatedCh <- struct{}{}
}

func (s *sink) waitUpdated(t *testing.T) {
	t.Helper()
	select {
	case <-s.updatedCh:
	case <-time.After(5 * time.Second):
		t.Fatal("no update")
	}
}

func TestReportsListedPeersPerTopicAndRepeats(t *testing.T) {
	a, b := framework.TopicFromString("a"), framework.TopicFromString("b")
	d, err := static.New(static.Config{Interval: 10 * time.Millisecond, Peers: []static.Entry{
		{Addr: "127.0.0.1:1000"},
		{Addr: "127.0.0.1:2000", Topics: []framework.Topic{b}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := newSink()
	if err := d.Join(context.Background(), framework.JoinRequest{Topic: a, Lookup: true}, s); err != nil {
		t.Fatal(err)
	}
	s.waitUpdated(t)
	s.waitUpdated(t) // the list is reported again each interval
	if err := d.Leave(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushed != 1 || s.updated < 2 {
		t.Fatalf("flushed %d updated %d", s.flushed, s.updated)
	}
	for _, p := range s.peers {
		if p.Port != 1000 || p.Topic != a {
			t.Fatalf("peer %v reported for topic a", p)
		}
	}
}

func TestLeaveStopsReporting(t *testing.T) {
	topic := framework.TopicFromString("a")
	d, _ := static.FromAddrs("127.0.0.1:1000")
	defer d.Close()
	s := newSink()
	d.Join(context.Background(), framework.JoinRequest{Topic: topic, Lookup: true}, s)
	s.waitUpdated(t)
	d.Leave(context.Background(), topic)
	s.mu.Lock()
	n := len(s.peers)
	s.mu.Unlock()
	d.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.peers) != n {
		t.Fatal("reported after leave")
	}
}

func TestBadAddressesAreClearErrors(t *testing.T) {
	for _, a := range []string{"", "nohost", "127.0.0.1:0", "127.0.0.1:99999", "a b:1"} {
		if _, err := static.FromAddrs(a); !errors.Is(err, framework.ErrInvalidPeer) {
			t.Errorf("%q: %v", a, err)
		}
	}
	d, _ := static.FromAddrs()
	d.Close()
	if err := d.Join(context.Background(), framework.JoinRequest{Lookup: true}, newSink()); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("join after close: %v", err)
	}
}

func TestNeverReportsItself(t *testing.T) {
	topic := framework.TopicFromString("self")
	d, _ := static.FromAddrs("127.0.0.1:4000", "127.0.0.1:4001", "[::1]:4000")
	defer d.Close()
	s := newSink()
	d.Join(context.Background(), framework.JoinRequest{Topic: topic, Lookup: true, Port: 4000}, s)
	s.waitUpdated(t)
	d.Leave(context.Background(), topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.peers) != 1 || s.peers[0].Port != 4001 {
		t.Fatalf("reported %v, want only the other swarm (port 4001)", s.peers)
	}
}

// TestRefreshReportsAgainNow: Refresh reports the list at once instead of
// at the next Interval (an hour here).
func TestRefreshReportsAgainNow(t *testing.T) {
	topic := framework.TopicFromString("refresh")
	d, _ := static.New(static.Config{Peers: []static.Entry{{Addr: "127.0.0.1:1000"}}, Interval: time.Hour})
	defer d.Close()
	s := newSink()
	d.Join(context.Background(), framework.JoinRequest{Topic: topic, Lookup: true}, s)
	s.waitUpdated(t)
	if err := d.Refresh(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	s.waitUpdated(t)
	if err := d.Refresh(context.Background(), framework.TopicFromString("not joined")); err != nil {
		t.Fatalf("refresh of a topic not joined: %v", err)
	}
	d.Leave(context.Background(), topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.peers) != 2 || s.updated != 2 {
		t.Fatalf("peers %v, updated %d: want the list twice", s.peers, s.updated)
	}
}
