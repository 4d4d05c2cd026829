package relay_test

import (
	"io"
	"net"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// The client counts its reservations and the connections it connected
// back for; the relay counts the session and the bytes it forwarded.
func TestClientAndServerStats(t *testing.T) {
	r := bareRelay(t, relay.ServerConfig{})
	c, ln := bareClient(t, relay.ClientConfig{Relays: []string{pinned(r)}})
	if st := c.Stats(); st.Relayed != 0 || st.ConnectBackFailed != 0 {
		t.Fatalf("fresh client stats %+v", st)
	}
	addr := allocation(t, c, 0)
	if st := c.Stats(); !st.Reserved || st.Reservations != 1 {
		t.Fatalf("after the reservation: %+v, want reserved once", st)
	}
	a := dial(t, addr)
	b := accept(t, ln)
	msg := []byte("hello through the relay")
	if _, err := a.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Relayed != 1 || st.ConnectBackFailed != 0 {
		t.Fatalf("after one relayed connection: %+v", st)
	}
	// bytes count when a splice chunk ends (up to 1 MiB, or the
	// direction's EOF)
	if err := a.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitStats(t, r, func(st relay.Stats) bool { return st.SessionsTotal == 1 && st.BytesRelayed >= uint64(len(msg)) })
	c.Close()
	if st := c.Stats(); st.Reserved {
		t.Fatalf("closed client still reserved: %+v", st)
	}
}
