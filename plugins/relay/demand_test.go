package relay_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// waitNoReservation advances clk a Retry at a time until c holds no
// reservation (bounded: 600 steps).
func waitNoReservation(t *testing.T, c *relay.Client, clk *clockwork.FakeClock, step time.Duration) {
	t.Helper()
	for range 600 {
		_, ok, changed := c.Reservation()
		if !ok {
			return
		}
		clk.Advance(step)
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("the reservation was never given up")
}

// TestDemandReservesUntilTheWindowEndsAndNoConnectionIsOpen: a client
// whose Need says no reserves when a dialler demands it (Client.Demand,
// the DHT's relay request), keeps the reservation while a relayed
// connection crosses it, gives it up once the demand window passed and
// the connection closed, and reserves again at the next demand.
func TestDemandReservesUntilTheWindowEndsAndNoConnectionIsOpen(t *testing.T) {
	r := bareRelay(t, relay.ServerConfig{})
	clk := clockwork.NewFakeClock()
	c, ln := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}, Clock: clk, Retry: time.Second,
		Need: func() bool { return false }, DemandWindow: time.Minute, KeepAlive: time.Hour, Timeout: 2 * time.Hour})
	if _, ok, _ := c.Reservation(); ok {
		t.Fatal("reserved without need or demand")
	}
	c.Demand()
	addr := allocation(t, c, 0) // the demand woke the client: no clock advance needed
	d := dial(t, addr)
	b := accept(t, ln)
	// the window passes with the relayed connection open: it stays usable
	for range 90 {
		clk.Advance(time.Second)
	}
	if _, err := d.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("relayed connection after the window: %q %v", buf, err)
	}
	if _, ok, _ := c.Reservation(); !ok {
		t.Fatal("the reservation was given up under an open relayed connection")
	}
	b.Close()
	waitNoReservation(t, c, clk, time.Second)
	readsEOF(t, d)
	c.Demand()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.WaitReservation(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

// TestFlippingNeedDoesNotChurnTheReservation: a Need that flips on every
// call (a connectivity report a hostile reporter flips) keeps one
// reservation: it is given up only after a full DemandWindow in which Need
// said no every time.
func TestFlippingNeedDoesNotChurnTheReservation(t *testing.T) {
	r := bareRelay(t, relay.ServerConfig{})
	clk := clockwork.NewFakeClock()
	var calls, steady atomic.Int64
	need := func() bool {
		if steady.Load() != 0 {
			return false
		}
		return calls.Add(1)%2 == 1
	}
	c, _ := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}, Clock: clk, Retry: time.Second,
		Need: need, DemandWindow: time.Minute, KeepAlive: time.Hour, Timeout: 2 * time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, ok, _ := c.Reservation(); ok {
			break
		}
		clk.Advance(time.Second)
		select {
		case <-ctx.Done():
			t.Fatal("never reserved")
		case <-time.After(20 * time.Millisecond):
		}
	}
	first, _, changed := c.Reservation()
	// 30 checks of Need, half of them false: the reservation stays
	for range 30 {
		clk.Advance(time.Second)
		select {
		case <-changed:
			t.Fatalf("the reservation changed while Need flipped (%d calls)", calls.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if cur, ok, _ := c.Reservation(); !ok || cur.Port != first.Port {
		t.Fatalf("reservation %+v (held %v), want %+v", cur, ok, first)
	}
	if st := c.Stats(); st.Reservations != 1 {
		t.Fatalf("%d reservations, want 1", st.Reservations)
	}
	// no longer needed: given up after the window
	steady.Store(1)
	waitNoReservation(t, c, clk, time.Second)
}

// TestDemandsDoNotBypassRetry: demands that come while no relay can be
// reserved at start no round of attempts beyond one per Retry.
func TestDemandsDoNotBypassRetry(t *testing.T) {
	clk := clockwork.NewFakeClock()
	var dials atomic.Int64
	dialled := make(chan struct{}, 64)
	c, _ := bareClient(t, relay.ClientConfig{Relays: []string{"127.0.0.1:1"}, Clock: clk, Retry: time.Second,
		Need: func() bool { return false }, DemandWindow: time.Minute,
		Dial: func(context.Context, string) (net.Conn, error) {
			dials.Add(1)
			dialled <- struct{}{}
			return nil, errors.New("unreachable")
		}})
	c.Demand()
	select {
	case <-dialled:
	case <-time.After(10 * time.Second):
		t.Fatal("the first demand started no attempt")
	}
	for range 20 {
		c.Demand()
		select {
		case <-dialled:
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials within one Retry (fake clock stopped), want 1", n)
	}
}
