package dht_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// fakeReferrer is a KRPC socket that answers every relay request at once
// with "y": "r" (a hostile referrer claims every target accepted) and
// counts the relay requests and hole punches it got.
type fakeReferrer struct {
	c                *net.UDPConn
	relayReqs, punch atomic.Int64
}

func startFakeReferrer(t *testing.T, ip string) *fakeReferrer {
	t.Helper()
	f := &fakeReferrer{c: udpAt(t, ip)}
	done := make(chan struct{})
	t.Cleanup(func() { f.c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := f.c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var m krpc.Msg
			if bencode.Unmarshal(buf[:n], &m) != nil || m.Y != "q" {
				continue
			}
			switch m.Q {
			case dht.RelayRequestMethod:
				f.relayReqs.Add(1)
			case dht.HolePunchMethod:
				f.punch.Add(1)
			default:
				continue
			}
			var id krpc.ID
			id[0] = 0xee
			if b, err := bencode.Marshal(krpc.Msg{T: m.T, Y: "r", R: &krpc.Return{ID: id}}); err == nil {
				_, _ = f.c.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	return f
}

func (f *fakeReferrer) referrer() *framework.Referrer {
	ap := f.c.LocalAddr().(*net.UDPAddr).AddrPort()
	return &framework.Referrer{Host: ap.Addr().String(), Port: int(ap.Port()), ID: make([]byte, 20)}
}

// TestHostileReferrerCannotMultiplyRelayRequests: a hostile DHT node that
// returns fake values naming itself as referrer, and claims at once that
// every one accepted a relay request, gets one request per topic per
// RelayRequestGap (the rest are suppressed and counted); accepted requests
// through several referrers start one schedule of lookups for the topic,
// and those lookups announce nothing.
func TestHostileReferrerCannotMultiplyRelayRequests(t *testing.T) {
	dhtNode := startHostileOpts(t, []string{"127.0.0.5"}, 1, 0, 0, 1000, false)
	clk := clockwork.NewFakeClock()
	a, _, aPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true), Bootstrap: []string{dhtNode.addrs[0].String()}, Clock: clk,
		FastRelookups: []time.Duration{}, RoundMin: time.Hour, RoundMax: time.Hour})
	tp := topic(t.Name())
	s := join(t, a, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: aPort})
	waitSignal(t, s.flushCh, 20*time.Second, "first round")
	eventually(t, 20*time.Second, "the re-lookup after the first announce", func() bool { return a.Stats().Rounds >= 2 })
	for len(dhtNode.announced) > 0 { // the first round's announce
		<-dhtNode.announced
	}
	r0 := a.Stats().Rounds
	r1, r2 := startFakeReferrer(t, "127.0.0.8"), startFakeReferrer(t, "127.0.0.9")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const fakes = 10
	for i := range fakes {
		p := framework.Peer{Host: fmt.Sprintf("127.2.0.%d", 1+i), Port: 2000 + i, Referrer: r1.referrer(), Topic: tp}
		err := a.RequestRelay(ctx, p)
		if i == 0 && err != nil {
			t.Fatal(err)
		}
		if i > 0 && !errors.Is(err, dht.ErrRelayRequestSuppressed) {
			t.Fatalf("request %d via the same referrer: err = %v, want ErrRelayRequestSuppressed", i, err)
		}
	}
	if got := r1.relayReqs.Load(); got != 1 {
		t.Fatalf("the hostile referrer got %d relay requests for %d fake values, want 1", got, fakes)
	}
	// another referrer IP is another request, but no second schedule
	if err := a.RequestRelay(ctx, framework.Peer{Host: "127.2.1.1", Port: 3000, Referrer: r2.referrer(), Topic: tp}); err != nil {
		t.Fatal(err)
	}
	ls := a.LimitStats()
	if ls.RelayRequestsSent != 2 || ls.RelayRequestsSuppressed != fakes-1 || ls.RelayRefreshSchedules != 1 {
		t.Fatalf("limit stats %+v, want 2 sent, %d suppressed, 1 refresh schedule", ls, fakes-1)
	}
	// the schedule's lookups (1 s, 2 s, 4 s, 8 s of the fake clock; those
	// that come while one runs are one) send no announce_peer
	start := clk.Now()
	for i := 0; clk.Since(start) < 16*time.Second || a.Stats().Rounds < r0+1; i++ {
		if i > 2000 {
			t.Fatalf("no refresh lookup ran: %d rounds", a.Stats().Rounds-r0)
		}
		clk.Advance(100 * time.Millisecond)
		time.Sleep(5 * time.Millisecond) // the refresh goroutine re-arms its timer
	}
	select {
	case from := <-dhtNode.announced:
		t.Fatalf("a refresh after a relay request announced (from %v)", from)
	default:
	}
}

// TestRelayRequestNotSentOnceTheDialEnded: the relay request beside a hole
// punch is not sent when the hole punch's context (the dial's) is done.
func TestRelayRequestNotSentOnceTheDialEnded(t *testing.T) {
	a, _, _ := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	ref := startFakeReferrer(t, "127.0.0.10")
	a.ObserveMapping("192.0.2.1:6881", netip.MustParseAddrPort("198.51.100.1:1000"))
	a.ObserveMapping("192.0.2.2:6881", netip.MustParseAddrPort("198.51.100.1:1001"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the dial already won
	_ = a.HolePunch(ctx, framework.Peer{Host: "127.2.2.1", Port: 4000, Referrer: ref.referrer(), Topic: topic(t.Name())})
	a.Close() // waits for the hole punch's goroutines
	// anything a sent was written before Close returned; let the reader
	// take it
	probe := udpAt(t, "127.0.0.10")
	ask(t, probe, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 10), Port: ref.referrer().Port}, krpc.Msg{T: "zz", Y: "q", Q: dht.HolePunchMethod, A: &krpc.MsgArgs{}})
	if n := ref.relayReqs.Load(); n != 0 {
		t.Fatalf("the referrer got %d relay requests after the dial ended", n)
	}
	if st := a.LimitStats(); st.RelayRequestsSent != 0 || st.RelayRequestsFailed != 0 {
		t.Fatalf("limit stats %+v", st)
	}
}
