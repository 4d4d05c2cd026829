package conformance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// DiscoveryEnv is the shared environment of one discovery check: a network
// (a DHT testnet, a LAN segment, a shared list) in which every instance New
// returns can find, and be found by, the others. The factory makes a fresh
// environment per check and releases it with t.Cleanup; the suite closes
// every instance it gets from New, and starts one that is a
// [framework.Starter] as the swarm would (an environment that must start it
// elsewhere, say inside a network namespace, returns it started: Start
// again is a no-op).
type DiscoveryEnv interface {
	New(t *T) (framework.Discovery, error)
}

// DiscoveryFactory makes the environment of one check.
type DiscoveryFactory func(t *T) (DiscoveryEnv, error)

// Publisher is implemented by environments of discoveries that cannot
// announce at run time because their peers are configured out of band (the
// static list): the environment plays the operator who edits the list.
// The suite calls Publish when an instance starts announcing topic on port,
// and Unpublish when it leaves; instances that New returns afterwards see
// the change (those made before keep their configuration, as a static list
// loaded at start does). Discoveries that do announce leave it unimplemented.
//
// The suite publishes every announcement of a check before it creates the
// instances that should see it, so a static list also lists each
// announcing instance itself: "self is never reported" then checks that a
// node filters its own listed address out.
type Publisher interface {
	Publish(topic framework.Topic, port int)
	Unpublish(topic framework.Topic, port int)
}

// DiscoveryBounds are the time limits of the discovery checks. An
// environment may implement `Bounds() DiscoveryBounds` to change them (for
// a discovery with slow cycles); zero fields keep the defaults.
type DiscoveryBounds struct {
	// Join bounds Join, Leave and Close calls (default 2 s).
	Join time.Duration
	// Cycle bounds one discovery cycle: Flushed and Updated after Join, and
	// the next Updated after one (default 10 s).
	Cycle time.Duration
	// Found bounds how long a lookup joined after an announce flushed takes
	// to report the announced peer (default 10 s).
	Found time.Duration
	// Quiet is how long the suite watches for a callback that must not
	// come (after Leave, Close, or re-join) (default 1 s).
	Quiet time.Duration
}

// DefaultDiscoveryBounds are the bounds used when an environment sets none.
var DefaultDiscoveryBounds = DiscoveryBounds{Join: 2 * time.Second, Cycle: 10 * time.Second, Found: 10 * time.Second, Quiet: time.Second}

// Names of the discovery checks.
const (
	CheckDiscoveryName       = "discovery_name_is_short_and_stable"
	CheckJoinPrompt          = "join_returns_promptly"
	CheckAnnounceLookup      = "announced_peer_found_by_lookup"
	CheckTopicsIsolated      = "topics_are_isolated"
	CheckSelfNeverReported   = "self_is_never_reported"
	CheckRejoinReplaces      = "rejoin_replaces_previous_join"
	CheckFlushedOnce         = "flushed_once_per_join"
	CheckUpdatedEveryCycle   = "updated_after_every_cycle"
	CheckLeaveSilencesSink   = "leave_silences_sink"
	CheckLeaveUnknownNoop    = "leave_unknown_topic_is_noop"
	CheckLeaveStopsAnnounce  = "leave_stops_announcing"
	CheckCloseStopsCallbacks = "close_stops_callbacks"
	CheckJoinAfterClose      = "join_after_close_fails_with_err_closed"
)

// DiscoveryChecks returns the discovery checks, in the order they run.
func DiscoveryChecks(f DiscoveryFactory) []Check {
	c := func(name, rule string, fn func(*dcheck)) Check {
		return Check{Name: name, Rule: rule, Run: func(t *T) { fn(newDCheck(t, f)) }}
	}
	return []Check{
		c(CheckDiscoveryName, "Name returns a short stable lowercase name.", discoveryName),
		c(CheckJoinPrompt, "Join returns promptly (it does not wait for a network round trip) and starts announcing and looking up in the background; Leave and Close return promptly too.", joinPrompt),
		c(CheckAnnounceLookup, "A lookup join reports every peer it finds: peers that announced the topic are reported, with Peer.Topic set, within a bound.", announceLookup),
		c(CheckTopicsIsolated, "Peers are reported only to the sink of their topic, with Peer.Topic set to that topic: topics are isolated.", topicsIsolated),
		c(CheckSelfNeverReported, "A discovery never reports this swarm itself (announce→lookup of the same swarm reports nothing); semantics: a node never reports itself.", selfNeverReported),
		c(CheckRejoinReplaces, "Joining a topic that is already joined replaces the previous join: the old sink receives nothing more; the new one receives Flushed again, and the new options apply.", rejoinReplaces),
		c(CheckFlushedOnce, "Flushed is called once per Join, after the first complete cycle, for every join mode (lookup, announce, both).", flushedOnce),
		c(CheckUpdatedEveryCycle, "Updated is called after every completed cycle, including the first.", updatedEveryCycle),
		c(CheckLeaveSilencesSink, "After Leave returns the topic's sink receives nothing more.", leaveSilences),
		c(CheckLeaveUnknownNoop, "Leave of an unknown topic is a no-op.", leaveUnknown),
		c(CheckLeaveStopsAnnounce, "Leave stops announcing the topic (semantics: leave un-announces on LAN and DHT): a lookup after Leave does not find the peer.", leaveStopsAnnouncing),
		c(CheckCloseStopsCallbacks, "Close stops everything and no sink is called after Close returns.", closeStops),
		c(CheckJoinAfterClose, "Join after Close fails with framework.ErrClosed.", joinAfterClose),
	}
}

// RunDiscoverySuite runs every discovery check as a subtest of t.
func RunDiscoverySuite(t *testing.T, f DiscoveryFactory, opts ...Option) {
	t.Helper()
	RunChecks(t, DiscoveryChecks(f), opts...)
}

// dcheck is the state of one discovery check: its environment, bounds and
// the ports handed out so far.
type dcheck struct {
	*T
	env    DiscoveryEnv
	pub    Publisher
	b      DiscoveryBounds
	ports  map[int]bool
	closed map[framework.Discovery]bool
	mu     sync.Mutex
}

func newDCheck(t *T, f DiscoveryFactory) *dcheck {
	env, err := f(t)
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	if env == nil {
		t.Fatalf("factory returned a nil environment")
	}
	c := &dcheck{T: t, env: env, b: DefaultDiscoveryBounds, ports: map[int]bool{}, closed: map[framework.Discovery]bool{}}
	c.pub, _ = env.(Publisher)
	if bb, ok := env.(interface{ Bounds() DiscoveryBounds }); ok {
		b := bb.Bounds()
		if b.Join > 0 {
			c.b.Join = b.Join
		}
		if b.Cycle > 0 {
			c.b.Cycle = b.Cycle
		}
		if b.Found > 0 {
			c.b.Found = b.Found
		}
		if b.Quiet > 0 {
			c.b.Quiet = b.Quiet
		}
	}
	return c
}

// node makes a fresh instance, closed at the end of the check.
func (c *dcheck) node() framework.Discovery {
	d, err := c.env.New(c.T)
	if err != nil {
		c.Fatalf("environment New: %v", err)
	}
	if d == nil {
		c.Fatalf("environment New returned a nil discovery")
	}
	c.Cleanup(func() {
		c.mu.Lock()
		done := c.closed[d]
		c.mu.Unlock()
		if !done {
			d.Close()
		}
	})
	start(c.T, d)
	return d
}

// close closes d within the Join bound and remembers it.
func (c *dcheck) close(d framework.Discovery) {
	c.mu.Lock()
	c.closed[d] = true
	c.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- d.Close() }()
	select {
	case err := <-errc:
		if err != nil {
			c.Errorf("Close: %v", err)
		}
	case <-time.After(c.b.Join + 10*time.Second):
		c.Fatalf("Close did not return within %v", c.b.Join+10*time.Second)
	}
}

// port hands out a distinct port number for an announce. Nothing listens
// there: discoveries only carry the number.
func (c *dcheck) port() int {
	for {
		p := 20000 + mrand.IntN(40000)
		if !c.ports[p] {
			c.ports[p] = true
			return p
		}
	}
}

func (c *dcheck) publish(topic framework.Topic, port int) {
	if c.pub != nil {
		c.pub.Publish(topic, port)
	}
}

func (c *dcheck) unpublish(topic framework.Topic, port int) {
	if c.pub != nil {
		c.pub.Unpublish(topic, port)
	}
}

func newTopic() framework.Topic {
	var t framework.Topic
	_, _ = rand.Read(t[:])
	return t
}

// join joins within the Join bound and fails the check on error.
func (c *dcheck) join(d framework.Discovery, topic framework.Topic, announce, lookup bool, port int, s *recSink) {
	s.topic = topic
	ctx, cancel := context.WithTimeout(c.Context(), c.b.Join)
	defer cancel()
	start := time.Now()
	err := d.Join(ctx, framework.JoinRequest{Topic: topic, Announce: announce, Lookup: lookup, Port: port}, s)
	if err != nil {
		c.Fatalf("Join(%s announce=%v lookup=%v port=%d): %v", topic.Short(), announce, lookup, port, err)
	}
	if el := time.Since(start); el > c.b.Join {
		c.Errorf("Join took %v (limit %v)", el.Round(time.Millisecond), c.b.Join)
	}
}

func (c *dcheck) leave(d framework.Discovery, topic framework.Topic) {
	ctx, cancel := context.WithTimeout(c.Context(), c.b.Join)
	defer cancel()
	start := time.Now()
	if err := d.Leave(ctx, topic); err != nil {
		c.Fatalf("Leave(%s): %v", topic.Short(), err)
	}
	if el := time.Since(start); el > c.b.Join {
		c.Errorf("Leave took %v (limit %v)", el.Round(time.Millisecond), c.b.Join)
	}
}

// recSink records what a discovery reports for one join.
type recSink struct {
	topic framework.Topic // the joined topic

	mu      sync.Mutex
	peers   []framework.Peer
	flushed int
	updated int
	sealed  string   // why calls are no longer allowed ("" = allowed)
	late    []string // calls after sealing
	changed chan struct{}
}

func newSink() *recSink { return &recSink{changed: make(chan struct{})} }

func (s *recSink) record(what string, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealed != "" {
		s.late = append(s.late, what+" after "+s.sealed)
	}
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// Peer implements framework.DiscoverySink.
func (s *recSink) Peer(p framework.Peer) {
	s.record("Peer("+p.String()+")", func() { s.peers = append(s.peers, p) })
}

// Flushed implements framework.DiscoverySink.
func (s *recSink) Flushed() { s.record("Flushed", func() { s.flushed++ }) }

// Updated implements framework.DiscoverySink.
func (s *recSink) Updated() { s.record("Updated", func() { s.updated++ }) }

// seal makes every later call a violation.
func (s *recSink) seal(why string) {
	s.mu.Lock()
	s.sealed = why
	s.mu.Unlock()
}

func (s *recSink) counts() (flushed, updated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushed, s.updated
}

func (s *recSink) lateCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.late...)
}

// has reports whether a peer with port was reported.
func (s *recSink) has(port int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		if p.Port == port {
			return true
		}
	}
	return false
}

func (s *recSink) allPeers() []framework.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]framework.Peer(nil), s.peers...)
}

// waitFor waits up to d for cond (called with s.mu held) to hold, woken by
// every callback. It reports whether cond held.
func (s *recSink) waitFor(ctx context.Context, d time.Duration, cond func(*recSink) bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok := cond(s)
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			defer s.mu.Unlock()
			return cond(s)
		case <-ctx.Done():
			return false
		}
	}
}

func (s *recSink) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ports []string
	for _, p := range s.peers {
		ports = append(ports, fmt.Sprint(p.Port))
	}
	return fmt.Sprintf("flushed %d, updated %d, peers at ports [%s]", s.flushed, s.updated, strings.Join(ports, " "))
}

// awaitFlushed waits one cycle for the sink's first Flushed.
func (c *dcheck) awaitFlushed(s *recSink, who string) {
	if !s.waitFor(c.Context(), c.b.Cycle, func(s *recSink) bool { return s.flushed > 0 }) {
		c.Fatalf("%s: no Flushed within %v of Join (%s)", who, c.b.Cycle, s.describe())
	}
}

// awaitPorts waits for peers at every port.
func (c *dcheck) awaitPorts(s *recSink, who string, ports ...int) {
	ok := s.waitFor(c.Context(), c.b.Found, func(s *recSink) bool {
		for _, port := range ports {
			found := false
			for _, p := range s.peers {
				found = found || p.Port == port
			}
			if !found {
				return false
			}
		}
		return true
	})
	if !ok {
		c.Fatalf("%s: announced peers at ports %v not all found within %v (%s)", who, ports, c.b.Found, s.describe())
	}
}

// awaitUpdated waits until the sink has seen n Updated calls, each cycle
// bounded by Cycle.
func (c *dcheck) awaitUpdated(s *recSink, who string, n int) {
	for {
		_, u := s.counts()
		if u >= n {
			return
		}
		if !s.waitFor(c.Context(), c.b.Cycle, func(s *recSink) bool { return s.updated > u }) {
			c.Fatalf("%s: Updated %d times, then no Updated within %v (want %d cycles; %s)", who, u, c.b.Cycle, n, s.describe())
		}
	}
}

// quiet watches s for Quiet and fails on any call made after sealing.
func (c *dcheck) quiet(s *recSink, who string) { c.quietAll([]*recSink{s}, []string{who}) }

// quietAll watches several sinks over the same Quiet window.
func (c *dcheck) quietAll(sinks []*recSink, who []string) {
	var wg sync.WaitGroup
	for _, s := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.waitFor(c.Context(), c.b.Quiet, func(s *recSink) bool { return len(s.late) > 0 })
		}()
	}
	wg.Wait()
	for i, s := range sinks {
		if late := s.lateCalls(); len(late) > 0 {
			c.Errorf("%s: %d call(s) after it must be silent: %s", who[i], len(late), strings.Join(late[:min(len(late), 3)], ", "))
		}
	}
}

// checkTopics fails on any peer whose Topic is not the sink's topic.
func (c *dcheck) checkTopics(s *recSink, who string) {
	for _, p := range s.allPeers() {
		if p.Topic != s.topic {
			c.Errorf("%s: peer %s reported with Peer.Topic %s, want the joined topic %s", who, p.Addr(), p.Topic.Short(), s.topic.Short())
			return
		}
	}
}

// announcer makes an instance announcing topic on a new port and waits for
// its Flushed (the announce is complete).
func (c *dcheck) announcer(topic framework.Topic, who string) (framework.Discovery, int, *recSink) {
	port := c.port()
	c.publish(topic, port)
	d := c.node()
	s := newSink()
	c.join(d, topic, true, false, port, s)
	c.awaitFlushed(s, who)
	return d, port, s
}

func discoveryName(c *dcheck) {
	a, b := c.node(), c.node()
	first, second := a.Name(), a.Name()
	checkName(c.T, first)
	if first != second || first != b.Name() {
		c.Errorf("Name is not stable: %q, %q, %q", first, second, b.Name())
	}
}

func joinPrompt(c *dcheck) {
	d := c.node()
	topic := newTopic()
	port := c.port()
	c.publish(topic, port)
	s := newSink()
	c.join(d, topic, true, true, port, s) // fails if it exceeds the bound
	c.leave(d, topic)
	start := time.Now()
	c.close(d)
	if el := time.Since(start); el > c.b.Join {
		c.Errorf("Close took %v (limit %v)", el.Round(time.Millisecond), c.b.Join)
	}
}

func announceLookup(c *dcheck) {
	topic := newTopic()
	_, pa, _ := c.announcer(topic, "announcer A")
	_, pb, _ := c.announcer(topic, "announcer B")
	d := c.node()
	s := newSink()
	c.join(d, topic, false, true, 0, s)
	c.awaitPorts(s, "lookup", pa, pb)
	c.checkTopics(s, "lookup")
	for _, p := range s.allPeers() {
		if p.Host == "" {
			c.Errorf("peer %v reported with an empty Host", p)
		}
	}
}

func topicsIsolated(c *dcheck) {
	x, y, z := newTopic(), newTopic(), newTopic()
	_, px, _ := c.announcer(x, "announcer of X")
	_, py, _ := c.announcer(y, "announcer of Y")
	d := c.node()
	sx, sy, sz := newSink(), newSink(), newSink()
	c.join(d, x, false, true, 0, sx)
	c.join(d, y, false, true, 0, sy)
	c.join(d, z, false, true, 0, sz)
	c.awaitPorts(sx, "lookup of X", px)
	c.awaitPorts(sy, "lookup of Y", py)
	// one more full cycle of every topic, for late cross-talk
	_, ux := sx.counts()
	_, uy := sy.counts()
	_, uz := sz.counts()
	c.awaitUpdated(sx, "lookup of X", ux+1)
	c.awaitUpdated(sy, "lookup of Y", uy+1)
	c.awaitUpdated(sz, "lookup of Z (announced by nobody)", max(uz+1, 1))
	for _, tc := range []struct {
		who   string
		s     *recSink
		wrong []int
	}{{"lookup of X", sx, []int{py}}, {"lookup of Y", sy, []int{px}}, {"lookup of Z", sz, []int{px, py}}} {
		for _, p := range tc.wrong {
			if tc.s.has(p) {
				c.Errorf("%s reported the peer at port %d, which announced another topic", tc.who, p)
			}
		}
		c.checkTopics(tc.s, tc.who)
	}
}

func selfNeverReported(c *dcheck) {
	topic := newTopic()
	pa := c.port()
	c.publish(topic, pa) // before A exists: a static list includes A itself
	_, pb, _ := c.announcer(topic, "announcer B")
	a := c.node()
	s := newSink()
	c.join(a, topic, true, true, pa, s)
	c.awaitPorts(s, "A (announce+lookup)", pb)
	// a second cycle runs after A's own announce is in place
	c.awaitUpdated(s, "A (announce+lookup)", 2)
	if s.has(pa) {
		c.Errorf("A reported itself (a peer at its own announced port %d): %s", pa, s.describe())
	}
}

func rejoinReplaces(c *dcheck) {
	topic := newTopic()
	_, pb, _ := c.announcer(topic, "announcer B")
	a := c.node()
	pa := c.port()
	s1 := newSink()
	c.join(a, topic, false, true, pa, s1)
	c.awaitFlushed(s1, "first join")
	// re-join with new options: now also announce
	c.publish(topic, pa)
	s2 := newSink()
	c.join(a, topic, true, true, pa, s2)
	s1.seal("the topic was re-joined with another sink")
	c.awaitFlushed(s2, "second join")
	c.awaitPorts(s2, "second join", pb)
	// the new options apply: A now announces
	d := c.node()
	s3 := newSink()
	c.join(d, topic, false, true, 0, s3)
	c.awaitPorts(s3, "a lookup after the re-join (A re-joined with announce)", pa)
	c.quiet(s1, "the first join's sink")
}

func flushedOnce(c *dcheck) {
	d := c.node()
	type mode struct {
		who              string
		announce, lookup bool
	}
	modes := []mode{{"lookup-only join", false, true}, {"announce-only join", true, false}, {"announce+lookup join", true, true}}
	sinks := make([]*recSink, len(modes))
	for i, m := range modes {
		topic := newTopic()
		port := 0
		if m.announce {
			port = c.port()
			c.publish(topic, port)
		}
		sinks[i] = newSink()
		c.join(d, topic, m.announce, m.lookup, port, sinks[i])
	}
	for i, m := range modes {
		c.awaitFlushed(sinks[i], m.who)
	}
	for i, m := range modes {
		c.awaitUpdated(sinks[i], m.who, 3)
		if f, _ := sinks[i].counts(); f != 1 {
			c.Errorf("%s: Flushed %d times over three cycles, want exactly once", m.who, f)
		}
	}
}

func updatedEveryCycle(c *dcheck) {
	d := c.node()
	s := newSink()
	c.join(d, newTopic(), false, true, 0, s)
	c.awaitUpdated(s, "lookup join", 1) // the first cycle
	c.awaitUpdated(s, "lookup join", 2) // and the next one
}

func leaveSilences(c *dcheck) {
	topic := newTopic()
	_, pb, _ := c.announcer(topic, "announcer B")
	a := c.node()
	s := newSink()
	pa := c.port()
	c.publish(topic, pa)
	c.join(a, topic, true, true, pa, s)
	c.awaitPorts(s, "A", pb)
	c.leave(a, topic)
	c.unpublish(topic, pa)
	s.seal("Leave returned")
	c.quiet(s, "the left topic's sink")
	// the instance still works for other topics
	s2 := newSink()
	c.join(a, topic, false, true, 0, s2)
	c.awaitFlushed(s2, "join after Leave")
}

func leaveUnknown(c *dcheck) {
	d := c.node()
	ctx, cancel := context.WithTimeout(c.Context(), c.b.Join)
	defer cancel()
	if err := d.Leave(ctx, newTopic()); err != nil {
		c.Errorf("Leave of a topic never joined: %v, want nil", err)
	}
	// leaving twice is leaving an unknown topic too
	topic := newTopic()
	s := newSink()
	c.join(d, topic, false, true, 0, s)
	c.leave(d, topic)
	if err := d.Leave(ctx, topic); err != nil {
		c.Errorf("second Leave of a topic: %v, want nil", err)
	}
	s2 := newSink()
	c.join(d, newTopic(), false, true, 0, s2)
	c.awaitFlushed(s2, "join after Leave of unknown topics")
}

func leaveStopsAnnouncing(c *dcheck) {
	topic := newTopic()
	a, pa, _ := c.announcer(topic, "announcer A")
	_, pb, _ := c.announcer(topic, "announcer B")
	before := c.node()
	s := newSink()
	c.join(before, topic, false, true, 0, s)
	c.awaitPorts(s, "lookup before Leave", pa, pb)
	c.leave(a, topic)
	c.unpublish(topic, pa)
	after := c.node()
	s2 := newSink()
	c.join(after, topic, false, true, 0, s2)
	c.awaitPorts(s2, "lookup after Leave (B still announces)", pb)
	c.awaitUpdated(s2, "lookup after Leave", 1)
	if s2.has(pa) {
		c.Errorf("a lookup started after A left still found A (port %d): Leave did not un-announce", pa)
	}
}

func closeStops(c *dcheck) {
	topic := newTopic()
	_, pb, _ := c.announcer(topic, "announcer B")
	a := c.node()
	pa := c.port()
	c.publish(topic, pa)
	s := newSink()
	c.join(a, topic, true, true, pa, s)
	s2 := newSink()
	c.join(a, newTopic(), false, true, 0, s2)
	c.awaitPorts(s, "A", pb)
	start := time.Now()
	c.close(a)
	if el := time.Since(start); el > c.b.Join {
		c.Errorf("Close took %v (limit %v)", el.Round(time.Millisecond), c.b.Join)
	}
	s.seal("Close returned")
	s2.seal("Close returned")
	c.quietAll([]*recSink{s, s2}, []string{"a sink of the closed discovery", "another sink of the closed discovery"})
}

func joinAfterClose(c *dcheck) {
	d := c.node()
	c.close(d)
	s := newSink()
	s.seal("Close returned (Join after Close must fail)")
	ctx, cancel := context.WithTimeout(c.Context(), c.b.Join)
	defer cancel()
	port := c.port()
	err := d.Join(ctx, framework.JoinRequest{Topic: newTopic(), Announce: true, Lookup: true, Port: port}, s)
	if !errors.Is(err, framework.ErrClosed) {
		c.Errorf("Join after Close: %v; want an error wrapping framework.ErrClosed", err)
	}
	c.quiet(s, "the sink given to Join after Close")
}
