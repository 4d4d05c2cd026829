//go:build linux

package mdns

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

func checkPeer(t *testing.T, p framework.Peer, h *netlab.Host, port int, topic framework.Topic) {
	t.Helper()
	if p.Host != h.IPv4().String() || p.Port != port || !p.Local || p.Topic != topic || p.Referrer != nil {
		t.Fatalf("peer = %+v, want %s:%d local topic %s", p, h.IPv4(), port, topic.Short())
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestAnnouncerFirst: A announces, then B joins and finds A through its
// first query.
func TestAnnouncerFirst(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	a, b := newIn(t, hs[0], Config{}), newIn(t, hs[1], Config{})
	topic := framework.TopicFromString("announcer first")
	sa := join(t, a, topic, true, false, 4001)
	sa.waitFlushed(t, 2*time.Second)
	start := time.Now()
	sb := join(t, b, topic, false, true, 0)
	p := sb.waitPeer(t, time.Second)
	t.Logf("found after %v", time.Since(start))
	checkPeer(t, p, hs[0], 4001, topic)
}

// TestLookerFirst: B looks up (one query only), then A joins and B finds A
// through A's announcement.
func TestLookerFirst(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	a, b := newIn(t, hs[0], Config{}), newIn(t, hs[1], onlyFirstQuery())
	topic := framework.TopicFromString("looker first")
	sb := join(t, b, topic, false, true, 0)
	sb.waitFlushed(t, 2*time.Second)
	start := time.Now()
	join(t, a, topic, true, false, 4002)
	p := sb.waitPeer(t, time.Second)
	t.Logf("found after %v", time.Since(start))
	checkPeer(t, p, hs[0], 4002, topic)
}

// TestMutualNoStormNoSelf: both announce and look up with fast cycles; each
// reports the other exactly once over many cycles (re-reports per cycle
// off), and never itself.
func TestMutualNoStormNoSelf(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	cfg := fast()
	cfg.NoRereport = true
	a, b := newIn(t, hs[0], cfg), newIn(t, hs[1], cfg)
	topic := framework.TopicFromString("mutual")
	sa := join(t, a, topic, true, true, 5001)
	sb := join(t, b, topic, true, true, 5002)
	checkPeer(t, sa.waitPeer(t, time.Second), hs[1], 5002, topic)
	checkPeer(t, sb.waitPeer(t, time.Second), hs[0], 5001, topic)
	sa.waitUpdates(t, 8, 5*time.Second) // past the burst, into periodic cycles
	sb.waitUpdates(t, 8, 5*time.Second)
	for name, s := range map[string]*sink{"a": sa, "b": sb} {
		peers, flushed, updated := s.snapshot()
		if len(peers) != 1 || flushed != 1 || updated < 8 {
			t.Errorf("%s: %d peers %v, %d flushed, %d updated; want 1 peer, 1 flush", name, len(peers), peers, flushed, updated)
		}
	}
}

// TestKnownPeersAreReportedOncePerCycle: with re-reports on, a peer comes
// again once per completed cycle — never more, whatever the record traffic.
func TestKnownPeersAreReportedOncePerCycle(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	a, b := newIn(t, hs[0], fast()), newIn(t, hs[1], fast())
	topic := framework.TopicFromString("rereport")
	sa := join(t, a, topic, true, true, 5011)
	join(t, b, topic, true, true, 5012)
	checkPeer(t, sa.waitPeer(t, time.Second), hs[1], 5012, topic)
	sa.waitUpdates(t, 6, 5*time.Second)
	peers, _, updated := sa.snapshot()
	if len(peers) < 2 || len(peers) > updated+1 {
		t.Fatalf("%d reports over %d cycles: want one per cycle (plus the first)", len(peers), updated)
	}
	for _, p := range peers {
		if p.Port != 5012 {
			t.Fatalf("reported %v", p)
		}
	}
}

// TestSelfNeverReported: one swarm, and a second swarm in the same
// namespace: the first never reports itself but finds the second.
func TestSelfNeverReported(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(1)
	a := newIn(t, hs[0], fast())
	topic := framework.TopicFromString("self")
	sa := join(t, a, topic, true, true, 6001)
	sa.waitUpdates(t, 6, 5*time.Second)
	if peers, _, _ := sa.snapshot(); len(peers) != 0 {
		t.Fatalf("reported itself: %v", peers)
	}
	a2 := newIn(t, hs[0], fast())
	join(t, a2, topic, true, false, 6002)
	p := sa.waitPeer(t, time.Second)
	checkPeer(t, p, hs[0], 6002, topic)
}

// TestHundredTopics: 100 announced topics on one host, looked up from
// another; each sink gets exactly its own peer.
func TestHundredTopics(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	a, b := newIn(t, hs[0], Config{NoRereport: true}), newIn(t, hs[1], Config{NoRereport: true})
	n := envInt("DWS_N", 100)
	sinks := make([]*sink, n)
	for i := range n {
		join(t, a, topicN("hundred", i), true, false, 7000+i)
	}
	start := time.Now()
	for i := range n {
		sinks[i] = join(t, b, topicN("hundred", i), false, true, 0)
	}
	for i, s := range sinks {
		p := s.waitPeer(t, 5*time.Second)
		checkPeer(t, p, hs[0], 7000+i, topicN("hundred", i))
	}
	var lat []time.Duration
	for _, s := range sinks {
		s.mu.Lock()
		lat = append(lat, s.first.Sub(start))
		s.mu.Unlock()
	}
	slices.Sort(lat)
	t.Logf("%d topics found: median %v, 90%% %v, max %v", n, lat[n/2], lat[n*9/10], lat[n-1])
	for i, s := range sinks {
		s.waitFlushed(t, 2*time.Second)
		if peers, _, _ := s.snapshot(); len(peers) != 1 {
			t.Errorf("topic %d: %d peers: %v", i, len(peers), peers)
		}
	}
}

// TestLeave: after Leave, A does not answer any more and its sink gets
// nothing; leaving an unknown topic is a no-op.
func TestLeave(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(3)
	a, b, c := newIn(t, hs[0], Config{NoRereport: true}), newIn(t, hs[1], Config{NoRereport: true}), newIn(t, hs[2], Config{NoRereport: true})
	topic := framework.TopicFromString("leave")
	ctx := context.Background()
	sa := join(t, a, topic, true, true, 8001)
	sb := join(t, b, topic, false, true, 0)
	checkPeer(t, sb.waitPeer(t, time.Second), hs[0], 8001, topic)
	// B's first two cycles (queries at 0 and 250 ms) are over: A's answers
	// sent before the Leave are handled (a packet in flight when B rejoins
	// would rightly report A again).
	sb.waitFlushed(t, 2*time.Second)
	sb.waitUpdates(t, 2, 3*time.Second)

	if err := a.Leave(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(ctx, topic); err != nil { // again: no-op
		t.Fatal(err)
	}
	if err := a.Leave(ctx, framework.TopicFromString("never joined")); err != nil {
		t.Fatal(err)
	}
	before, _, updBefore := sa.snapshot()
	sbBefore, _, _ := sb.snapshot()
	// A fresh lookup of the topic (a rejoin replaces B's join) gets no answer from A.
	sb2 := join(t, b, topic, false, true, 0)
	// C announces: A, which left, must not report it; B does.
	join(t, c, topic, true, false, 8003)
	checkPeer(t, sb2.waitPeer(t, time.Second), hs[2], 8003, topic)
	sb2.waitFlushed(t, 2*time.Second)
	sb2.waitUpdates(t, 2, 3*time.Second) // through the 1 s query too
	for _, p := range func() []framework.Peer { peers, _, _ := sb2.snapshot(); return peers }() {
		if p.Port != 8003 {
			t.Errorf("after leave, lookup found %v; want only C", p)
		}
	}
	if after, _, updAfter := sa.snapshot(); len(after) != len(before) || updAfter != updBefore {
		t.Errorf("left sink still called: peers %d→%d, updates %d→%d", len(before), len(after), updBefore, updAfter)
	}
	if peers, _, _ := sb.snapshot(); len(peers) != len(sbBefore) {
		t.Errorf("replaced sink called after rejoin: %v (had %d)", peers, len(sbBefore))
	}
}

// TestRejoinReplaces: joining again gives the new sink a Flushed and the
// peers again; the old sink hears nothing more.
func TestRejoinReplaces(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	a, b := newIn(t, hs[0], Config{NoRereport: true}), newIn(t, hs[1], Config{NoRereport: true})
	topic := framework.TopicFromString("rejoin")
	join(t, a, topic, true, false, 8101)
	s1 := join(t, b, topic, false, true, 0)
	s1.waitPeer(t, time.Second)
	s1.waitFlushed(t, time.Second)
	s2 := join(t, b, topic, true, true, 8102)
	before, _, _ := s1.snapshot()
	checkPeer(t, s2.waitPeer(t, time.Second), hs[0], 8101, topic)
	s2.waitFlushed(t, time.Second)
	// Port change on A is reported again.
	join(t, a, topic, true, false, 8111)
	p := s2.waitPeer(t, time.Second)
	for i := 0; p.Port == 8101 && i < 10; i++ { // skip per-cycle re-reports of the old port
		p = s2.waitPeer(t, time.Second)
	}
	checkPeer(t, p, hs[0], 8111, topic)
	if peers, flushed, _ := s1.snapshot(); len(peers) != len(before) || flushed != 1 {
		t.Errorf("old sink called after the rejoin: %v (had %d), flushed %d", peers, len(before), flushed)
	}
}

// TestLoopbackOnly: two swarms in a namespace that has only loopback.
func TestLoopbackOnly(t *testing.T) {
	lab := netlab.New(t)
	h := lab.AddHost("lo")
	if d, err := startIn(h, Config{}); err == nil {
		d.Close()
		t.Fatal("Start without IncludeLoopback in a loopback-only host succeeded")
	}
	a := newIn(t, h, Config{IncludeLoopback: true})
	b := newIn(t, h, Config{Interfaces: []string{"lo"}})
	topic := framework.TopicFromString("loopback")
	join(t, a, topic, true, false, 9001)
	sb := join(t, b, topic, false, true, 0)
	p := sb.waitPeer(t, time.Second)
	if p.Host != "127.0.0.1" || p.Port != 9001 {
		t.Fatalf("peer %v", p)
	}
}

func TestAPIErrors(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(1)
	h := hs[0]
	if _, err := startIn(h, Config{Interfaces: []string{"nope0"}}); !errors.Is(err, framework.ErrInvalidOption) {
		t.Errorf("unknown interface: %v", err)
	}
	if _, err := New(Config{QueryIntervalMin: 2 * time.Second, QueryIntervalMax: time.Second}); !errors.Is(err, framework.ErrInvalidOption) {
		t.Errorf("bad interval: %v", err)
	}
	if _, err := New(Config{QueryBurst: []time.Duration{time.Second, 0}}); !errors.Is(err, framework.ErrInvalidOption) {
		t.Errorf("bad burst: %v", err)
	}
	d := newIn(t, h, Config{Interfaces: []string{"eth0"}})
	if d.Name() != "mdns" {
		t.Errorf("Name = %q", d.Name())
	}
	ctx := context.Background()
	topic := framework.TopicFromString("api")
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic}, newSink()); !errors.Is(err, framework.ErrInvalidJoin) {
		t.Errorf("no announce, no lookup: %v", err)
	}
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic, Announce: true}, newSink()); !errors.Is(err, framework.ErrInvalidOption) {
		t.Errorf("announce without port: %v", err)
	}
	join(t, d, topic, true, true, 1234)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic, Lookup: true}, newSink()); !errors.Is(err, framework.ErrClosed) {
		t.Errorf("Join after Close: %v", err)
	}
	if err := d.Leave(ctx, topic); err != nil {
		t.Errorf("Leave after Close: %v", err)
	}
}

// TestNewOpensNothingUntilStart: New only checks and builds (port 5353
// stays free, Join says Start is missing, Close releases it); the sockets
// open in Start, in the namespace of the thread that calls it.
func TestNewOpensNothingUntilStart(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(1)
	h := hs[0]
	portFree := func() bool {
		free := false
		h.MustDo(func() error {
			c, err := net.ListenPacket("udp4", "0.0.0.0:5353") // no SO_REUSEADDR: fails while mDNS holds the port
			if err == nil {
				free = true
				c.Close()
			}
			return nil
		})
		return free
	}
	ctx := context.Background()
	topic := framework.TopicFromString("not started")

	unstarted, err := New(Config{Interfaces: []string{"nope0"}}) // checked by Start, where the interfaces are
	if err != nil {
		t.Fatalf("New checked the interfaces of its own namespace: %v", err)
	}
	if err := unstarted.Close(); err != nil {
		t.Fatalf("Close of an unstarted discovery: %v", err)
	}
	if err := unstarted.Start(ctx); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}

	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !portFree() {
		t.Fatal("New opened port 5353")
	}
	err = d.Join(ctx, framework.JoinRequest{Topic: topic, Lookup: true}, newSink())
	if !errors.Is(err, framework.ErrInvalidOption) || !strings.Contains(err.Error(), "Join before Start") {
		t.Fatalf("Join before Start: %v, want a clear ErrInvalidOption", err)
	}
	if err := d.Leave(ctx, topic); err != nil {
		t.Fatalf("Leave before Start: %v", err)
	}
	if err := h.Do(func() error { return d.Start(ctx) }); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if portFree() {
		t.Fatal("port 5353 free in the host after Start")
	}
	if err := h.Do(func() error { return d.Start(ctx) }); err != nil {
		t.Fatalf("second Start: %v, want nil", err)
	}
	join(t, d, topic, true, true, 1234)
}
