package swarmtest

import (
	"context"
	"net"
	"sync"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var _ framework.Transport = (*Transport)(nil)

// Transport wraps a real transport, records every dial in order and can
// hold dials at a gate until the test releases them.
type Transport struct {
	framework.Transport

	mu    sync.Mutex
	dials []string // peer addresses in dial order
	gate  chan struct{}
	// Dialled receives the address of every dial as it starts (buffered;
	// never blocks the dialler: dials beyond the buffer are not sent).
	Dialled chan string
}

// NewTransport wraps t.
func NewTransport(t framework.Transport) *Transport {
	return &Transport{Transport: t, Dialled: make(chan string, 1024)}
}

// Hold makes dials wait until Release.
func (t *Transport) Hold() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gate == nil {
		t.gate = make(chan struct{})
	}
}

// Release lets held dials go on.
func (t *Transport) Release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gate != nil {
		close(t.gate)
		t.gate = nil
	}
}

// Dial records the dial, waits at the gate if any, then dials.
func (t *Transport) Dial(ctx context.Context, p framework.Peer) (net.Conn, error) {
	t.mu.Lock()
	t.dials = append(t.dials, p.Addr())
	gate := t.gate
	t.mu.Unlock()
	select {
	case t.Dialled <- p.Addr():
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return t.Transport.Dial(ctx, p)
}

// Dials returns the addresses dialled so far, in order.
func (t *Transport) Dials() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.dials...)
}

// Order forwards the wrapped transport's order (see framework.Ordered).
func (t *Transport) Order() int {
	if o, ok := t.Transport.(framework.Ordered); ok {
		return o.Order()
	}
	return 0
}
