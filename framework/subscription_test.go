package framework_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A bounded subscription nobody reads holds at most its buffer: 300 000
// events cost it no more memory than a few, and Dropped counts the rest
// (drop-oldest: what is delivered at last are the newest events).
func TestBoundedSubscriptionStaysBoundedAndCountsDropped(t *testing.T) {
	const events, limit = 300_000, 100
	disc := swarmtest.NewDiscovery()
	sw, err := framework.New(framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithTransport(tcp.New()), framework.WithDiscovery(disc))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if err := sw.Join(context.Background(), topicA); err != nil {
		t.Fatal(err)
	}
	sub := sw.Subscribe(framework.BufferSize(limit))
	defer sub.Close()

	before := heapInUse()
	for range events {
		disc.Update(topicA) // one UpdatedEvent each
	}
	after := heapInUse()
	// unbounded, these events take about 20 MiB
	if grown := int64(after) - int64(before); grown > 4<<20 {
		t.Errorf("heap grew by %d KiB for an unread bounded subscription", grown>>10)
	}
	if d := sub.Dropped(); d < events-limit-1 || d > events-limit {
		t.Errorf("Dropped() = %d, want %d (or one less, for the event in hand)", d, events-limit)
	}

	// the subscription ends at Close: the newest events, then C closes
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	delivered := 0
	timeout := time.After(swarmtest.DefaultWait)
	for done := false; !done; {
		select {
		case _, ok := <-sub.C():
			if !ok {
				done = true
				break
			}
			delivered++
		case <-timeout:
			t.Fatal("bounded subscription did not end at Close")
		}
	}
	if got := uint64(delivered) + sub.Dropped(); got != events {
		t.Errorf("delivered %d + dropped %d = %d, want %d", delivered, sub.Dropped(), got, events)
	}
	if delivered > limit+1 {
		t.Errorf("delivered %d events, more than the buffer of %d (+1 in hand)", delivered, limit)
	}
}

// An unbounded subscription (the default) drops nothing, and every
// subscription, read or not, ends at Close after the disconnection events of
// Close.
func TestSubscriptionsEndAtCloseAfterItsDisconnectionEvents(t *testing.T) {
	server := newNode(t)
	n := newNode(t)
	unbounded := n.Subscribe()
	bounded := n.Subscribe(framework.BufferSize(1))
	defer unbounded.Close()
	defer bounded.Close()
	c, err := n.Connect(context.Background(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	drain := func(sub *framework.Subscription) []framework.Event {
		t.Helper()
		var got []framework.Event
		timeout := time.After(swarmtest.DefaultWait)
		for {
			select {
			case ev, ok := <-sub.C():
				if !ok {
					return got
				}
				got = append(got, ev)
			case <-timeout:
				t.Fatal("subscription did not end at Close")
			}
		}
	}
	// each saw the connection and its disconnection; the bounded one may
	// have dropped the first
	for name, sub := range map[string]*framework.Subscription{"unbounded": unbounded, "bounded": bounded} {
		got := drain(sub)
		if len(got) == 0 || uint64(len(got))+sub.Dropped() != 2 {
			t.Fatalf("%s: %d events delivered, %d dropped, want 2 in all", name, len(got), sub.Dropped())
		}
		last, ok := got[len(got)-1].(*framework.DisconnectionEvent)
		if !ok || last.Conn != c || last.Reason != framework.ReasonSwarmClosed {
			t.Errorf("%s: last event %#v, want the disconnection of Close", name, got[len(got)-1])
		}
	}
	if d := unbounded.Dropped(); d != 0 {
		t.Errorf("unbounded subscription dropped %d events", d)
	}
}
