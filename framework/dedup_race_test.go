package framework_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// Both sides dial each other at once (S5): X dials Y, and that session
// waits in Y's Accept (a gate in Y's firewall) while Y's own dial to X
// runs to its end; then Y decides on X's. Whichever key dialled first,
// the session dialled by the smaller key is the one kept, and neither
// side reports a session the other refuses: the dialler learns the
// responder's verdict before it reports, so each side reports exactly one
// connection, the same one, and nothing is disconnected.
func TestCrossDialRaceReportsOnlyTheSessionBothSidesKeep(t *testing.T) {
	for _, smallDialsFirst := range []bool{false, true} {
		k1, k2 := keyPair(t), keyPair(t)
		if bytes.Compare(k1.Public[:], k2.Public[:]) > 0 {
			k1, k2 = k2, k1
		}
		entered := make(chan struct{}, 4)
		gate := make(chan struct{})
		gated := func(_ secure.PublicKey, info framework.FirewallInfo) bool {
			if !info.Client {
				entered <- struct{}{}
				<-gate
			}
			return true
		}
		open := func(_ secure.PublicKey, _ framework.FirewallInfo) bool { return true }
		fwSmall, fwBig := gated, open
		if smallDialsFirst {
			fwSmall, fwBig = open, gated
		}
		small := newNode(t, framework.WithKeyPair(k1), framework.WithFirewall(fwSmall))
		big := newNode(t, framework.WithKeyPair(k2), framework.WithFirewall(fwBig))
		x, y := big, small
		if smallDialsFirst {
			x, y = small, big
		}
		released := false
		release := func() {
			if !released {
				released = true
				close(gate)
			}
		}
		t.Cleanup(release)

		x.join(t, topicA)
		x.disc.Emit(y.peer(topicA))
		select {
		case <-entered:
		case <-time.After(swarmtest.DefaultWait):
			t.Fatal("X's dial never reached Y's Accept")
		}
		// Y dials X meanwhile and learns X's verdict
		y.join(t, topicA)
		y.disc.Emit(x.peer(topicA))
		awaitStats(t, y, "Y's dial decided", func(st framework.Stats) bool {
			return st.Dialing == 0 && st.Handshakes.Completed+st.Handshakes.Failed+st.Handshakes.Deduplicated >= 1
		})
		release()
		for _, n := range []*node{small, big} {
			awaitStats(t, n, "settled", func(st framework.Stats) bool {
				return st.Dialing == 0 && st.Handshakes.InProgress == 0 && st.Clients+st.Servers == 1
			})
		}
		es := swarmtest.Wait(small.rec, func(*framework.ConnectionEvent) bool { return true })
		eb := swarmtest.Wait(big.rec, func(*framework.ConnectionEvent) bool { return true })
		if !es.Conn.Client() || eb.Conn.Client() {
			t.Fatalf("smallDialsFirst %v: reported a session not dialled by the smaller key", smallDialsFirst)
		}
		for _, n := range []*node{small, big} {
			swarmtest.None[*framework.DisconnectionEvent](n.rec, 20*time.Millisecond)
			swarmtest.None[*framework.ConnectionEvent](n.rec, 1*time.Millisecond)
			if len(n.Connections()) != 1 {
				t.Fatalf("%d connections, want 1", len(n.Connections()))
			}
		}
		if pa, pb := pair(es.Conn), pair(eb.Conn); pa[0] != pb[1] || pa[1] != pb[0] {
			t.Fatalf("sides kept different connections: %v vs %v", pa, pb)
		}
		for _, n := range []*node{small, big} {
			if all, in := n.Claims(); all != 0 || in != 0 {
				t.Fatalf("%d claims (%d inbound) left after the race", all, in)
			}
		}
		small.Close()
		big.Close()
	}
}

// Swarm.Connect is exempt from deduplication on the dialling side only
// (S5): towards a swarm whose own dial to us is open, the responder
// refuses it in the handshake. Connect fails before it returns a
// connection, and neither side reports the session: both keep the one
// that was open.
func TestConnectTowardsAPeerWhoseDialIsOpenFailsOnBothSides(t *testing.T) {
	n, other := newNode(t), newNode(t)
	other.join(t, topicA)
	other.disc.Emit(n.peer(topicA))
	oc := other.waitConn(t, true)
	nc := n.waitConn(t, false)
	c, err := n.connectTo(t, other.peer(topicA))
	if err == nil || !errors.Is(err, secure.ErrRefused) {
		t.Fatalf("Connect towards a peer whose dial is open: %v, %v; want ErrRefused", c, err)
	}
	awaitStats(t, other, "refused", func(st framework.Stats) bool { return st.Handshakes.Deduplicated == 1 })
	for _, x := range []*node{n, other} {
		swarmtest.None[*framework.ConnectionEvent](x.rec, 20*time.Millisecond)
		swarmtest.None[*framework.DisconnectionEvent](x.rec, 1*time.Millisecond)
		if len(x.Connections()) != 1 {
			t.Fatalf("%d connections, want 1", len(x.Connections()))
		}
	}
	if pa, pb := pair(oc), pair(nc); pa[0] != pb[1] || pa[1] != pb[0] {
		t.Fatalf("sides kept different connections: %v vs %v", pa, pb)
	}
	for _, x := range []*node{n, other} {
		if all, in := x.Claims(); all != 0 || in != 0 {
			t.Fatalf("%d claims (%d inbound) left", all, in)
		}
	}
}

// A peer that presents our own key — a relay that reflects our dial back
// to us — is refused in the handshake (ErrSelf) on the dialling side,
// before either end reports anything, and the address is banned for the
// queue.
func TestSessionWithOurOwnKeyIsRefused(t *testing.T) {
	n := newNode(t)
	r := newRelay(t, n.addr(), nil, nil)
	if c, err := n.connectTo(t, r.peer(topicA)); !errors.Is(err, framework.ErrSelf) {
		t.Fatalf("Connect to ourselves through a relay: %v, %v; want ErrSelf", c, err)
	}
	awaitStats(t, n, "refused", func(st framework.Stats) bool {
		return st.Handshakes.Refused == 1 && st.Handshakes.InProgress == 0 && st.Dialing == 0
	})
	n.join(t, topicA)
	n.disc.Emit(r.peer(topicA))
	awaitStats(t, n, "banned", func(st framework.Stats) bool { return st.Banned == 1 && st.Handshakes.Refused == 2 })
	swarmtest.None[*framework.ConnectionEvent](n.rec, 20*time.Millisecond)
	if len(n.Connections()) != 0 {
		t.Fatal("a session with ourselves is open")
	}
}
