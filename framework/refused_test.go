package framework_test

import (
	"errors"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// TestInboundRefusedEvent: an inbound connection refused at a limit is
// reported (before, it was closed with only a debug line).
func TestInboundRefusedEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   framework.Option
		keep  int // connections accepted before the limit
		limit string
	}{
		{"maxPeers", framework.WithMaxPeers(1), 1, "maxPeers"},
		{"maxServerSockets", framework.WithMaxServerSockets(2), 2, "maxServerSockets"},
		{"refuseInbound", framework.WithMaxServerSockets(-1), 0, "refuseInbound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.opt)
			for range tc.keep {
				dialProven(t, n) // silent ones would give way
			}
			if _, kept := dialRaw(t, n); kept {
				t.Fatal("inbound connection kept over the limit")
			}
			e := swarmtest.Wait(n.rec, func(*framework.InboundRefusedEvent) bool { return true })
			if e.Limit != tc.limit || e.Transport != "tcp" || e.Remote == nil || !errors.Is(e.Err, framework.ErrLimit) {
				t.Fatalf("event %+v, want limit %s over tcp wrapping ErrLimit", e, tc.limit)
			}
		})
	}
}
