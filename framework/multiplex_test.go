package framework_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

func TestMultiplexReusesConnectionAndReportsNewTopic(t *testing.T) {
	server := newNode(t)
	n := newNode(t, framework.WithMultiplex(true))
	n.join(t, topicA)
	n.join(t, topicB)
	n.disc.Emit(server.peer(topicA))
	c := n.waitConn(t, true)
	n.disc.Emit(server.peer(topicB))
	ev := swarmtest.Wait(n.rec, func(e *framework.TopicEvent) bool { return true })
	if ev.Conn != c || ev.Topic != topicB {
		t.Fatalf("topic event %+v", ev)
	}
	if got := c.Topics(); !slices.Equal(got, []framework.Topic{topicA, topicB}) {
		t.Fatalf("topics %v", got)
	}
	swarmtest.None[*framework.ConnectionEvent](n.rec, 30*time.Millisecond)
	if len(n.Connections()) != 1 {
		t.Fatal("second connection made under multiplex")
	}
}

// In plaintext mode; sessions are deduplicated by key instead
// (TestSessionsAreDeduplicatedByKeyAcrossTopics).
func TestWithoutMultiplexEachTopicGetsItsOwnConnection(t *testing.T) {
	server := newPlainNode(t)
	n := newPlainNode(t)
	n.join(t, topicA)
	n.join(t, topicB)
	n.disc.Emit(server.peer(topicA), server.peer(topicB))
	c1 := n.waitConn(t, true)
	c2 := n.waitConn(t, true)
	if c1.Topics()[0] == c2.Topics()[0] {
		t.Fatal("both connections on one topic")
	}
}

// A connection that outlives its topic is redialled again once the topic is
// joined again and the peer rediscovered.
func TestRejoinedTopicAdoptsOpenConnection(t *testing.T) {
	server := newNode(t)
	n := newNode(t)
	n.join(t, topicA)
	n.disc.Emit(server.peer(topicA))
	c := n.waitConn(t, true)
	if err := n.Leave(t.Context(), topicA); err != nil {
		t.Fatal(err)
	}
	if len(n.Connections()) != 1 {
		t.Fatal("leave closed the connection")
	}
	n.join(t, topicA)
	n.disc.Emit(server.peer(topicA))
	swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return true })
	sc := server.waitConn(t, false)
	go readUntilEOF(c)
	sc.Close()
	n.waitDisconn(t, c)
	n.advance(t, 1, time.Second) // requeued, not forgotten
	n.waitConn(t, true)
}

// Re-joining a topic while its connection stays open adds no duplicate to
// Conn.Topics, and fires no TopicEvent: without multiplexing never, with it
// only for a topic the connection did not serve yet.
func TestRejoinedTopicAddsNoDuplicateTopicNorTopicEvent(t *testing.T) {
	for _, mux := range []bool{false, true} {
		server := newNode(t)
		n := newNode(t, framework.WithMultiplex(mux))
		n.join(t, topicA)
		n.disc.Emit(server.peer(topicA))
		c := n.waitConn(t, true)
		if err := n.Leave(t.Context(), topicA); err != nil {
			t.Fatal(err)
		}
		n.join(t, topicA)
		n.disc.Emit(server.peer(topicA))
		swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return true })
		// Topics takes the engine's lock: the admission is complete, and any
		// event it published is queued
		if got := c.Topics(); !slices.Equal(got, []framework.Topic{topicA}) {
			t.Fatalf("multiplex %v: topics %v, want [topicA] once", mux, got)
		}
		swarmtest.None[*framework.TopicEvent](n.rec, 30*time.Millisecond)
	}
}
