package framework_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

var topicC = framework.TopicFromString("topic c")

func keyPair(t testing.TB) secure.KeyPair {
	t.Helper()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func awaitStats(t testing.TB, n *node, what string, cond func(framework.Stats) bool) framework.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	if err := n.AwaitStats(ctx, cond); err != nil {
		t.Fatalf("%s: %v (stats %+v)", what, err, n.Stats())
	}
	return n.Stats()
}

// Every swarm has a key (WithKeyPair, else generated); both ends of a
// session know each other's; in plaintext mode the remote key is zero.
func TestSessionsProveEachSidesKey(t *testing.T) {
	kp := keyPair(t)
	a := newNode(t, framework.WithKeyPair(kp))
	b := newNode(t)
	if a.PublicKey() != kp.Public || b.PublicKey().IsZero() || a.PublicKey() == b.PublicKey() {
		t.Fatalf("keys %s and %s", a.PublicKey(), b.PublicKey())
	}
	cc, err := a.Connect(t.Context(), b.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	sc := b.waitConn(t, false)
	if cc.RemotePublicKey() != b.PublicKey() || sc.RemotePublicKey() != a.PublicKey() {
		t.Fatal("a side does not know the other's key")
	}
	if got := sc.Topics(); len(got) != 1 || got[0] != topicA {
		t.Fatalf("inbound session topics %v, want the proven topicA", got)
	}
	if _, err := cc.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}

	p, q := newPlainNode(t), newPlainNode(t)
	pc, err := p.Connect(t.Context(), q.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	if !pc.RemotePublicKey().IsZero() || pc.Session() != nil {
		t.Fatal("plaintext connection has a remote key")
	}
}

// WithPlaintext: raw sockets, as in hyperswarm v2: a plain TCP client's
// bytes arrive as they were sent. By default the same client cannot talk
// to the swarm: its bytes are not a handshake.
func TestPlaintextIsRawSocketsAndTheDefaultIsNot(t *testing.T) {
	p := newPlainNode(t)
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("raw"))
	sc := p.waitConn(t, false)
	buf := make([]byte, 3)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "raw" {
		t.Fatalf("read %q, %v", buf, err)
	}

	n := newNode(t)
	c2, err := net.Dial("tcp", n.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write(bytes.Repeat([]byte("raw"), 20))
	c2.(*net.TCPConn).CloseWrite() // no more bytes: the handshake fails now, not at its timeout
	if _, err := io.ReadAll(c2); err != nil && !isReset(err) {
		t.Fatalf("read: %v", err)
	}
	st := awaitStats(t, n, "the handshake failed", func(st framework.Stats) bool { return st.Handshakes.Failed == 1 })
	if st.Servers != 0 {
		t.Fatalf("stats %+v: a raw socket became a connection", st)
	}
	swarmtest.None[*framework.ConnectionEvent](n.rec, 10*time.Millisecond)
}

// An inbound session must prove a topic the swarm announces or accepts
// (WithAcceptTopics); a topicless one only with WithAllowNoTopic.
func TestInboundSessionNeedsAnAcceptedTopic(t *testing.T) {
	b := newNode(t, framework.WithAllowNoTopic(false))
	a := newNode(t)
	if _, err := a.Connect(t.Context(), b.peer(topicC)); !errors.Is(err, secure.ErrTopic) {
		t.Fatalf("unannounced topic: %v, want ErrTopic", err)
	}
	if _, err := a.Connect(t.Context(), b.peer(framework.Topic{})); !errors.Is(err, secure.ErrTopic) {
		t.Fatalf("no topic: %v, want ErrTopic", err)
	}
	b.join(t, topicC, framework.Announce(true))
	if _, err := a.Connect(t.Context(), b.peer(topicC)); err != nil {
		t.Fatalf("announced topic: %v", err)
	}
	swarmtest.Wait(b.rec, func(e *framework.ConnectionEvent) bool { return true })
	if st := awaitStats(t, b, "handshakes done", func(st framework.Stats) bool { return st.Handshakes.InProgress == 0 }); st.Servers != 1 || st.Handshakes.Failed != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// The swarm watches every session: an idle connection whose peer closes
// fires its disconnection without the application reading, leaves
// Connections and frees its slot, and its peer is requeued.
func TestIdleSessionClosedByPeerIsNoticedAndRequeued(t *testing.T) {
	server := newNode(t)
	n := newNode(t)
	n.join(t, topicA)
	n.disc.Emit(server.peer(topicA))
	c := n.waitConn(t, true)
	sc := server.waitConn(t, false)
	sc.Close() // nobody reads c
	ev := n.waitDisconn(t, c)
	if ev.Reason != framework.ReasonClosedByPeer || ev.Err != nil {
		t.Fatalf("reason %s err %v, want closed_by_peer", ev.Reason, ev.Err)
	}
	if len(n.Connections()) != 0 || n.Stats().Clients != 0 {
		t.Fatalf("the closed connection stays: %+v", n.Stats())
	}
	n.advance(t, 1, time.Second) // the first requeue step
	if c2 := n.waitConn(t, true); c2 == c {
		t.Fatal("same conn")
	}
	c.Close() // releases the ended session; no second event
	swarmtest.None[*framework.DisconnectionEvent](n.rec, 10*time.Millisecond)
}

// Bytes the peer sent before it closed stay readable after the swarm
// noticed the close.
func TestSessionClosedByPeerKeepsItsLastBytes(t *testing.T) {
	server := newNode(t)
	n := newNode(t)
	c, err := n.Connect(t.Context(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	sc := server.waitConn(t, false)
	sc.Write([]byte("last"))
	sc.Close()
	n.waitDisconn(t, c)
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "last" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// Two sessions between the same swarms, dialled by both sides' queues one
// after the other: the open one stays on both sides, whichever key dialled
// it (a reported session is never replaced; the smaller key's rule only
// decides between sessions that race, TestCrossDialRace...).
func TestSessionsAreDeduplicatedByKeyTheOpenSessionStays(t *testing.T) {
	for _, smallerDialsFirst := range []bool{true, false} {
		k1, k2 := keyPair(t), keyPair(t)
		if bytes.Compare(k1.Public[:], k2.Public[:]) > 0 {
			k1, k2 = k2, k1
		}
		small, big := newNode(t, framework.WithKeyPair(k1)), newNode(t, framework.WithKeyPair(k2))
		first, second := small, big
		if !smallerDialsFirst {
			first, second = big, small
		}
		first.join(t, topicA)
		first.disc.Emit(second.peer(topicA))
		c1 := first.waitConn(t, true)
		s1 := second.waitConn(t, false)
		second.join(t, topicA)
		second.disc.Emit(first.peer(topicA))
		// the open session stays, whoever dialled it: the second is refused
		// in the handshake and neither side reports it
		awaitStats(t, second, "dedup", func(st framework.Stats) bool { return st.Handshakes.Deduplicated == 1 && st.Dialing == 0 })
		swarmtest.None[*framework.ConnectionEvent](first.rec, 20*time.Millisecond)
		swarmtest.None[*framework.ConnectionEvent](second.rec, 1*time.Millisecond)
		swarmtest.None[*framework.DisconnectionEvent](first.rec, 1*time.Millisecond)
		swarmtest.None[*framework.DisconnectionEvent](second.rec, 1*time.Millisecond)
		for _, n := range []*node{first, second} {
			cs := n.Connections()
			if len(cs) != 1 {
				t.Fatalf("%d connections, want 1", len(cs))
			}
			if want := n == first; cs[0].Client() != want {
				t.Fatalf("the kept session is not the first one")
			}
		}
		if pa, pb := pair(c1), pair(s1); pa[0] != pb[1] || pa[1] != pb[0] {
			t.Fatalf("sides kept different connections: %v vs %v", pa, pb)
		}
		small.Close()
		big.Close()
	}
}

// Swarm.Connect always makes a new session (the daemon forwards one
// stream per connection): it is not deduplicated on the dialling side.
func TestConnectMakesANewSessionEvenWithOneOpen(t *testing.T) {
	server := newNode(t)
	n := newNode(t)
	c1, err := n.Connect(t.Context(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := n.Connect(t.Context(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	if c1 == c2 || len(n.Connections()) != 2 {
		t.Fatal("Connect reused a session")
	}
	server.waitConn(t, false)
	server.waitConn(t, false)
}

// A second dial to a swarm we have a session with (another topic without
// multiplex, a Connect beside a queue dial) is refused in its handshake:
// the accepting side never sees it, and the dialler's kept session serves
// both topics.
func TestSessionsAreDeduplicatedByKeyAcrossTopics(t *testing.T) {
	server := newNode(t)
	n := newNode(t)
	n.join(t, topicA)
	n.join(t, topicB)
	n.disc.Emit(server.peer(topicA))
	c := n.waitConn(t, true)
	server.waitConn(t, false)
	n.disc.Emit(server.peer(topicB))
	ev := swarmtest.Wait(n.rec, func(e *framework.TopicEvent) bool { return true })
	if ev.Conn != c || ev.Topic != topicB {
		t.Fatalf("topic event %+v", ev)
	}
	st := awaitStats(t, n, "dedup", func(st framework.Stats) bool { return st.Handshakes.Deduplicated == 1 && st.Dialing == 0 })
	if st.Clients != 1 {
		t.Fatalf("stats %+v", st)
	}
	swarmtest.None[*framework.ConnectionEvent](server.rec, 20*time.Millisecond)
	if len(server.Connections()) != 1 {
		t.Fatal("the accepting side kept two sessions")
	}
	// the duplicate's peer is dialled again when the kept session ends
	server.Connections()[0].Close()
	n.waitDisconn(t, c)
	n.waitConn(t, true)
}

// WithFirewall runs in the handshake, on both sides, before anything is
// reported; refusals are counted.
func TestFirewallRefusesKeysInTheHandshake(t *testing.T) {
	var mu sync.Mutex
	var seen []framework.FirewallInfo
	a := newNode(t)
	b := newNode(t, framework.WithFirewall(func(k secure.PublicKey, info framework.FirewallInfo) bool {
		mu.Lock()
		seen = append(seen, info)
		mu.Unlock()
		return k != a.PublicKey()
	}))
	c, err := a.Connect(t.Context(), b.peer(topicA))
	wantRefused(t, a, c, err)
	if st := awaitStats(t, b, "the refusal", func(st framework.Stats) bool { return st.Handshakes.Refused == 1 }); st.Servers != 0 {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].Client || seen[0].Topic != topicA || seen[0].Remote == nil || seen[0].Transport != "tcp" {
		t.Fatalf("firewall info %+v", seen)
	}
	mu.Unlock()
	// outbound: b refuses to dial a
	if _, err := b.Connect(t.Context(), a.peer(topicA)); !errors.Is(err, framework.ErrFirewalled) {
		t.Fatalf("outbound refusal: %v, want ErrFirewalled", err)
	}
	mu.Lock()
	if len(seen) != 2 || !seen[1].Client || seen[1].Topic != topicA {
		t.Fatalf("firewall info %+v", seen)
	}
	mu.Unlock()
	swarmtest.None[*framework.ConnectionEvent](a.rec, 10*time.Millisecond)
	swarmtest.None[*framework.ConnectionEvent](b.rec, 10*time.Millisecond)
}

// Ban on an inbound connection bans the remote key: the same swarm
// reconnecting from a new port is refused in the handshake, and so is a
// dial to it.
func TestBanOnInboundBansTheKey(t *testing.T) {
	server := newNode(t)
	a := newNode(t)
	c, err := a.Connect(t.Context(), server.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	sc := server.waitConn(t, false)
	sc.Ban()
	if d := server.waitDisconn(t, sc); d.Reason != framework.ReasonBanned {
		t.Fatalf("reason %s", d.Reason)
	}
	a.waitDisconn(t, c)
	c, err = a.Connect(t.Context(), server.peer(topicA))
	wantRefused(t, a, c, err)
	if _, err := server.Connect(t.Context(), a.peer(topicA)); !errors.Is(err, framework.ErrBanned) {
		t.Fatalf("dial to a banned key: %v, want ErrBanned", err)
	}
	if st := awaitStats(t, server, "two refusals", func(st framework.Stats) bool { return st.Handshakes.Refused == 2 }); st.Servers+st.Clients != 0 {
		t.Fatalf("stats %+v", st)
	}
	// another swarm from the same address is welcome
	if _, err := newNode(t).Connect(t.Context(), server.peer(topicA)); err != nil {
		t.Fatal(err)
	}
}

type keyList struct {
	mu  sync.Mutex
	bad map[secure.PublicKey]bool
}

func (k *keyList) Name() string                                   { return "keys" }
func (k *keyList) Validate(context.Context, framework.Peer) error { return nil }
func (k *keyList) ValidateKey(_ context.Context, p secure.PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.bad[p] {
		return errors.New("listed")
	}
	return nil
}

// A validator that is a KeyValidator sees every remote key in the handshake.
func TestKeyValidatorRefusesSessions(t *testing.T) {
	a := newNode(t)
	kl := &keyList{bad: map[secure.PublicKey]bool{a.PublicKey(): true}}
	b := newNode(t, framework.WithValidators(kl))
	c, err := a.Connect(t.Context(), b.peer(topicA))
	wantRefused(t, a, c, err)
	awaitStats(t, b, "the refusal", func(st framework.Stats) bool { return st.Handshakes.Refused == 1 })
}

// wantRefused asserts that a dial the remote refused in the handshake ends
// with ErrRefused. The initiator's handshake takes one round trip, so
// Connect returns before the responder's verdict: the refusal then ends
// the session (semantics S6).
func wantRefused(t *testing.T, n *node, c *framework.Conn, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, secure.ErrRefused) {
			t.Fatalf("refused dial: %v, want ErrRefused", err)
		}
		return
	}
	if d := n.waitDisconn(t, c); !errors.Is(d.Err, secure.ErrRefused) {
		t.Fatalf("refused session ended with %v (reason %s), want ErrRefused", d.Err, d.Reason)
	}
}

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAtOnce reports whether the swarm closed c without a byte.
func closedAtOnce(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(swarmtest.DefaultWait))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || isReset(err)
}

// Inbound handshakes in progress hold no maxPeers slot, are bounded in
// number (per source IP: the excess is closed at once; in total: the
// oldest of the IP with the most pending makes room, unless the newcomer's
// IP has as many) and in time (the handshake timeout, on the swarm's
// clock).
func TestInboundHandshakesAreBoundedInNumberAndTime(t *testing.T) {
	n := newNode(t, framework.WithMaxPeers(2), framework.WithHandshakeLimits(framework.HandshakeLimits{Pending: 10, PendingPerIP: 8}))
	var first net.Conn
	for i := range 8 {
		c := dialFrom(t, "127.0.0.1", n.addr())
		if i == 0 {
			first = c
		}
		awaitStats(t, n, "one more handshake", func(st framework.Stats) bool { return st.Handshakes.InProgress == i+1 })
	}
	if !closedAtOnce(dialFrom(t, "127.0.0.1", n.addr())) {
		t.Fatal("a 9th handshake from one IP was not closed")
	}
	if e := swarmtest.Wait(n.rec, func(*framework.InboundRefusedEvent) bool { return true }); e.Limit != "handshakesPerIP" || !errors.Is(e.Err, framework.ErrLimit) {
		t.Fatalf("event %+v", e)
	}
	dialFrom(t, "127.0.0.2", n.addr())
	dialFrom(t, "127.0.0.2", n.addr())
	awaitStats(t, n, "10 handshakes", func(st framework.Stats) bool { return st.Handshakes.InProgress == 10 })
	// at the cap a newcomer from another IP takes the oldest slot of the
	// IP with the most (127.0.0.1: 8)
	dialFrom(t, "127.0.0.3", n.addr())
	if !closedAtOnce(first) {
		t.Fatal("the oldest handshake of the busiest IP was not evicted")
	}
	awaitStats(t, n, "evicted", func(st framework.Stats) bool { return st.Handshakes.Evicted == 1 && st.Handshakes.InProgress == 10 })
	// one from the busiest IP itself (7 now, the most) finds none with more
	if !closedAtOnce(dialFrom(t, "127.0.0.1", n.addr())) {
		t.Fatal("an 11th handshake was not closed")
	}
	if e := swarmtest.Wait(n.rec, func(*framework.InboundRefusedEvent) bool { return true }); e.Limit != "handshakes" {
		t.Fatalf("event %+v", e)
	}
	// 10 handshakes with maxPeers 2: they hold no slot
	if st := n.Stats(); st.Servers != 0 {
		t.Fatalf("stats %+v", st)
	}
	n.clk.Advance(framework.DefaultHandshakeTimeout)
	st := awaitStats(t, n, "timeouts", func(st framework.Stats) bool { return st.Handshakes.InProgress == 0 })
	if st.Handshakes.TimedOut != 10 || st.Handshakes.Overflow != 2 || st.Handshakes.Evicted != 1 || st.Handshakes.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := newNode(t).Connect(t.Context(), n.peer(topicA)); err != nil {
		t.Fatalf("legitimate peer after the timeouts: %v", err)
	}
}
