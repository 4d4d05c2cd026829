package relay_test

import (
	"context"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// A client tries its listed relays before it searches for more (the
// search may take seconds), and never reserves at a relay that proves
// its own key (a daemon that relays and reserves finds itself on the DHT).
func TestListedRelaysFirstAndNeverOurselves(t *testing.T) {
	kp := keyPair(t)
	self := bareRelay(t, relay.ServerConfig{KeyPair: kp})
	other := bareRelay(t, relay.ServerConfig{})
	searched := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	c, _ := bareClient(t, relay.ClientConfig{
		KeyPair: kp,
		Relays:  []string{self.Addr().String(), other.Addr().String()},
		Find: func(ctx context.Context) ([]string, error) {
			close(searched) // a second search would panic: one round must do
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		},
	})
	allocation(t, c, 0)
	r, ok, _ := c.Reservation()
	if !ok || r.Relay != other.Addr().String() {
		t.Fatalf("reserved at %+v (ok %v), want %s: not at ourselves (%s)", r, ok, other.Addr(), self.Addr())
	}
	select {
	case <-searched:
		t.Fatal("the client searched before trying its listed relays")
	default:
	}
	if st := self.Stats(); st.Clients != 0 {
		t.Fatalf("our own relay has %d clients", st.Clients)
	}
}
