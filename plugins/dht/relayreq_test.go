package dht_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// relayReqPair joins b as announcer and a as dialler of one topic and
// returns b's peer as a found it.
func relayReqPair(t *testing.T) (a, b *dht.Node, p framework.Peer, bPort int) {
	t.Helper()
	a, _, aPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	b, _, bPort = muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	tp := topic(t.Name())
	sb := join(t, b, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: bPort})
	waitSignal(t, sb.flushCh, 10*time.Second, "announce flushed")
	sa := join(t, a, framework.JoinRequest{Topic: tp, Lookup: true, Port: aPort})
	return a, b, waitPeer(t, sa, bPort, 10*time.Second), bPort
}

// TestRelayRequestReachesTheAnnouncerThroughTheReferrer: a dialler's relay
// request goes through the node that told it about the announcer, and the
// announcer's handler gets the topic's infohash.
func TestRelayRequestReachesTheAnnouncerThroughTheReferrer(t *testing.T) {
	a, b, p, _ := relayReqPair(t)
	got := make(chan [20]byte, 4)
	b.SetOnRelayRequest(func(ih [20]byte) { got <- ih })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.RequestRelay(ctx, p); err != nil {
		t.Fatal(err)
	}
	select {
	case ih := <-got:
		if ih != dht.Infohash(p.Topic) {
			t.Fatalf("handler got %x, want the topic's infohash", ih)
		}
	case <-ctx.Done():
		t.Fatal("the announcer's handler was not called")
	}
	if st := a.LimitStats(); st.RelayRequestsSent != 1 {
		t.Fatalf("dialler stats %+v", st)
	}
	if st := b.LimitStats(); st.RelayRequestsAccepted != 1 {
		t.Fatalf("announcer stats %+v", st)
	}
	// a second request to the same address within RelayRequestGap is not sent
	if err := a.RequestRelay(ctx, p); !errors.Is(err, dht.ErrRelayRequestSuppressed) {
		t.Fatalf("second request: err = %v, want ErrRelayRequestSuppressed", err)
	}
	if st := a.LimitStats(); st.RelayRequestsSent != 1 || st.RelayRequestsSuppressed != 1 {
		t.Fatalf("a second request went out within the gap: %+v", st)
	}
}

// TestRelayRequestRefused: an announcer without a relay client refuses;
// a referrer does not forward to an address that never announced to it;
// an announcer accepts the relayed leg only from a node it announced to.
func TestRelayRequestRefused(t *testing.T) {
	a, b, p, bPort := relayReqPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.RequestRelay(ctx, p); !errors.Is(err, dht.ErrHolePunch) {
		t.Fatalf("no handler: err = %v, want ErrHolePunch", err)
	}
	if st := b.LimitStats(); st.RelayRequestsNoRelay != 1 || st.RelayRequestsAccepted != 0 {
		t.Fatalf("announcer stats %+v", st)
	}
	b.SetOnRelayRequest(func([20]byte) { t.Error("handler called for a refused request") })
	other := p
	other.Port = 9
	other.Topic = topic(t.Name() + "/other") // not the gap of p's referrer and topic
	if err := a.RequestRelay(ctx, other); !errors.Is(err, dht.ErrHolePunch) {
		t.Fatalf("unknown peer: err = %v, want ErrHolePunch", err)
	}
	if err := a.RequestRelay(ctx, framework.Peer{Host: "127.0.0.1", Port: 1}); !errors.Is(err, dht.ErrHolePunch) {
		t.Fatalf("no referrer: %v", err)
	}
	// the relayed leg straight from a stranger (not a node b announced to)
	var id krpc.ID
	id[0] = 3
	ans := query(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: bPort}, krpc.Msg{T: "rr", Y: "q", Q: dht.RelayRequestMethod,
		A: &krpc.MsgArgs{ID: id, InfoHash: dht.Infohash(p.Topic), Token: "\x7f\x00\x00\x01\x10\x00", ImpliedPort: true}})
	if ans.E == nil || ans.E.Msg != "not announced to you" {
		t.Fatalf("stranger's relayed leg: %+v", ans)
	}
	if st := b.LimitStats(); st.RelayRequestsNotAnnounced != 1 {
		t.Fatalf("announcer stats %+v", st)
	}
	// malformed
	ans = query(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: bPort}, krpc.Msg{T: "rs", Y: "q", Q: dht.RelayRequestMethod,
		A: &krpc.MsgArgs{ID: id, InfoHash: dht.Infohash(p.Topic), Token: "short"}})
	if ans.E == nil || ans.E.Code != 203 {
		t.Fatalf("malformed: %+v", ans)
	}
}

// TestRelayRequestsRateLimitedAtTheAnnouncer: however many relay requests
// one referrer forwards for one topic, the announcer starts one demand
// (later requests are answered OK while it runs) and accepts at most
// RelayRequestSourceBurst, then RelayRequestPerSource a second, from the
// referrer's IP; the rest are refused as rate limited.
func TestRelayRequestsRateLimitedAtTheAnnouncer(t *testing.T) {
	_, b, p, bPort := relayReqPair(t)
	accepted := make(chan struct{}, 64)
	b.SetOnRelayRequest(func([20]byte) { accepted <- struct{}{} })
	ref := &net.UDPAddr{IP: net.ParseIP(p.Referrer.Host), Port: p.Referrer.Port}
	var id krpc.ID
	id[0] = 4
	token := string([]byte{127, 0, 0, 1, byte(bPort >> 8), byte(bPort)})
	const n = 4 * dht.RelayRequestBurst
	start := time.Now()
	for range n {
		query(t, ref, krpc.Msg{T: "rq", Y: "q", Q: dht.RelayRequestMethod, A: &krpc.MsgArgs{ID: id, InfoHash: dht.Infohash(p.Topic), Token: token}})
	}
	elapsed := time.Since(start)
	if got := len(accepted); got != 1 {
		t.Fatalf("announcer's handler called %d times for %d requests of one topic, want once", got, n)
	}
	st := b.LimitStats()
	okLimit := uint64(dht.RelayRequestSourceBurst + int(elapsed.Seconds()*dht.RelayRequestPerSource) + 1)
	// (the referrer's own limits forward only some)
	if st.RelayRequestsAccepted != 1 || st.RelayRequestsAccepted+st.RelayRequestsActive > okLimit ||
		st.RelayRequestsAccepted+st.RelayRequestsActive+st.RelayRequestsRateLimited > n {
		t.Fatalf("stats %+v after %d requests in %v, want 1 accepted and at most %d answered OK", st, n, elapsed, okLimit)
	}
}

// TestUnpunchableDiallerAsksForARelayBesideItsHolePunch: a dialler whose
// DHT nodes see it at different ports (a NAT that maps per destination)
// sends a relay request beside its hole punch, which the announcer's
// handler gets.
func TestUnpunchableDiallerAsksForARelayBesideItsHolePunch(t *testing.T) {
	a, b, p, _ := relayReqPair(t)
	got := make(chan [20]byte, 4)
	b.SetOnRelayRequest(func(ih [20]byte) { got <- ih })
	a.ObserveMapping("192.0.2.1:6881", netip.MustParseAddrPort("198.51.100.1:1000"))
	a.ObserveMapping("192.0.2.2:6881", netip.MustParseAddrPort("198.51.100.1:1001"))
	if c := a.Connectivity(); c.Holepunchable || c.Reporters < 2 {
		t.Fatalf("connectivity %+v, want not hole-punchable", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.HolePunch(ctx, p); err != nil {
		t.Fatal(err)
	}
	select {
	case ih := <-got:
		if ih != dht.Infohash(p.Topic) {
			t.Fatalf("handler got %x", ih)
		}
	case <-ctx.Done():
		t.Fatal("no relay request reached the announcer")
	}
	for a.LimitStats().RelayRequestsSent == 0 { // counted once the referrer's answer is in
		select {
		case <-ctx.Done():
			t.Fatalf("the accepted request was not counted: %+v", a.LimitStats())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
