package framework_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// idExchange is a connection handler that swaps ids with the peer and
// deduplicates, as an application would.
func idExchange(id string, dropped *sync.Map) framework.Option {
	return framework.WithConnectionHandler(func(c *framework.Conn) {
		if _, err := c.Write([]byte(id)); err != nil {
			return
		}
		remote := make([]byte, len(id))
		if _, err := io.ReadFull(c, remote); err != nil {
			return
		}
		if c.Deduplicate([]byte(id), remote) {
			dropped.Store(c, true)
			return
		}
		io.Copy(io.Discard, c)
	})
}

func pair(c net.Conn) [2]string { return [2]string{c.LocalAddr().String(), c.RemoteAddr().String()} }

func TestDeduplicateKeepsTheSameConnectionOnBothSidesDialledByTheSmallerID(t *testing.T) {
	for _, ids := range [][2]string{{"aaaa", "bbbb"}, {"bbbb", "aaaa"}} {
		var da, db sync.Map
		a := newPlainNode(t, idExchange(ids[0], &da))
		b := newPlainNode(t, idExchange(ids[1], &db))
		a.join(t, topicA, framework.Announce(true))
		b.join(t, topicA, framework.Announce(true))
		a.disc.Emit(b.peer(topicA))
		b.disc.Emit(a.peer(topicA))
		for _, n := range []*node{a, b} {
			ev := swarmtest.Wait(n.rec, func(e *framework.DisconnectionEvent) bool { return true })
			if ev.Err != framework.ErrDuplicate || ev.Reason != framework.ReasonDeduplicated {
				t.Fatalf("dropped with %v (%s), want ErrDuplicate (deduplicated)", ev.Err, ev.Reason)
			}
		}
		ca, cb := a.Connections(), b.Connections()
		if len(ca) != 1 || len(cb) != 1 {
			t.Fatalf("connections left: %d and %d, want 1 and 1", len(ca), len(cb))
		}
		pa, pb := pair(ca[0]), pair(cb[0])
		if pa[0] != pb[1] || pa[1] != pb[0] {
			t.Fatalf("sides kept different connections: %v vs %v", pa, pb)
		}
		// the surviving connection is the one dialled by the smaller id
		// (hyperswarm v2, lib/queue.js)
		winner := a
		if ids[1] < ids[0] {
			winner = b
		}
		if !winner.Connections()[0].Client() {
			t.Fatal("the connection dialled by the larger id survived")
		}
		// the dropped duplicate is not redialled while the survivor is open
		swarmtest.None[*framework.ConnectionEvent](a.rec, 30*time.Millisecond)
		if st := a.Stats(); st.Dialing != 0 || st.Queued != 0 {
			t.Fatalf("a stats %+v", st)
		}
	}
}

func TestDeduplicateDropsConnectionToSelf(t *testing.T) {
	var dropped sync.Map
	n := newPlainNode(t, idExchange("self", &dropped))
	n.join(t, topicA, framework.Announce(true))
	n.disc.Emit(n.peer(topicA))
	for range 2 {
		ev := swarmtest.Wait(n.rec, func(e *framework.DisconnectionEvent) bool { return true })
		if ev.Err != framework.ErrSelf && ev.Err != nil {
			t.Fatalf("self connection closed with %v", ev.Err)
		}
		if ev.Err == framework.ErrSelf && ev.Reason != framework.ReasonSelf {
			t.Fatalf("self connection closed for reason %s", ev.Reason)
		}
	}
	if st := n.Stats(); st.Banned != 1 || st.Clients+st.Servers != 0 {
		t.Fatalf("stats %+v: self not banned", st)
	}
	n.clk.Advance(time.Hour)
	n.nextDial(t)
	n.noDial(t, 30*time.Millisecond)
}

// Two connections dialled by the same side (two topics without multiplex,
// or a Connect beside a queue dial) deduplicated in opposite orders on the
// two sides: both sides still keep the same one — the dialler's first.
func TestDeduplicateSameDirectionPairKeepsTheSameConnectionWhateverTheOrder(t *testing.T) {
	for _, ids := range [][2]string{{"aaaa", "bbbb"}, {"bbbb", "aaaa"}} {
		a, b := newPlainNode(t), newPlainNode(t)
		c1, err := a.Connect(t.Context(), b.peer(topicA))
		if err != nil {
			t.Fatal(err)
		}
		c2, err := a.Connect(t.Context(), b.peer(topicB))
		if err != nil {
			t.Fatal(err)
		}
		s1, s2 := b.waitConn(t, false), b.waitConn(t, false)
		if pair(s1) != [2]string{c1.RemoteAddr().String(), c1.LocalAddr().String()} {
			s1, s2 = s2, s1
		}
		// a deduplicates c1 then c2; b the other way round
		if c1.Deduplicate([]byte(ids[0]), []byte(ids[1])) {
			t.Fatal("the dialler's first connection was dropped")
		}
		if !c2.Deduplicate([]byte(ids[0]), []byte(ids[1])) {
			t.Fatal("the dialler's second connection survived")
		}
		if s2.Deduplicate([]byte(ids[1]), []byte(ids[0])) || s1.Deduplicate([]byte(ids[1]), []byte(ids[0])) {
			t.Fatal("the accepting side dropped a connection itself")
		}
		// the dialler's drop reaches the acceptor as the end of s2
		go readUntilEOF(s2)
		b.waitDisconn(t, s2)
		if got := b.Connections(); len(got) != 1 || got[0] != s1 {
			t.Fatalf("acceptor kept %v, want only the dialler's first connection", got)
		}
		if got := a.Connections(); len(got) != 1 || got[0] != c1 {
			t.Fatalf("dialler kept %v, want only its first connection", got)
		}
		a.Close()
		b.Close()
	}
}
