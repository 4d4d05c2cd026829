package relay_test

import (
	"context"
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
