package utp_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// Every deadline call after Close returns at once, even while a deadline is
// armed (it used to wait forever for a timer Close had stopped), with an
// error wrapping net.ErrClosed as net.TCPConn's do.
func TestDeadlineCallsAfterCloseReturnAtOnce(t *testing.T) {
	a, b := newNode(t, utp.Config{}), newNode(t, utp.Config{})
	calls := []struct {
		name string
		set  func(net.Conn, time.Time) error
	}{
		{"SetReadDeadline", net.Conn.SetReadDeadline},
		{"SetWriteDeadline", net.Conn.SetWriteDeadline},
		{"SetDeadline", net.Conn.SetDeadline},
	}
	for _, call := range calls {
		for _, armed := range []bool{true, false} {
			client, server := connect(t, a, b)
			for _, c := range []net.Conn{client, server} {
				if armed {
					if err := c.SetDeadline(time.Now().Add(time.Hour)); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				for _, next := range []time.Time{{}, time.Now().Add(time.Minute)} {
					done := make(chan error, 1)
					go func() { done <- call.set(c, next) }()
					select {
					case err := <-done:
						if !errors.Is(err, net.ErrClosed) {
							t.Fatalf("%s after Close (armed %v) = %v, want net.ErrClosed", call.name, armed, err)
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("%s after Close (armed %v) blocked", call.name, armed)
					}
				}
			}
		}
	}
}
