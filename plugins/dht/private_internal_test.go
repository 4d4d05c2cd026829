package dht

import "testing"

// A DHT entered only through non-global nodes is a private network: its
// peers are marked PrivateNet so that the swarm dials their private
// addresses with no flag (semantics D5). The public routers, a host name or
// any global node make it public; so does an empty list.
func TestPrivateNetworkFromBootstrap(t *testing.T) {
	for _, c := range []struct {
		boot []string
		want bool
	}{
		{[]string{"127.0.0.1:6881", "127.0.0.2:6882"}, true},
		{[]string{"[::1]:6881"}, true},
		{[]string{"10.0.0.1:6881", "192.168.1.5:6881", "[fd00::1]:6881", "100.64.0.1:6881"}, true},
		{[]string{"localhost:6881"}, true},
		{[]string{"127.0.0.1:6881", "1.1.1.1:6881"}, false},
		{[]string{"dht.example:6881"}, false},
		{DefaultBootstrap, false},
		{[]string{}, false},
		{nil, false},
	} {
		if got := privateNetwork(c.boot); got != c.want {
			t.Errorf("privateNetwork(%v) = %v, want %v", c.boot, got, c.want)
		}
	}
}
