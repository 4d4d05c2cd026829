package dht_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// hostile is a set of lying KRPC nodes on loopback, written for the
// purpose: every get_peers is answered with Values fresh random peers (in
// 127.2.0.0/16, which the tests never dial) and Nodes entries pointing at
// the other hostile sockets, with ids ever closer to the target, so that a
// lookup follows them. It serves at most Budget replies, then falls silent.
type hostile struct {
	conns  []*net.UDPConn
	addrs  []netip.AddrPort
	values int
	nodes  int
	budget int64
	// stopAfterAnnounce: each socket stops serving once it answered an
	// announce_peer, so that the test can use it.
	stopAfterAnnounce bool

	closer    atomic.Uint32 // grows: every new id is closer to the target
	replies   atomic.Int64  // get_peers answered
	queries   atomic.Int64  // get_peers received
	announced chan netip.AddrPort
	queried   sync.Map // netip.AddrPort (hostile socket) -> struct{}
	wg        sync.WaitGroup
}

// startHostile opens ports sockets on each of ips.
func startHostile(t testing.TB, ips []string, ports, values, nodes int, budget int64) *hostile {
	return startHostileOpts(t, ips, ports, values, nodes, budget, false)
}

func startHostileOpts(t testing.TB, ips []string, ports, values, nodes int, budget int64, stopAfterAnnounce bool) *hostile {
	t.Helper()
	h := &hostile{values: values, nodes: nodes, budget: budget, announced: make(chan netip.AddrPort, 64), stopAfterAnnounce: stopAfterAnnounce}
	for _, ip := range ips {
		for range ports {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
			if err != nil {
				h.close()
				t.Fatal(err)
			}
			_ = c.SetWriteBuffer(4 << 20)
			h.conns = append(h.conns, c)
			h.addrs = append(h.addrs, c.LocalAddr().(*net.UDPAddr).AddrPort())
		}
	}
	for i, c := range h.conns {
		h.wg.Add(1)
		go h.serve(c, h.addrs[i], uint64(i))
	}
	t.Cleanup(h.close)
	return h
}

func (h *hostile) close() {
	for _, c := range h.conns {
		c.Close()
	}
	h.wg.Wait()
}

// near returns an id sharing the first 16 bytes of target.
func near(target krpc.ID, rng *rand.Rand) krpc.ID {
	id := target
	binary.BigEndian.PutUint32(id[16:], rng.Uint32())
	return id
}

// closerID returns an id closer to target than every id returned before.
func (h *hostile) closerID(target krpc.ID) krpc.ID {
	id := target
	binary.BigEndian.PutUint32(id[16:], binary.BigEndian.Uint32(id[16:])^(1<<31-h.closer.Add(1)))
	return id
}

func (h *hostile) serve(c *net.UDPConn, self netip.AddrPort, seed uint64) {
	defer h.wg.Done()
	rng := rand.New(rand.NewPCG(seed, 99))
	buf := make([]byte, 4096)
	tok := "hostile-token"
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var m krpc.Msg
		if bencode.Unmarshal(buf[:n], &m) != nil || m.Y != "q" || m.A == nil {
			continue
		}
		r := krpc.Return{ID: h.closerID(m.A.InfoHash)}
		switch m.Q {
		case "ping":
			r.ID[0] ^= 0x80
		case "find_node":
			r.ID = h.closerID(m.A.Target)
		case "announce_peer":
			select {
			case h.announced <- from:
			default:
			}
		case "get_peers":
			h.queries.Add(1)
			h.queried.Store(self, struct{}{})
			if h.replies.Add(1) > h.budget {
				continue // out of budget: silent from now on
			}
			r.Token = &tok
			r.Values = make([]krpc.NodeAddr, h.values)
			for i := range r.Values {
				r.Values[i] = krpc.NodeAddr{IP: net.IPv4(127, 2, byte(rng.UintN(256)), byte(1+rng.UintN(254))).To4(), Port: 1024 + int(rng.UintN(60000))}
			}
			for range h.nodes {
				a := h.addrs[rng.IntN(len(h.addrs))]
				r.Nodes = append(r.Nodes, krpc.NodeInfo{ID: h.closerID(m.A.InfoHash), Addr: krpc.NodeAddr{IP: a.Addr().AsSlice(), Port: int(a.Port())}})
			}
		default:
			continue
		}
		b, err := bencode.Marshal(krpc.Msg{T: m.T, Y: "r", R: &r})
		if err == nil {
			_, _ = c.WriteToUDPAddrPort(b, from)
		}
		if m.Q == "announce_peer" && h.stopAfterAnnounce {
			return
		}
	}
}

// ipsFrom returns n addresses base.1 … base.n.
func ipsFrom(base string, n int) []string {
	var ret []string
	for i := range n {
		ret = append(ret, fmt.Sprintf("%s.%d", base, 1+i))
	}
	return ret
}

// isHostileValue reports whether p is one of the hostile nodes' values.
func isHostileValue(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && netip.MustParsePrefix("127.2.0.0/16").Contains(ip)
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestHostileNodePoisoningIsBounded: one hostile host (64 sockets on one
// IP) answers every get_peers with 7 500 values and 120 nodes of its own,
// ever closer to the target. A swarm looking up the topic for three rounds
// takes at most ValuesPerSourceIP of its values per round, queries at most
// NodePortsPerIP of its sockets per round, stays within a bounded heap,
// and still finds and connects to the legitimate peer announced on the
// testnet.
func TestHostileNodePoisoningIsBounded(t *testing.T) {
	tn := testnet(t)
	legit, _ := dhtSwarm(t, tn)
	tp := framework.TopicFromString(fmt.Sprintf("%s#%d", t.Name(), topicSeq.Add(1)))
	ctx := context.Background()
	if err := legit.Join(ctx, tp, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	if err := legit.Flushed(ctx, tp); err != nil {
		t.Fatal(err)
	}

	h := startHostile(t, []string{"127.0.3.1"}, 64, 7500, 120, 80)
	var hostileValues atomic.Int64
	p, err := dht.New(tn.Config(dht.Config{Ephemeral: dht.Bool(true), FastRelookups: []time.Duration{0, 0}}))
	if err != nil {
		t.Fatal(err)
	}
	sw, err := framework.New(framework.WithTransport(tcp.New()), framework.WithDiscovery(p),
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithValidatePeer(func(pe framework.Peer) bool {
			if isHostileValue(pe.Host) {
				hostileValues.Add(1)
				return false // never dialled: the addresses are invented
			}
			return true
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	node := p.Node()
	// Real nodes in the routing table, and the hostile host as the node
	// closest to the topic's infohash.
	for _, b := range tn.Bootstrap() {
		if err := node.Ping(ctx, netip.MustParseAddrPort(b)); err != nil {
			t.Fatal(err)
		}
	}
	ih := dht.Infohash(tp)
	rng := rand.New(rand.NewPCG(1, 1))
	if err := node.AddNode(dht.NodeInfo{Addr: h.addrs[0], ID: near(ih, rng)}); err != nil {
		t.Fatal(err)
	}

	events := sw.Subscribe()
	defer events.Close()
	before := heapAlloc()
	r0 := node.Stats().Rounds
	if err := sw.Join(ctx, tp); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(60 * time.Second)
	connected := false
	for updates := 0; updates < 3 || !connected; {
		select {
		case ev := <-events.C():
			switch e := ev.(type) {
			case *framework.UpdatedEvent:
				if e.Discovery == dht.Name {
					updates++
				}
			case *framework.ConnectionEvent:
				connected = true // only the legitimate peer is dialled
			}
		case <-deadline:
			t.Fatalf("within 60 s: connected %v, three rounds: not all", connected)
		}
	}
	rounds := int64(node.Stats().Rounds - r0)
	growth := int64(heapAlloc()) - int64(before)
	ls := node.LimitStats()
	t.Logf("rounds %d, hostile replies %d, values taken %d, heap growth %d KiB, limits %+v", rounds, h.replies.Load(), hostileValues.Load(), growth/1024, ls)

	if got, max := hostileValues.Load(), rounds*dht.DefaultValuesPerSourceIP; got > max {
		t.Errorf("%d hostile values reported in %d rounds, want ≤ %d", got, rounds, max)
	}
	queried := 0
	h.queried.Range(func(any, any) bool { queried++; return true })
	if max := int(rounds) * dht.DefaultNodePortsPerIP; queried > max {
		t.Errorf("%d hostile sockets queried in %d rounds, want ≤ %d", queried, rounds, max)
	}
	if ls.ValuesPerReply == 0 || ls.NodesPerReply == 0 || ls.NodePortsPerIP == 0 {
		t.Errorf("caps not engaged: %+v", ls)
	}
	if growth > 16<<20 {
		t.Errorf("heap grew by %d MiB", growth>>20)
	}
}

// TestHostileNodesOnManyIPsCannotProlongALookup: 40 hostile hosts (4
// sockets each) lead a lookup through their nodes, ever closer to the
// target, answering with 1 000 values each. The lookup sends at
// most LookupQueries queries, reports at most ValuesPerLookup values, at
// most ValuesPerSourceIP from one IP, and the heap stays bounded.
func TestHostileNodesOnManyIPsCannotProlongALookup(t *testing.T) {
	tn := testnet(t)
	h := startHostile(t, ipsFrom("127.0.4", 40), 4, 1000, 120, 200)
	d := newDisc(t, tn, dht.Config{Ephemeral: dht.Bool(true), FastRelookups: []time.Duration{}})
	tp := topic(t.Name())
	rng := rand.New(rand.NewPCG(2, 2))
	if err := d.AddNode(dht.NodeInfo{Addr: h.addrs[0], ID: near(dht.Infohash(tp), rng)}); err != nil {
		t.Fatal(err)
	}
	before := heapAlloc()
	q0 := d.Stats().Queries
	s := join(t, d, framework.JoinRequest{Topic: tp, Lookup: true})
	waitSignal(t, s.flushCh, 60*time.Second, "the lookup round")
	queries := d.Stats().Queries - q0
	growth := int64(heapAlloc()) - int64(before)
	s.mu.Lock()
	perIP := map[string]int{}
	distinct := map[string]bool{}
	for _, p := range s.peers {
		perIP[p.Referrer.Host]++
		distinct[p.Addr()] = true
	}
	total := len(s.peers)
	s.mu.Unlock()
	t.Logf("queries %d, hostile replies %d, values %d, heap growth %d KiB, limits %+v", queries, h.replies.Load(), total, growth/1024, d.LimitStats())
	if queries > dht.DefaultLookupQueries {
		t.Errorf("%d queries in one lookup, want ≤ %d", queries, dht.DefaultLookupQueries)
	}
	hq := 0
	h.queried.Range(func(any, any) bool { hq++; return true })
	if hq > dht.DefaultLookupQueries {
		t.Errorf("%d hostile nodes queried, want ≤ %d", hq, dht.DefaultLookupQueries)
	}
	if total > dht.DefaultValuesPerLookup || len(distinct) != total {
		t.Errorf("%d values (%d distinct), want ≤ %d, no duplicates", total, len(distinct), dht.DefaultValuesPerLookup)
	}
	for ip, n := range perIP {
		if n > dht.DefaultValuesPerSourceIP {
			t.Errorf("%d values from %s, want ≤ %d", n, ip, dht.DefaultValuesPerSourceIP)
		}
	}
	if d.LimitStats().LookupsCapped != 1 {
		t.Errorf("lookup not ended by LookupQueries: %+v", d.LimitStats())
	}
	if growth > 16<<20 {
		t.Errorf("heap grew by %d MiB", growth>>20)
	}
}

// udpAt opens a UDP socket on ip (a loopback address).
func udpAt(t testing.TB, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// drainProbes counts the hole-punch probes queued at c. The caller made
// sure that every probe that was sent is queued already (see sentinel); the
// short deadline only ends the read once the queue is empty (a deadline in
// the past would not even read what is queued).
func drainProbes(c *net.UDPConn) int {
	n := 0
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	for {
		m, _, err := c.ReadFrom(buf)
		if err != nil {
			return n
		}
		if string(buf[:m]) == string(dht.PunchProbe) {
			n++
		}
	}
}

// TestHolePunchTargetLegOnlyFromAnnouncedNodes: a swarm that announces a
// topic probes the address a hole-punch notice names only when the notice
// comes from a node it announced to, and then at most ProbeBurstPerIP
// times to one victim IP whatever the ports (the clock is fake, so no
// token comes back during the test).
func TestHolePunchTargetLegOnlyFromAnnouncedNodes(t *testing.T) {
	relay := startHostileOpts(t, []string{"127.0.0.5"}, 1, 0, 0, 100, true)
	clk := clockwork.NewFakeClock()
	b, _, bPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true), Bootstrap: []string{relay.addrs[0].String()}, Clock: clk})
	tp := topic(t.Name())
	ih := dht.Infohash(tp)
	join(t, b, framework.JoinRequest{Topic: tp, Announce: true, Port: bPort})
	var announcedFrom netip.AddrPort
	select {
	case announcedFrom = <-relay.announced:
	case <-time.After(20 * time.Second):
		t.Fatal("the swarm never announced to the relay")
	}
	if announcedFrom.Port() != uint16(bPort) {
		t.Fatalf("announce from %v, want port %d", announcedFrom, bPort)
	}
	victim := udpAt(t, "127.0.0.7")
	vport := victim.LocalAddr().(*net.UDPAddr).Port
	notice := func(port int) *krpc.MsgArgs {
		var id krpc.ID
		id[0] = 7
		return &krpc.MsgArgs{ID: id, InfoHash: ih, Token: string([]byte{127, 0, 0, 7, byte(port >> 8), byte(port)}), ImpliedPort: true}
	}
	bAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: bPort}
	// sentinel: a query answered by b (read-only: it answers only our own
	// methods) after it handled everything sent before
	sentinel := func(c *net.UDPConn) {
		var id krpc.ID
		id[0] = 8
		if ans := ask(t, c, bAddr, krpc.Msg{T: "se", Y: "q", Q: dht.HolePunchMethod, A: &krpc.MsgArgs{ID: id}}); ans.E == nil {
			t.Fatalf("malformed hole punch: %+v", ans)
		}
	}

	// Strangers, including another socket on the relay's IP, are refused.
	for _, ip := range []string{"127.0.0.6", "127.0.0.5"} {
		c := udpAt(t, ip)
		for i := range 10 {
			ans := ask(t, c, bAddr, krpc.Msg{T: "hp", Y: "q", Q: dht.HolePunchMethod, A: notice(vport + i%2)})
			if ans.E == nil {
				t.Fatalf("notice from stranger %v accepted: %+v", c.LocalAddr(), ans)
			}
		}
		sentinel(c)
	}
	if n := drainProbes(victim); n != 0 {
		t.Fatalf("victim got %d probes from strangers' notices", n)
	}
	ls := b.LimitStats()
	if ls.PunchNotAnnounced != 20 || ls.ProbesSent != 0 {
		t.Fatalf("limit stats %+v, want 20 refused and no probes", ls)
	}

	// The relay itself is heard, at most ProbeBurstPerIP times for one IP.
	accepted := 0
	for i := range 20 {
		ans := ask(t, relay.conns[0], bAddr, krpc.Msg{T: "hq", Y: "q", Q: dht.HolePunchMethod, A: notice(vport + i)})
		if ans.E == nil {
			accepted++
		}
	}
	sentinel(relay.conns[0])
	if accepted != dht.DefaultProbeBurstPerIP {
		t.Fatalf("%d notices towards one IP accepted, want %d", accepted, dht.DefaultProbeBurstPerIP)
	}
	// the victim's own port got the first probe of the first notice; the
	// others went to ports nobody listens on
	if n := drainProbes(victim); n != 1 {
		t.Fatalf("victim port got %d probes, want 1", n)
	}
	if ls := b.LimitStats(); ls.ProbesSent != uint64(dht.DefaultProbeBurstPerIP) || ls.ProbesLimited != uint64(20-dht.DefaultProbeBurstPerIP) {
		t.Fatalf("limit stats %+v", ls)
	}
}

// ask sends the query m from c to addr and returns the answer with m's
// transaction id, skipping anything else c receives (the node may query us
// back, probes may arrive).
func ask(t testing.TB, c *net.UDPConn, addr net.Addr, m krpc.Msg) krpc.Msg {
	t.Helper()
	b, err := bencode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(b, addr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 4096)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer to %s: %v", m.Q, err)
		}
		var out krpc.Msg
		if bencode.Unmarshal(buf[:n], &out) == nil && out.T == m.T && (out.Y == "r" || out.Y == "e") {
			return out
		}
	}
}

// eventually waits (at most d) until cond holds: for state changed by
// goroutines that signal nothing (anacrolix stores announces in a goroutine
// of its own).
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// announceToken gets an announce token for ih from node via c.
func announceToken(t testing.TB, c *net.UDPConn, node net.Addr, ih [20]byte) string {
	t.Helper()
	var id krpc.ID
	id[0] = 9
	ans := ask(t, c, node, krpc.Msg{T: "gp", Y: "q", Q: "get_peers", A: &krpc.MsgArgs{ID: id, InfoHash: ih}})
	if ans.R == nil || ans.R.Token == nil {
		t.Fatalf("no token: %+v", ans)
	}
	return *ans.R.Token
}

// TestHostileAnnounceFloodKeepsLegitimateRecord: one IP announcing 600
// ports of one infohash to a full node holds at most MaxPerIP of its 500
// slots; the legitimate record announced before survives and is returned.
func TestHostileAnnounceFloodKeepsLegitimateRecord(t *testing.T) {
	tn := testnet(t)
	node := newDisc(t, tn, dht.Config{Ephemeral: dht.Bool(false)})
	ih := dht.Infohash(topic(t.Name()))
	var id krpc.ID
	id[0] = 10

	legit := udpAt(t, "127.0.0.8")
	tok := announceToken(t, legit, node.Addr(), ih)
	port := 4242
	if ans := ask(t, legit, node.Addr(), krpc.Msg{T: "an", Y: "q", Q: "announce_peer", A: &krpc.MsgArgs{ID: id, InfoHash: ih, Port: &port, Token: tok}}); ans.Y != "r" {
		t.Fatalf("legitimate announce: %+v", ans)
	}
	legitAP := netip.MustParseAddrPort("127.0.0.8:4242")
	eventually(t, 10*time.Second, "legitimate record stored", func() bool { return node.PeerStore().Has(ih, legitAP) })

	flood := udpAt(t, "127.0.0.9")
	tok = announceToken(t, flood, node.Addr(), ih)
	pending := map[string]int{}
	for i := range 600 {
		pending[fmt.Sprintf("f%d", i)] = 10000 + i
	}
	buf := make([]byte, 2048)
	for try := 0; len(pending) > 0 && try < 5; try++ {
		for tid, p := range pending {
			b, err := bencode.Marshal(krpc.Msg{T: tid, Y: "q", Q: "announce_peer", A: &krpc.MsgArgs{ID: id, InfoHash: ih, Port: &p, Token: tok}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := flood.WriteTo(b, node.Addr()); err != nil {
				t.Fatal(err)
			}
			// read what has come back so far, so that no socket buffer fills
			flood.SetReadDeadline(time.Now().Add(time.Millisecond))
			for {
				n, _, err := flood.ReadFrom(buf)
				if err != nil {
					break
				}
				var m krpc.Msg
				if bencode.Unmarshal(buf[:n], &m) == nil && m.Y == "r" {
					delete(pending, m.T)
				}
			}
		}
		flood.SetReadDeadline(time.Now().Add(time.Second))
		for len(pending) > 0 {
			n, _, err := flood.ReadFrom(buf)
			if err != nil {
				break
			}
			var m krpc.Msg
			if bencode.Unmarshal(buf[:n], &m) == nil && m.Y == "r" {
				delete(pending, m.T)
			}
		}
	}
	flood.SetReadDeadline(time.Time{})
	if len(pending) > 0 {
		t.Fatalf("%d announces never answered", len(pending))
	}
	want := uint64(600 - dht.DefaultMaxPeersPerIP)
	eventually(t, 10*time.Second, "600 announces stored", func() bool { return node.LimitStats().StorePerIPEvicted == want })
	if !node.PeerStore().Has(ih, legitAP) {
		t.Fatal("the flood evicted the legitimate record")
	}
	ans := ask(t, legit, node.Addr(), krpc.Msg{T: "g2", Y: "q", Q: "get_peers", A: &krpc.MsgArgs{ID: id, InfoHash: ih}})
	if ans.R == nil {
		t.Fatalf("get_peers: %+v", ans)
	}
	found, fromFlood := false, 0
	for _, v := range ans.R.Values {
		switch ap := v.ToNodeAddrPort().AddrPort; {
		case ap == legitAP:
			found = true
		case ap.Addr() == netip.MustParseAddr("127.0.0.9"):
			fromFlood++
		}
	}
	if !found || fromFlood > dht.DefaultMaxPeersPerIP {
		t.Fatalf("get_peers returned the legitimate peer: %v, %d of the flooding IP's (want ≤ %d)", found, fromFlood, dht.DefaultMaxPeersPerIP)
	}
}

// BenchmarkHostilePoisoning: lookups of a topic whose neighbourhood is held
// by 64 hostile nodes on 16 IPs answering 7 500 values and 120 nodes each.
// Reports the heap after the run (MiB), values reported per second and per
// lookup, and hostile replies processed per second.
func BenchmarkHostilePoisoning(b *testing.B) {
	tn := testnet(b)
	h := startHostile(b, ipsFrom("127.0.5", 16), 4, 7500, 120, 1<<40)
	d := newDisc(b, tn, dht.Config{Ephemeral: dht.Bool(true), FastRelookups: []time.Duration{}})
	rng := rand.New(rand.NewPCG(3, 3))
	before := heapAlloc()
	r0 := h.replies.Load()
	var values int
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		tp := topic(b.Name())
		// an entry point near the topic (a full bucket refuses it: the
		// hostile nodes that answered earlier lookups are there already)
		_ = d.AddNode(dht.NodeInfo{Addr: h.addrs[rng.IntN(len(h.addrs))], ID: near(dht.Infohash(tp), rng)})
		s := join(b, d, framework.JoinRequest{Topic: tp, Lookup: true})
		waitSignal(b, s.flushCh, 60*time.Second, "lookup round")
		d.Leave(context.Background(), tp)
		n, _, _ := s.counts()
		values += n
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(heapAlloc())/(1<<20), "heap-MiB")
	b.ReportMetric(float64(int64(heapAlloc())-int64(before))/(1<<20), "heap-growth-MiB")
	b.ReportMetric(float64(values)/el, "values/s")
	b.ReportMetric(float64(values)/float64(b.N), "values/lookup")
	b.ReportMetric(float64(h.replies.Load()-r0)/el, "hostile-replies/s")
}
