package framework_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

func TestJoinDefaultsToLookupOnly(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA)
	st, ok := n.Status(topicA)
	if !ok || !st.Lookup || st.Announce {
		t.Fatalf("status = %+v %v, want lookup only", st, ok)
	}
	req, _ := n.disc.Request(topicA)
	if !req.Lookup || req.Announce || req.Port != n.Port() {
		t.Fatalf("discovery got %+v", req)
	}
}

func TestJoinWithNeitherLookupNorAnnounceIsAnError(t *testing.T) {
	n := newNode(t)
	err := n.Join(context.Background(), topicA, framework.Lookup(false))
	if !errors.Is(err, framework.ErrInvalidJoin) {
		t.Fatalf("err = %v, want ErrInvalidJoin", err)
	}
	if _, ok := n.Status(topicA); ok {
		t.Fatal("topic joined anyway")
	}
}

func TestJoinAgainReplacesOptions(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA)
	n.join(t, topicA, framework.Announce(true), framework.Lookup(false))
	st, ok := n.Status(topicA)
	if !ok || st.Lookup || !st.Announce {
		t.Fatalf("status = %+v, want announce only", st)
	}
	req, _ := n.disc.Request(topicA)
	if req.Lookup || !req.Announce {
		t.Fatalf("discovery got %+v", req)
	}
}

func TestStatusOfUnknownTopicIsNotOK(t *testing.T) {
	n := newNode(t)
	if _, ok := n.Status(topicB); ok {
		t.Fatal("unknown topic reported")
	}
	if err := n.Leave(context.Background(), topicB); !errors.Is(err, framework.ErrNotJoined) {
		t.Fatalf("leave unknown: %v", err)
	}
}

func TestFlushedFiresWhenEveryDiscoveryFlushed(t *testing.T) {
	d2 := &swarmtest.Discovery{NameValue: "slow"}
	n := newNode(t, framework.WithDiscovery(d2))
	n.join(t, topicA, framework.Announce(true))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := n.Flushed(ctx, topicA); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flushed before the slow discovery: %v", err)
	}
	d2.Flush(topicA)
	if err := n.Flushed(context.Background(), topicA); err != nil {
		t.Fatal(err)
	}
	swarmtest.Wait(n.rec, func(e *framework.FlushedEvent) bool { return e.Topic == topicA })
	d2.Update(topicA)
	ev := swarmtest.Wait(n.rec, func(e *framework.UpdatedEvent) bool { return e.Discovery == "slow" })
	if ev.Topic != topicA {
		t.Fatal("updated for the wrong topic")
	}
}

func TestLeaveUnannouncesAndIgnoresLatePeers(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA, framework.Announce(true))
	if err := n.Leave(context.Background(), topicA); err != nil {
		t.Fatal(err)
	}
	// the own peer topic, announced while topicA was (WithFindable), goes too
	if l := n.disc.Leaves(); !slices.Equal(l, []framework.Topic{topicA, framework.PeerTopic(n.PublicKey())}) {
		t.Fatalf("discovery leaves = %v", l)
	}
	if _, ok := n.Status(topicA); ok {
		t.Fatal("still joined")
	}
	if n.disc.Emit(deadPeer(t, topicA)) {
		t.Fatal("discovery still has a sink for the left topic")
	}
}

func TestStaleSinkOfReplacedJoinIsIgnored(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA)
	n.join(t, topicA)
	onlyNewestSinkCounts(t, n, "replaced")
}

// onlyNewestSinkCounts reports a peer through the first and the second sink
// the discovery was given for topicA: only the second one's is queued.
func onlyNewestSinkCounts(t *testing.T, n *node, old string) {
	t.Helper()
	sinks := n.disc.Sinks()
	stale := deadPeer(t, topicA)
	sinks[0].Peer(stale)
	fresh := deadPeer(t, topicA)
	sinks[1].Peer(fresh)
	ev := swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return true })
	if ev.Peer.Port != fresh.Port {
		t.Fatalf("peer from the %s join's sink was queued: %v", old, ev.Peer)
	}
}

// A sink of a join that was left stays stale when the topic is joined
// again: its late peers and flushes are not the new join's.
func TestStaleSinkOfLeftJoinIsIgnoredAfterRejoin(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA)
	if err := n.Leave(t.Context(), topicA); err != nil {
		t.Fatal(err)
	}
	n.join(t, topicA)
	onlyNewestSinkCounts(t, n, "left")
}

// doneWatch is a context that reports when Done is first asked for: Flushed
// asks once it found the join it waits for, so the test knows the wait began.
type doneWatch struct {
	context.Context
	asked chan struct{}
	once  sync.Once
}

func newDoneWatch(t *testing.T) *doneWatch {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // ends a waiter the engine failed to release
	return &doneWatch{Context: ctx, asked: make(chan struct{})}
}

func (w *doneWatch) Done() <-chan struct{} {
	w.once.Do(func() { close(w.asked) })
	return w.Context.Done()
}

// startFlushed starts Flushed(topic) in the background and returns once it
// waits; its result arrives on the channel.
func startFlushed(t *testing.T, n *node, topic framework.Topic) <-chan error {
	t.Helper()
	w := newDoneWatch(t)
	res := make(chan error, 1)
	go func() { res <- n.Flushed(w, topic) }()
	select {
	case <-w.asked:
	case err := <-res:
		t.Fatalf("Flushed returned at once: %v", err)
	case <-time.After(swarmtest.DefaultWait):
		t.Fatal("Flushed did not start waiting")
	}
	return res
}

func flushedResult(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(swarmtest.DefaultWait):
		t.Fatalf("Flushed still waiting after %v", swarmtest.DefaultWait)
		return nil
	}
}

func TestFlushedReturnsErrLeftWhenTheTopicIsLeft(t *testing.T) {
	n := newNode(t, framework.WithDiscovery(&swarmtest.Discovery{NameValue: "slow"}))
	n.join(t, topicA)
	res := startFlushed(t, n, topicA)
	if err := n.Leave(context.Background(), topicA); err != nil {
		t.Fatal(err)
	}
	if err := flushedResult(t, res); !errors.Is(err, framework.ErrLeft) {
		t.Fatalf("Flushed after Leave: %v, want ErrLeft", err)
	}
	if err := n.Flushed(context.Background(), topicA); !errors.Is(err, framework.ErrNotJoined) {
		t.Fatalf("Flushed of a left topic: %v, want ErrNotJoined", err)
	}
}

func TestFlushedWaitsForTheReplacingJoin(t *testing.T) {
	slow := &swarmtest.Discovery{NameValue: "slow"}
	n := newNode(t, framework.WithDiscovery(slow))
	n.join(t, topicA)
	res := startFlushed(t, n, topicA)
	n.join(t, topicA, framework.Announce(true))
	select {
	case err := <-res:
		t.Fatalf("Flushed returned %v before the replacing join flushed", err)
	default:
	}
	slow.Flush(topicA) // the replacing join's sink
	if err := flushedResult(t, res); err != nil {
		t.Fatalf("Flushed after the replacing join flushed: %v", err)
	}
}

func TestFlushedReturnsErrClosedWhenTheSwarmCloses(t *testing.T) {
	n := newNode(t, framework.WithDiscovery(&swarmtest.Discovery{NameValue: "slow"}))
	n.join(t, topicA)
	res := startFlushed(t, n, topicA)
	n.Close()
	if err := flushedResult(t, res); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("Flushed at Close: %v, want ErrClosed", err)
	}
}

func TestAfterCloseStatusTopicsFlushAndFlushedReportClosed(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA, framework.Announce(true))
	if err := n.Flushed(context.Background(), topicA); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if st, ok := n.Status(topicA); ok {
		t.Errorf("Status after Close: %+v ok", st)
	}
	if ts := n.Topics(); len(ts) != 0 {
		t.Errorf("Topics after Close: %v", ts)
	}
	if st := n.Stats(); st.Topics != 0 {
		t.Errorf("Stats.Topics after Close: %d", st.Topics)
	}
	if err := n.Flush(context.Background()); !errors.Is(err, framework.ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	if err := n.Flushed(context.Background(), topicA); !errors.Is(err, framework.ErrClosed) {
		t.Errorf("Flushed after Close: %v, want ErrClosed", err)
	}
}
