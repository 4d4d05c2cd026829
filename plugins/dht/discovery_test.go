package dht_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

func TestAnnounceLookup(t *testing.T) {
	tn := testnet(t)
	a := newDisc(t, tn, dht.Config{})
	b := newDisc(t, tn, dht.Config{})
	tp := topic(t.Name())
	sa := join(t, a, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: 40001})
	waitSignal(t, sa.flushCh, 10*time.Second, "announcer flushed")

	start := time.Now()
	sb := join(t, b, framework.JoinRequest{Topic: tp, Lookup: true, Port: 40002})
	p := waitPeer(t, sb, 40001, 10*time.Second)
	t.Logf("lookup found the announced peer in %v", time.Since(start))
	if p.Host != "127.0.0.1" || p.Topic != tp || p.Local {
		t.Fatalf("bad peer %+v", p)
	}
	if p.Referrer == nil || len(p.Referrer.ID) != 20 || p.Referrer.Port == 0 || p.Referrer.Host != "127.0.0.1" {
		t.Fatalf("bad referrer %+v", p.Referrer)
	}
	// The referrer is a testnet node, with its real id.
	found := false
	for _, n := range tn.Nodes {
		id := n.ID()
		if n.Addr().(*net.UDPAddr).Port == p.Referrer.Port && bytes.Equal(id[:], p.Referrer.ID) {
			found = true
		}
	}
	if !found {
		t.Fatalf("referrer %+v is not a testnet node", p.Referrer)
	}
	waitSignal(t, sb.flushCh, 10*time.Second, "lookup flushed")
	// The announcer never reports itself.
	for _, p := range sa.peers {
		if p.Port == 40001 {
			t.Fatalf("announcer reported itself: %v", p)
		}
	}
}

func TestSelfNotReported(t *testing.T) {
	tn := testnet(t)
	a := newDisc(t, tn, dht.Config{RoundMin: 20 * time.Millisecond, RoundMax: 40 * time.Millisecond, FastRelookups: []time.Duration{}})
	tp := topic(t.Name())
	sa := join(t, a, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: 40011})
	// Several rounds: from the second one on, the testnet stores our announce.
	for i := range 4 {
		waitSignal(t, sa.updateCh, 10*time.Second, "update")
		_ = i
	}
	if n, _, _ := sa.counts(); n != 0 {
		t.Fatalf("a lone announcer reported %d peers: %v", n, sa.peers)
	}
	// The record is there: another node sees it.
	b := newDisc(t, tn, dht.Config{})
	sb := join(t, b, framework.JoinRequest{Topic: tp, Lookup: true})
	waitPeer(t, sb, 40011, 10*time.Second)
}

func TestFlushedAndUpdated(t *testing.T) {
	tn := testnet(t)
	d := newDisc(t, tn, dht.Config{RoundMin: 10 * time.Millisecond, RoundMax: 30 * time.Millisecond, FastRelookups: []time.Duration{}})
	tp := topic(t.Name())
	s := join(t, d, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: 40021})
	waitSignal(t, s.flushCh, 10*time.Second, "flushed")
	for range 5 {
		waitSignal(t, s.updateCh, 10*time.Second, "updated")
	}
	_, flushes, updates := s.counts()
	if flushes != 1 || updates < 5 {
		t.Fatalf("flushes=%d updates=%d, want 1 and >= 5", flushes, updates)
	}
	if st := d.Stats(); st.Rounds < 5 || st.Queries == 0 {
		t.Fatalf("stats %+v", st)
	}
	// Joining again replaces the join: the old sink gets nothing more and
	// the new one is flushed again.
	s2 := join(t, d, framework.JoinRequest{Topic: tp, Lookup: true})
	s.seal()
	waitSignal(t, s2.flushCh, 10*time.Second, "flushed after rejoin")
	for range 3 {
		waitSignal(t, s2.updateCh, 10*time.Second, "updated after rejoin")
	}
	if n := s.lateCalls(); n != 0 {
		t.Fatalf("replaced sink got %d calls", n)
	}
}

func TestFastRelookupSchedule(t *testing.T) {
	tn := testnet(t)
	d := newDisc(t, tn, dht.Config{FastRelookups: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}})
	s := join(t, d, framework.JoinRequest{Topic: topic(t.Name()), Lookup: true})
	start := time.Now()
	for range 3 {
		waitSignal(t, s.updateCh, 10*time.Second, "updated")
	}
	// 3 rounds: the first at once, then +100 ms, then +200 ms; the next
	// regular round is 5-10 minutes away.
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("3 rounds after %v, want >= 300ms", el)
	}
	select {
	case <-s.updateCh:
		t.Fatal("a 4th round ran within the regular interval")
	case <-time.After(300 * time.Millisecond):
	}
}

func TestLeave(t *testing.T) {
	tn := testnet(t)
	fast := dht.Config{RoundMin: 10 * time.Millisecond, RoundMax: 20 * time.Millisecond, FastRelookups: []time.Duration{}}
	a := newDisc(t, tn, fast)
	b := newDisc(t, tn, fast)
	tp, other := topic(t.Name()), topic(t.Name()+"/other")
	sa := join(t, a, framework.JoinRequest{Topic: tp, Announce: true, Port: 40031})
	waitSignal(t, sa.flushCh, 10*time.Second, "announcer flushed")
	sb := join(t, b, framework.JoinRequest{Topic: tp, Lookup: true})
	sbo := join(t, b, framework.JoinRequest{Topic: other, Lookup: true})
	waitPeer(t, sb, 40031, 10*time.Second)

	if err := b.Leave(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
	sb.seal()
	if err := a.Leave(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
	sa.seal()
	roundsA := a.Stats().Rounds
	// The other topic keeps running; the left one is silent.
	for range 5 {
		waitSignal(t, sbo.updateCh, 10*time.Second, "other topic updated")
	}
	if n := sb.lateCalls(); n != 0 {
		t.Fatalf("left lookup sink got %d calls after Leave", n)
	}
	if n := sa.lateCalls(); n != 0 {
		t.Fatalf("left announce sink got %d calls after Leave", n)
	}
	if r := a.Stats().Rounds; r != roundsA {
		t.Fatalf("announcer ran %d rounds after Leave", r-roundsA)
	}
	// Leave of an unknown topic is a no-op.
	if err := a.Leave(t.Context(), topic("never joined")); err != nil {
		t.Fatal(err)
	}
}

func TestEphemeral(t *testing.T) {
	tn := testnet(t)
	eph := newDisc(t, tn, dht.Config{Ephemeral: dht.Bool(true)})
	full := newDisc(t, tn, dht.Config{Ephemeral: dht.Bool(false)})
	if !eph.ReadOnly() || full.ReadOnly() {
		t.Fatalf("ReadOnly: ephemeral %v, full %v", eph.ReadOnly(), full.ReadOnly())
	}
	tp := topic(t.Name())
	se := join(t, eph, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: 40041})
	sf := join(t, full, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: 40042})
	waitSignal(t, se.flushCh, 10*time.Second, "ephemeral flushed")
	waitSignal(t, sf.flushCh, 10*time.Second, "full flushed")
	// Both can announce and look up.
	waitPeer(t, se, 40042, 10*time.Second)
	waitPeer(t, sf, 40041, 10*time.Second)

	// Both query every testnet node directly: the full node's queries make
	// the nodes add it; the read-only node's ("ro": 1) do not.
	for _, node := range tn.Nodes {
		ap := node.Addr().(*net.UDPAddr).AddrPort()
		if err := eph.Ping(t.Context(), ap); err != nil {
			t.Fatalf("ephemeral ping: %v", err)
		}
		if err := full.Ping(t.Context(), ap); err != nil {
			t.Fatalf("full ping: %v", err)
		}
	}
	ephPort := eph.Addr().(*net.UDPAddr).Port
	fullPort := full.Addr().(*net.UDPAddr).Port
	inTables := func(port int) int {
		n := 0
		for _, node := range tn.Nodes {
			for _, e := range node.Nodes() {
				if int(e.Addr.Port()) == port {
					n++
				}
			}
		}
		return n
	}
	if n := inTables(ephPort); n != 0 {
		t.Fatalf("ephemeral node is in %d routing tables", n)
	}
	if n := inTables(fullPort); n == 0 {
		t.Fatal("full node is in no routing table")
	}
	// The ephemeral node answers no query; the full one does.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := tn.Nodes[0].Ping(ctx, eph.Addr().(*net.UDPAddr).AddrPort()); err == nil {
		t.Fatal("ephemeral node answered a ping")
	}
	if err := tn.Nodes[0].Ping(t.Context(), full.Addr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatalf("full node did not answer a ping: %v", err)
	}
	if eph.PeerStore().Len() != 0 {
		t.Fatal("ephemeral node stored announces")
	}
}

// TestAdaptiveSwitch: an adaptive node is read-only until AdaptiveAfter has
// passed on its clock, then a full node. The clock is a fake one, so the
// switch happens when the test says, however slow the machine.
func TestAdaptiveSwitch(t *testing.T) {
	tn := testnet(t)
	clk := clockwork.NewFakeClock()
	d := newDisc(t, tn, dht.Config{Clock: clk, FastRelookups: []time.Duration{}})
	if !d.ReadOnly() {
		t.Fatal("adaptive node starts as a full node")
	}
	tp := topic(t.Name())
	s := join(t, d, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: 40051})
	waitSignal(t, s.flushCh, 30*time.Second, "flushed")
	port := d.Addr().(*net.UDPAddr).Port
	pingAll := func() {
		for _, node := range tn.Nodes {
			if err := d.Ping(t.Context(), node.Addr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatalf("ping: %v", err)
			}
		}
	}
	pingAll()
	for _, node := range tn.Nodes {
		for _, e := range node.Nodes() {
			if int(e.Addr.Port()) == port {
				t.Fatal("read-only node is in a routing table")
			}
		}
	}
	// Advance past AdaptiveAfter until the switch is seen (the timer may
	// not be armed yet when the first Advance happens).
	for i := 0; ; i++ {
		clk.Advance(dht.DefaultAdaptiveAfter)
		select {
		case <-d.BecameFull():
		case <-time.After(100 * time.Millisecond):
			if i == 300 {
				t.Fatal("no adaptive switch after 300 advances of the clock")
			}
			continue
		}
		break
	}
	if d.ReadOnly() {
		t.Fatal("still read-only after the switch")
	}
	// Now the same queries make the nodes add us.
	pingAll()
	n := 0
	for _, node := range tn.Nodes {
		for _, e := range node.Nodes() {
			if int(e.Addr.Port()) == port && e.ID == d.ID() {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("after the switch the node is in no routing table")
	}
	if err := tn.Nodes[1].Ping(t.Context(), d.Addr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatalf("full node does not answer pings: %v", err)
	}
	// Rounds go on after the switch and find a new announcer.
	b := newDisc(t, tn, dht.Config{})
	sb := join(t, b, framework.JoinRequest{Topic: tp, Announce: true, Port: 40052})
	waitSignal(t, sb.flushCh, 30*time.Second, "second announcer flushed")
	for i := 0; ; i++ {
		clk.Advance(dht.DefaultRoundMax)
		select {
		case p := <-s.peerCh:
			if p.Port != 40052 {
				continue
			}
		case <-time.After(100 * time.Millisecond):
			if i == 300 {
				t.Fatal("the switched node's rounds did not find the new announcer")
			}
			continue
		}
		break
	}
}

// TestAdaptiveNodeNoWaitingGoroutine: the adaptive switch is a timer, not a
// goroutine waiting for AdaptiveAfter: an adaptive node runs as many
// goroutines as a read-only one (memory per swarm).
//
// Each node is built under its own pprof label, which the goroutines it
// starts inherit, so the count is of that node's goroutines only: the
// testnet's and other tests' goroutines, which come and go meanwhile, are
// not counted.
func TestAdaptiveNodeNoWaitingGoroutine(t *testing.T) {
	tn := testnet(t)
	clk := clockwork.NewFakeClock()
	start := func(label string, cfg dht.Config) {
		cfg.Clock, cfg.NoMaintenance = clk, true
		pprof.Do(context.Background(), pprof.Labels("node", label), func(context.Context) {
			newDisc(t, tn, cfg)
		})
	}
	start("read-only", dht.Config{Ephemeral: dht.Bool(true)})
	start("adaptive", dht.Config{})
	var ro, ad int
	for range 500 { // start-up goroutines may still be ending: await, bounded
		ro, ad = labelledGoroutines("read-only"), labelledGoroutines("adaptive")
		if ro > 0 && ad == ro {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("adaptive node: %d goroutines, read-only node: %d", ad, ro)
}

// labelledGoroutines counts the goroutines whose pprof label "node" is v.
func labelledGoroutines(v string) int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	want := fmt.Sprintf("# labels: {%q:%q}", "node", v)
	n, count := 0, 0
	for line := range strings.SplitSeq(b.String(), "\n") {
		if strings.Contains(line, " @ 0x") {
			count, _ = strconv.Atoi(strings.Fields(line)[0])
		}
		if strings.TrimSpace(line) == want {
			n += count
		}
	}
	return n
}

// TestJoinWaitsWithoutGoroutine: between rounds a joined topic holds no
// goroutine (8 KiB of stack each, per topic and swarm): a clock timer
// starts the next round, and so does a Refresh. The join is made under a
// pprof label, which its goroutines inherit, so only they are counted.
func TestJoinWaitsWithoutGoroutine(t *testing.T) {
	tn := testnet(t)
	clk := clockwork.NewFakeClock()
	d := newDisc(t, tn, dht.Config{Ephemeral: dht.Bool(true), NoMaintenance: true, Clock: clk,
		RoundMin: time.Hour, RoundMax: time.Hour, FastRelookups: []time.Duration{}})
	tp := topic(t.Name())
	var s *sink
	pprof.Do(context.Background(), pprof.Labels("node", "join-wait"), func(context.Context) {
		s = join(t, d, framework.JoinRequest{Topic: tp, Lookup: true})
	})
	waitSignal(t, s.updateCh, 30*time.Second, "first round")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a safety net only
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil { // the wait for the next round
		t.Fatal(err)
	}
	n := 0
	for range 500 { // the round's goroutines may still be ending: await, bounded
		if n = labelledGoroutines("join-wait"); n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n != 0 {
		t.Fatalf("%d goroutines of the join while it waits for its next round", n)
	}
	if err := d.Refresh(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, s.updateCh, 30*time.Second, "the refreshed round")
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	waitSignal(t, s.updateCh, 30*time.Second, "the round an hour later")
	if err := d.Leave(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
}
