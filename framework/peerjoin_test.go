package framework_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// The peer topic is SHA-256("dwebswarm peer v1" || key): fixed, so that
// every implementation finds the same target.
func TestPeerTopicDerivation(t *testing.T) {
	var k secure.PublicKey
	for i := range k {
		k[i] = byte(i)
	}
	want := framework.TopicFromString(framework.PeerTopicPrefix + string(k[:]))
	if got := framework.PeerTopic(k); got != want {
		t.Fatalf("PeerTopic = %s, want %s", got, want)
	}
	if framework.PeerTopic(k) == framework.Topic(k) || framework.PeerTopic(k) == framework.TopicFromString(string(k[:])) {
		t.Fatal("the peer topic is the key, or its bare hash")
	}
}

// A swarm that announces a topic announces its peer topic too (not listed
// by Topics) and accepts sessions naming it; a swarm that only looks up
// announces nothing; WithFindable changes both.
func TestFindableAnnouncesThePeerTopic(t *testing.T) {
	server := newNode(t)
	self := framework.PeerTopic(server.PublicKey())
	if _, ok := server.disc.Request(self); ok {
		t.Fatal("a swarm that announces nothing announces its peer topic")
	}
	server.join(t, topicC, framework.Announce(true), framework.Lookup(false))
	if r, ok := server.disc.Request(self); !ok || !r.Announce || r.Lookup {
		t.Fatalf("peer topic request %+v (%v), want announce only", r, ok)
	}
	if ts := server.Topics(); !slices.Equal(ts, []framework.Topic{topicC}) {
		t.Fatalf("Topics = %v, want only topicC", ts)
	}
	if err := server.Leave(t.Context(), topicC); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(server.disc.Leaves(), self) {
		t.Fatal("the peer topic stayed announced after the last announced topic left")
	}

	always := newNode(t, framework.WithFindable(framework.FindableAlways))
	if r, ok := always.disc.Request(framework.PeerTopic(always.PublicKey())); !ok || !r.Announce {
		t.Fatal("FindableAlways did not announce the peer topic at Start")
	}
	never := newNode(t, framework.WithFindable(framework.FindableNever))
	never.join(t, topicC, framework.Announce(true))
	if _, ok := never.disc.Request(framework.PeerTopic(never.PublicKey())); ok {
		t.Fatal("FindableNever announced the peer topic")
	}
	c := newNode(t)
	if _, err := c.Connect(t.Context(), never.peer(framework.PeerTopic(never.PublicKey()))); err == nil {
		t.Fatal("FindableNever accepted a session for its peer topic")
	}
	if _, err := c.Connect(t.Context(), always.peer(framework.PeerTopic(always.PublicKey()))); err != nil {
		t.Fatalf("a findable swarm refused its peer topic: %v", err)
	}
}

// JoinPeer finds a peer by its key through a discovery, connects, and
// reconnects when the peer comes back on another port with the same key.
func TestJoinPeerConnectsAndReconnectsAfterRestart(t *testing.T) {
	kp := keyPair(t)
	server := newNode(t, framework.WithKeyPair(kp), framework.WithFindable(framework.FindableAlways))
	client := newNode(t)
	pt := framework.PeerTopic(kp.Public)
	if err := client.JoinPeer(t.Context(), kp.Public); err != nil {
		t.Fatal(err)
	}
	if r, ok := client.disc.Request(pt); !ok || r.Announce || !r.Lookup {
		t.Fatalf("JoinPeer's request %+v (%v), want a lookup of the peer topic", r, ok)
	}
	client.disc.Emit(server.peer(pt))
	cc := client.waitConn(t, true)
	if cc.RemotePublicKey() != kp.Public || !cc.FoundByKey() || !slices.Contains(cc.Topics(), pt) {
		t.Fatalf("session key %s, topics %v, found by key %v", cc.RemotePublicKey().Short(), cc.Topics(), cc.FoundByKey())
	}
	sc := server.waitConn(t, false)
	if !sc.FoundByKey() {
		t.Fatal("the server cannot tell that the client found it by key")
	}

	// the server restarts on a new port with the same key
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	client.waitDisconn(t, cc)
	server2 := newNode(t, framework.WithKeyPair(kp), framework.WithFindable(framework.FindableAlways))
	if server2.Port() == server.Port() {
		t.Fatalf("the new server took the old port %d", server.Port())
	}
	client.disc.Emit(server2.peer(pt)) // the DHT's next lookup finds it
	cc2 := swarmtest.Wait(client.rec, func(e *framework.ConnectionEvent) bool { return e.Conn.Client() }).Conn
	if cc2.RemotePublicKey() != kp.Public || cc2.Peer().Port != server2.Port() || !cc2.FoundByKey() {
		t.Fatalf("reconnected to %v key %s", cc2.Peer(), cc2.RemotePublicKey().Short())
	}
}

// An impostor listed under the peer topic (and accepting it) is refused in
// the handshake: the client never reports the session.
func TestJoinPeerRefusesAnImpostor(t *testing.T) {
	real := keyPair(t)
	pt := framework.PeerTopic(real.Public)
	impostor := newNode(t, framework.WithAcceptTopics(pt))
	client := newNode(t)
	if err := client.JoinPeer(t.Context(), real.Public); err != nil {
		t.Fatal(err)
	}
	client.disc.Emit(impostor.peer(pt))
	ev := swarmtest.Wait(client.rec, func(e *framework.DialFailedEvent) bool { return true })
	if !errors.Is(ev.Err, framework.ErrWrongKey) {
		t.Fatalf("dial failed with %v, want ErrWrongKey", ev.Err)
	}
	for _, e := range client.rec.Seen() { // a reported session would come before the failure
		if _, ok := e.(*framework.ConnectionEvent); ok {
			t.Fatal("the impostor's session was reported")
		}
	}
	if st := client.Stats(); st.Handshakes.Refused != 1 || st.Clients != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A session with the key made for a topic satisfies JoinPeer: it gains the
// peer topic, and dialling the peer's address again is a duplicate.
func TestJoinPeerSatisfiedByAnExistingSession(t *testing.T) {
	server := newNode(t)
	server.join(t, topicA, framework.Announce(true), framework.Lookup(false))
	client := newNode(t)
	client.join(t, topicA)
	client.disc.Emit(server.peer(topicA))
	cc := client.waitConn(t, true)
	pt := framework.PeerTopic(server.PublicKey())
	if err := client.JoinPeer(t.Context(), server.PublicKey()); err != nil {
		t.Fatal(err)
	}
	ev := swarmtest.Wait(client.rec, func(e *framework.TopicEvent) bool { return e.Conn == cc })
	if ev.Topic != pt || !cc.FoundByKey() {
		t.Fatalf("topic event %s, found by key %v", ev.Topic.Short(), cc.FoundByKey())
	}
	client.disc.Emit(server.peer(pt))
	awaitStats(t, client, "the second dial deduplicated", func(st framework.Stats) bool { return st.Handshakes.Deduplicated == 1 })
	if n := len(client.Connections()); n != 1 {
		t.Fatalf("%d connections, want the one kept", n)
	}
}

// LeavePeer stops the lookup; a session that then drops is not redialled.
func TestLeavePeerStops(t *testing.T) {
	kp := keyPair(t)
	server := newNode(t, framework.WithKeyPair(kp), framework.WithFindable(framework.FindableAlways))
	client := newNode(t)
	pt := framework.PeerTopic(kp.Public)
	if err := client.LeavePeer(t.Context(), kp.Public); !errors.Is(err, framework.ErrNotJoined) {
		t.Fatalf("LeavePeer before JoinPeer: %v, want ErrNotJoined", err)
	}
	if err := client.JoinPeer(t.Context(), kp.Public); err != nil {
		t.Fatal(err)
	}
	client.disc.Emit(server.peer(pt))
	cc := client.waitConn(t, true)
	if err := client.LeavePeer(t.Context(), kp.Public); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(client.disc.Leaves(), pt) || slices.Contains(client.Topics(), pt) {
		t.Fatal("LeavePeer did not leave the peer topic")
	}
	if client.disc.Emit(server.peer(pt)) {
		t.Fatal("the discovery still has the peer topic joined")
	}
	if len(client.Connections()) != 1 {
		t.Fatal("LeavePeer closed the open session")
	}
	cc.Close()
	client.waitDisconn(t, cc)
	ctx, cancel := context.WithTimeout(t.Context(), swarmtest.DefaultWait)
	defer cancel()
	if err := client.AwaitQuiet(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st := client.Stats(); st.Known != 0 {
		t.Fatalf("stats %+v: the left peer is still known", st)
	}
}

func TestJoinPeerErrors(t *testing.T) {
	n := newNode(t)
	if err := n.JoinPeer(t.Context(), secure.PublicKey{}); !errors.Is(err, secure.ErrBadKey) {
		t.Fatalf("zero key: %v", err)
	}
	if err := n.JoinPeer(t.Context(), n.PublicKey()); !errors.Is(err, framework.ErrSelf) {
		t.Fatalf("own key: %v", err)
	}
	p := newPlainNode(t)
	if err := p.JoinPeer(t.Context(), keyPair(t).Public); !errors.Is(err, framework.ErrPlaintext) {
		t.Fatalf("plaintext: %v", err)
	}
	if _, err := framework.New(framework.WithFindable(7)); !errors.Is(err, framework.ErrInvalidOption) {
		t.Fatalf("WithFindable(7): %v", err)
	}
}

// Peer.Key pins the key of a Connect: another key is refused in the
// handshake; plaintext swarms cannot pin.
func TestConnectWithAPeerKeyPinsIt(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	p := server.peer(topicA)
	p.Key = keyPair(t).Public
	if _, err := client.Connect(t.Context(), p); !errors.Is(err, framework.ErrWrongKey) {
		t.Fatalf("Connect to another key: %v, want ErrWrongKey", err)
	}
	p.Key = server.PublicKey()
	c, err := client.Connect(t.Context(), p)
	if err != nil || c.RemotePublicKey() != server.PublicKey() {
		t.Fatalf("Connect to the right key: %v", err)
	}
	plain := newPlainNode(t)
	if _, err := plain.Connect(t.Context(), p); !errors.Is(err, framework.ErrPlaintext) {
		t.Fatalf("plaintext Connect with a key: %v, want ErrPlaintext", err)
	}
}
