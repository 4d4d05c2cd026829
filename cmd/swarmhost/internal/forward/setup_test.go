package forward

import (
	"context"
	"errors"
	"testing"
)

// A burst of setups to one peer IP runs SetupsPerPeer at a time; the rest
// wait within their context, and nothing is kept once all are released.
func TestSetupsPerPeerAreBounded(t *testing.T) {
	m := &Manager{opt: Options{SetupsPerPeer: 2}, setups: map[string]*setupSlots{}}
	ctx := context.Background()
	r1, err1 := m.setupSlot(ctx, "10.0.0.1")
	r2, err2 := m.setupSlot(ctx, "10.0.0.1")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// another IP has slots of its own
	r3, err := m.setupSlot(ctx, "10.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	r3()
	// a third setup to the first IP waits: cancelled, it fails with ctx's error
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.setupSlot(cctx, "10.0.0.1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("third setup while two run: %v, want context.Canceled", err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := m.setupSlot(ctx, "10.0.0.1")
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	r1() // frees a slot for the waiting one
	r4 := <-got
	r2()
	r4()
	if n := len(m.setups); n != 0 {
		t.Fatalf("%d slot sets left after every release", n)
	}
}
