package framework_test

import (
	"context"
	"errors"
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
	if l := n.disc.Leaves(); len(l) != 1 || l[0] != topicA {
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
	sinks := n.disc.Sinks()
	stale := deadPeer(t, topicA)
	sinks[0].Peer(stale)
	fresh := deadPeer(t, topicA)
	sinks[1].Peer(fresh)
	ev := swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return true })
	if ev.Peer.Port != fresh.Port {
		t.Fatalf("peer from the replaced join's sink was queued: %v", ev.Peer)
	}
}
