package framework_test

import (
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// One dial at a time, held at the gate: later peers wait in the queue and
// leave it by priority.
func TestQueuePrioritiesLANBeforeRemote(t *testing.T) {
	n := newNode(t, framework.WithMaxClientSockets(1))
	n.join(t, topicA)
	n.tr.Hold()
	first := deadPeer(t, topicA)
	n.disc.Emit(first)
	if got := n.nextDial(t); got != first.Addr() {
		t.Fatalf("first dial %s", got)
	}
	remote := deadPeer(t, topicA)
	local := deadPeer(t, topicA)
	local.Local = true
	n.disc.Emit(remote, local)
	swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return e.Peer.Port == local.Port })
	n.tr.Release()
	if got := n.nextDial(t); got != local.Addr() {
		t.Fatalf("second dial %s, want the LAN peer %s", got, local.Addr())
	}
	if got := n.nextDial(t); got != remote.Addr() {
		t.Fatalf("third dial %s, want the remote peer %s", got, remote.Addr())
	}
}

// requeue [1s 5s 15s]: retries after 1 s, 5 s and 15 s, then unresponsive;
// forgotten after forget.unresponsive (7.5 s), then fresh again.
func TestRequeueScheduleAndForget(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA)
	p := deadPeer(t, topicA)
	n.disc.Emit(p)
	swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return true })
	n.nextDial(t)
	for i, step := range framework.DefaultRequeue() {
		n.advance(t, 1, step-time.Millisecond)
		n.noDial(t, 20*time.Millisecond)
		n.clk.Advance(time.Millisecond)
		if got := n.nextDial(t); got != p.Addr() {
			t.Fatalf("retry %d dialled %s", i+1, got)
		}
	}
	// exhausted: unresponsive, and discovery cannot re-add it until forgotten
	n.advance(t, 1, 0) // the forget timer is set
	n.disc.Emit(p)
	swarmtest.None[*framework.PeerEvent](n.rec, 30*time.Millisecond)
	n.noDial(t, 0)
	if st := n.Stats(); st.Unresponsive != 1 {
		t.Fatalf("stats %+v, want 1 unresponsive", st)
	}
	n.clk.Advance(framework.DefaultForgetUnresponsive)
	if err := n.waitForgotten(t); err != nil {
		t.Fatal(err)
	}
	n.disc.Emit(p)
	swarmtest.Wait(n.rec, func(e *framework.PeerEvent) bool { return e.Peer.Port == p.Port })
	if got := n.nextDial(t); got != p.Addr() {
		t.Fatalf("forgotten peer not dialled again: %s", got)
	}
}

func (n *node) waitForgotten(t *testing.T) error {
	t.Helper()
	deadline := time.Now().Add(swarmtest.DefaultWait)
	for n.Stats().Known != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("peer not forgotten: %+v", n.Stats())
		}
		time.Sleep(time.Millisecond) // polling a counter, bounded
	}
	return nil
}

func TestCustomRequeueSchedule(t *testing.T) {
	n := newNode(t, framework.WithRequeue(2*time.Second))
	n.join(t, topicA)
	p := deadPeer(t, topicA)
	n.disc.Emit(p)
	n.nextDial(t)
	n.advance(t, 1, 2*time.Second)
	n.nextDial(t)
	// schedule of one step exhausted after the second failure
	n.advance(t, 1, 0)
	if st := n.Stats(); st.Unresponsive != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A client connection that drops is requeued at priority 5 after requeue[0].
func TestDroppedClientConnectionIsRequeuedWithBackoff(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	client.join(t, topicA)
	client.disc.Emit(server.peer(topicA))
	client.nextDial(t)
	sc := server.waitConn(t, false)
	cc := client.waitConn(t, true)
	go readUntilEOF(cc)
	sc.Close()
	client.waitDisconn(t, cc)
	client.noDial(t, 20*time.Millisecond)
	client.advance(t, 1, time.Second)
	if got := client.nextDial(t); got != server.addr() {
		t.Fatalf("redial %s", got)
	}
	client.waitConn(t, true)
}

func TestBannedPeerIsNeverDialledAgain(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	client.join(t, topicA)
	client.disc.Emit(server.peer(topicA))
	cc := client.waitConn(t, true)
	client.nextDial(t)
	cc.Ban()
	ev := client.waitDisconn(t, cc)
	if ev.Err != framework.ErrBanned {
		t.Fatalf("disconnection reason %v", ev.Err)
	}
	if st := client.Stats(); st.Banned != 1 {
		t.Fatalf("stats %+v", st)
	}
	client.disc.Emit(server.peer(topicA))
	swarmtest.None[*framework.PeerEvent](client.rec, 30*time.Millisecond)
	client.clk.Advance(24 * time.Hour)
	client.noDial(t, 30*time.Millisecond)
}

func TestForgetBannedAllowsRediscovery(t *testing.T) {
	server := newNode(t)
	client := newNode(t, framework.WithForgetBanned(time.Minute))
	client.join(t, topicA)
	client.disc.Emit(server.peer(topicA))
	cc := client.waitConn(t, true)
	client.nextDial(t)
	cc.Ban()
	client.waitDisconn(t, cc)
	client.advance(t, 1, time.Minute)
	client.waitForgotten(t)
	client.disc.Emit(server.peer(topicA))
	client.nextDial(t)
	client.waitConn(t, true)
}

func TestBackoffAddsARequeueStep(t *testing.T) {
	server := newNode(t)
	client := newNode(t)
	client.join(t, topicA)
	client.disc.Emit(server.peer(topicA))
	cc := client.waitConn(t, true)
	client.nextDial(t)
	sc := server.waitConn(t, false)
	if err := sc.Backoff(); err != framework.ErrNotClient {
		t.Fatalf("backoff on a server connection: %v", err)
	}
	if err := cc.Backoff(); err != nil {
		t.Fatal(err)
	}
	go readUntilEOF(cc)
	sc.Close()
	client.waitDisconn(t, cc)
	// after a backoff the drop counts as the 2nd failure: requeue[1] = 5 s
	client.advance(t, 1, 4*time.Second)
	client.noDial(t, 30*time.Millisecond)
	client.clk.Advance(time.Second)
	client.nextDial(t)
}

func TestLeaveStopsDiallingThatTopic(t *testing.T) {
	n := newNode(t)
	n.join(t, topicA)
	n.join(t, topicB)
	pa, pb := deadPeer(t, topicA), deadPeer(t, topicB)
	n.disc.Emit(pa, pb)
	n.nextDial(t)
	n.nextDial(t)
	n.advance(t, 2, 0) // both wait for their first retry
	if err := n.Leave(t.Context(), topicA); err != nil {
		t.Fatal(err)
	}
	n.clk.Advance(time.Second)
	if got := n.nextDial(t); got != pb.Addr() {
		t.Fatalf("dialled %s after leaving its topic", got)
	}
	n.noDial(t, 30*time.Millisecond)
}
