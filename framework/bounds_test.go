package framework_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

func TestIsGlobalAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"1.1.1.1": true, "8.8.8.8": true, "2606:4700::1111": true, "::ffff:1.1.1.1": true,
		"127.0.0.1": false, "127.9.9.9": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false,
		"192.168.1.1": false, "fd00::1": false, "169.254.1.1": false, "fe80::1%eth0": false,
		"100.64.0.1": false, "0.0.0.0": false, "0.1.2.3": false, "::": false, "224.0.0.251": false,
		"ff02::fb": false, "255.255.255.255": false, "192.0.2.1": false, "198.51.100.7": false,
		"203.0.113.9": false, "2001:db8::1": false, "240.0.0.1": false, "198.18.0.1": false,
		"::ffff:10.0.0.1": false, "fec0::1": false,
	} {
		if got := framework.IsGlobalAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsGlobalAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

// noDialValidator rejects every peer that passed the private-address rule
// and is not on loopback, so that a test sees the rule's verdict without
// dialling outside 127.0.0.0/8.
var errNotDialled = errors.New("passed the address rule; not dialled by this test")

func noDialValidator(p framework.Peer) error {
	if ip, err := netip.ParseAddr(p.Host); err == nil && ip.IsLoopback() {
		return nil
	}
	return errNotDialled
}

// rejection waits for the verdict on the peer at addr.
func rejection(t *testing.T, n *node, addr string) error {
	t.Helper()
	return swarmtest.Wait(n.rec, func(e *framework.PeerRejectedEvent) bool { return e.Peer.Addr() == addr }).Reason
}

// D5: a discovery that does not vouch for its network gets no non-global
// address dialled; a LAN peer may be private but never loopback; a peer
// marked PrivateNet may be anywhere; the operator can opt in.
func TestNonGlobalPeersAreNotDialledUnlessVouchedFor(t *testing.T) {
	n := newNode(t, framework.WithValidators(framework.ValidatorFunc(noDialValidator)))
	n.disc.PublicNet = true
	n.join(t, topicA)
	refused := []string{"127.0.0.1", "::1", "10.0.0.1", "192.168.1.5", "172.16.3.4", "fd00::5",
		"169.254.9.9", "fe80::1", "100.64.1.1", "0.0.0.0", "224.0.0.1", "ff02::1", "198.51.100.1", "peer.example"}
	for _, h := range refused {
		p := framework.Peer{Host: h, Port: 4001, Topic: topicA}
		n.disc.Emit(p)
		if err := rejection(t, n, p.Addr()); !errors.Is(err, framework.ErrPrivateAddress) {
			t.Errorf("%s: %v, want ErrPrivateAddress", h, err)
		}
	}
	// global addresses pass the rule (and are then refused by the test's validator)
	for _, h := range []string{"1.1.1.1", "2606:4700::1111"} {
		p := framework.Peer{Host: h, Port: 4001, Topic: topicA}
		n.disc.Emit(p)
		if err := rejection(t, n, p.Addr()); !errors.Is(err, errNotDialled) {
			t.Errorf("%s: %v, want it to pass the address rule", h, err)
		}
	}
	// LAN peers: private yes, loopback no
	lan := framework.Peer{Host: "192.168.1.7", Port: 4002, Local: true, Topic: topicA}
	n.disc.Emit(lan)
	if err := rejection(t, n, lan.Addr()); !errors.Is(err, errNotDialled) {
		t.Errorf("LAN peer on a private address: %v, want it to pass", err)
	}
	lanLoop := framework.Peer{Host: "127.0.0.1", Port: 7777, Local: true, Topic: topicA}
	n.disc.Emit(lanLoop)
	if err := rejection(t, n, lanLoop.Addr()); !errors.Is(err, framework.ErrPrivateAddress) {
		t.Errorf("LAN peer on loopback: %v, want ErrPrivateAddress", err)
	}
	if got := n.Stats().Bounds.RejectedPrivate; got != uint64(len(refused)+1) {
		t.Errorf("RejectedPrivate = %d, want %d", got, len(refused)+1)
	}
	if d := n.tr.Dials(); len(d) != 0 {
		t.Fatalf("dialled %v", d)
	}
	// vouched for: dialled
	vouched := deadPeer(t, topicA) // PrivateNet
	n.disc.Emit(vouched)
	if got := n.nextDial(t); got != vouched.Addr() {
		t.Fatalf("dial %s, want %s", got, vouched.Addr())
	}
}

func TestOperatorOptsInToPrivatePeers(t *testing.T) {
	for name, opt := range map[string]framework.Option{
		"allow":  framework.WithAllowPrivatePeers(true),
		"prefix": framework.WithPrivatePeerPrefixes(netip.MustParsePrefix("::ffff:127.0.0.0/104")),
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, opt)
			n.disc.PublicNet = true
			n.join(t, topicA)
			p := deadPeer(t, topicA)
			p.PrivateNet = false
			n.disc.Emit(p)
			if got := n.nextDial(t); got != p.Addr() {
				t.Fatalf("dial %s, want %s", got, p.Addr())
			}
		})
	}
	if _, err := framework.New(framework.WithPrivatePeerPrefixes(netip.Prefix{})); !errors.Is(err, framework.ErrInvalidOption) {
		t.Fatalf("invalid prefix: %v", err)
	}
}

// fakePeers returns n loopback peers of topic at distinct IPs 127.1.x.y,
// port 1, referred by ref (nil: no referrer).
func fakePeers(topic framework.Topic, from, n int, ref *framework.Referrer) []framework.Peer {
	out := make([]framework.Peer, n)
	for i := range out {
		k := from + i
		out[i] = framework.Peer{Host: fmt.Sprintf("127.1.%d.%d", k/250, k%250+1), Port: 1, Topic: topic, Referrer: ref}
	}
	return out
}

// settled waits until every reported peer went through the intake (the
// swarm never dials in these tests, so Flush returns once it did).
func settled(t *testing.T, n *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// D6: per (discovery, topic) and cycle, at most PeersPerCycle reports are
// taken, at most PeersPerReferrer of them from one referrer IP; Updated
// starts a new cycle.
func TestDiscoveryReportsAreCappedPerCycleAndReferrer(t *testing.T) {
	n := newNode(t, framework.WithMaxClientSockets(-1),
		framework.WithDiscoveryLimits(framework.DiscoveryLimits{PeersPerCycle: 10, PeersPerReferrer: 3}))
	n.join(t, topicA)
	refA := &framework.Referrer{Host: "127.0.0.66", Port: 6881, ID: make([]byte, 20)}
	refA2 := &framework.Referrer{Host: "127.0.0.66", Port: 6882, ID: make([]byte, 20)} // same IP, other node
	refB := &framework.Referrer{Host: "127.0.0.67", Port: 6881, ID: make([]byte, 20)}
	n.disc.Emit(fakePeers(topicA, 0, 3, refA)...)
	n.disc.Emit(fakePeers(topicA, 3, 3, refA2)...)
	n.disc.Emit(fakePeers(topicA, 6, 5, refB)...)
	n.disc.Emit(fakePeers(topicA, 11, 10, nil)...)
	settled(t, n)
	st := n.Stats()
	if st.Known != 10 || st.Bounds.DroppedReferrer != 5 || st.Bounds.DroppedCycle != 6 {
		t.Fatalf("known %d, dropped per referrer %d, per cycle %d; want 10, 5, 6", st.Known, st.Bounds.DroppedReferrer, st.Bounds.DroppedCycle)
	}
	n.disc.Update(topicA) // the next cycle has a new budget
	n.disc.Emit(fakePeers(topicA, 100, 3, refA)...)
	settled(t, n)
	if st := n.Stats(); st.Known != 13 {
		t.Fatalf("known %d after a new cycle, want 13", st.Known)
	}
}

// D7: never-connected peers are capped per topic and in total; a new one
// evicts the least useful (oldest here: all are fresh), never a connected
// peer.
func TestKnownPeerCapsEvictTheLeastUseful(t *testing.T) {
	srv := newNode(t)
	srv.join(t, topicA, framework.Announce(true))
	n := newNode(t, framework.WithMaxClientSockets(1), framework.WithConnectionHandler(func(c *framework.Conn) { readUntilEOF(c) }),
		framework.WithDiscoveryLimits(framework.DiscoveryLimits{KnownPerTopic: 4, KnownTotal: 6}))
	n.join(t, topicA)
	n.join(t, topicB)
	n.disc.Emit(srv.peer(topicA))
	n.waitConn(t, true) // the one client slot is taken: nothing else is dialled
	peers := fakePeers(topicA, 0, 5, nil)
	n.disc.Emit(peers[:4]...)
	settled(t, n)
	if st := n.Stats(); st.Bounds.NeverConnected != 4 || st.Known != 5 {
		t.Fatalf("never connected %d, known %d; want 4, 5", st.Bounds.NeverConnected, st.Known)
	}
	n.disc.Emit(peers[4]) // evicts peers[0], the oldest
	settled(t, n)
	if st := n.Stats(); st.Bounds.Evicted != 1 || st.Bounds.NeverConnected != 4 {
		t.Fatalf("evicted %d, never connected %d", st.Bounds.Evicted, st.Bounds.NeverConnected)
	}
	n.disc.Emit(peers[1]) // still known: ignored
	n.disc.Emit(peers[0]) // forgotten: new again (evicts peers[1])
	is := func(p framework.Peer) func(*framework.PeerEvent) bool {
		return func(e *framework.PeerEvent) bool { return e.Peer.Addr() == p.Addr() }
	}
	swarmtest.Wait(n.rec, is(peers[0]))
	swarmtest.Wait(n.rec, is(peers[0])) // reported anew
	again := 0
	for _, ev := range n.rec.Seen() {
		if e, ok := ev.(*framework.PeerEvent); ok && is(peers[1])(e) {
			again++
		}
	}
	if again != 1 {
		t.Fatalf("peer still known reported %d times, want once", again)
	}
	// the total cap: topic B's peers evict topic A's (the larger set)
	n.disc.Emit(fakePeers(topicB, 50, 4, nil)...)
	settled(t, n)
	st := n.Stats()
	if st.Bounds.NeverConnected != 6 || st.Bounds.Evicted != 4 || st.Clients != 1 {
		t.Fatalf("never connected %d, evicted %d, clients %d; want 6, 4, 1", st.Bounds.NeverConnected, st.Bounds.Evicted, st.Clients)
	}
}

// D8: at most PortsPerIP ports of one IP are known per topic.
func TestPortsPerIPAreCappedPerTopic(t *testing.T) {
	n := newNode(t, framework.WithMaxClientSockets(-1), framework.WithMultiplex(false))
	n.join(t, topicA)
	n.join(t, topicB)
	for _, topic := range []framework.Topic{topicA, topicB} {
		for port := 1000; port < 1010; port++ {
			n.disc.Emit(framework.Peer{Host: "127.0.0.9", Port: port, Topic: topic})
		}
	}
	n.disc.Emit(framework.Peer{Host: "127.0.0.10", Port: 1000, Topic: topicA})
	settled(t, n)
	if st := n.Stats(); st.Known != 2*framework.DefaultPortsPerIP+1 || st.Bounds.DroppedPorts != 2*(10-framework.DefaultPortsPerIP) {
		t.Fatalf("known %d, dropped %d", st.Known, st.Bounds.DroppedPorts)
	}
}

// onceNode is a node that never retries a failed dial and never forgets:
// the only timers on its fake clock are the dial limits' own.
func onceNode(t *testing.T, l framework.DialLimits, opts ...framework.Option) *node {
	t.Helper()
	return newNode(t, append([]framework.Option{framework.WithDialLimits(l), framework.WithRequeue(),
		framework.WithForgetUnresponsive(framework.Forever)}, opts...)...)
}

// dials waits for the next k dials and returns them.
func (n *node) dials(t *testing.T, k int) []string {
	t.Helper()
	out := make([]string, k)
	for i := range out {
		out[i] = n.nextDial(t)
	}
	return out
}

// held waits until the swarm holds a dial on its fake clock, and checks
// that exactly want dials started so far.
func (n *node) held(t *testing.T, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	if err := n.clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("no dial held: %v (dials %v)", err, n.tr.Dials())
	}
	if got := n.tr.Dials(); len(got) != want {
		t.Fatalf("%d dials started, want %d: %v", len(got), want, got)
	}
}

// L5: new dials to one IP follow its rate (burst, then 1/s), on the clock.
func TestDialsToOneIPFollowItsRate(t *testing.T) {
	n := onceNode(t, framework.DialLimits{Rate: -1, PortsPerIP: -1})
	n.join(t, topicA)
	for range 4 {
		n.disc.Emit(deadPeer(t, topicA))
	}
	n.dials(t, framework.DefaultDialBurstPerIP)
	n.held(t, 2)
	n.clk.Advance(time.Second)
	n.dials(t, 1)
	n.held(t, 3)
	n.clk.Advance(time.Second)
	n.dials(t, 1)
	// each held peer counts once; the last one reported may have found a
	// token without being held
	if st := n.Stats(); st.Bounds.HeldRate < 1 || st.Bounds.HeldRate > 2 {
		t.Fatalf("HeldRate %d, want 1 or 2", st.Bounds.HeldRate)
	}
}

// L6: at most PortsPerIP distinct ports of one IP are dialled in any
// PortWindow; Flush does not wait for the peers the window holds.
func TestDistinctPortsPerIPAreCappedPerWindow(t *testing.T) {
	n := onceNode(t, framework.DialLimits{Rate: -1, PerIPRate: -1}, framework.WithDiscoveryLimits(framework.DiscoveryLimits{PortsPerIP: -1}))
	n.join(t, topicA)
	for range 6 {
		n.disc.Emit(deadPeer(t, topicA))
	}
	n.dials(t, 4)
	n.held(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	if err := n.Flush(ctx); err != nil {
		t.Fatalf("Flush waits for peers held by the ports window: %v", err)
	}
	n.clk.Advance(framework.DefaultDialPortWindow - time.Millisecond)
	n.held(t, 4)
	n.clk.Advance(time.Millisecond)
	n.dials(t, 2)
	if st := n.Stats(); st.Bounds.HeldPorts != 2 {
		t.Fatalf("HeldPorts %d, want 2", st.Bounds.HeldPorts)
	}
}

// L7: the swarm's new dials follow the global rate (burst 10, then 5/s).
func TestNewDialsFollowTheGlobalRate(t *testing.T) {
	n := onceNode(t, framework.DialLimits{PerIPRate: -1, PortsPerIP: -1}, framework.WithDiscoveryLimits(framework.DiscoveryLimits{PortsPerIP: -1}))
	n.join(t, topicA)
	for range 20 {
		n.disc.Emit(deadPeer(t, topicA))
	}
	n.dials(t, framework.DefaultDialBurst)
	n.held(t, 10)
	n.clk.Advance(200 * time.Millisecond) // one token
	n.dials(t, 1)
	n.held(t, 11)
	n.clk.Advance(time.Second) // five
	n.dials(t, 5)
	n.held(t, 16)
}

func TestDialAndDiscoveryLimitsDefaults(t *testing.T) {
	d, l := framework.DefaultDialLimits(), framework.DefaultDiscoveryLimits()
	got := fmt.Sprintf("%+v %+v", d, l)
	for _, want := range []string{"Rate:5 Burst:10", "PerIPRate:1 PerIPBurst:2", "PortsPerIP:4 PortWindow:1m0s",
		"PeersPerCycle:1024", "PeersPerReferrer:64", "KnownPerTopic:256", "KnownTotal:4096", "Pending:4096"} {
		if !strings.Contains(got, want) {
			t.Errorf("defaults %s lack %s", got, want)
		}
	}
}
