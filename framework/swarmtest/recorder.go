package swarmtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// DefaultWait bounds every wait of the recorder.
const DefaultWait = 5 * time.Second

// Recorder reads a swarm's events for a test and keeps them.
type Recorder struct {
	t   testing.TB
	sub *framework.Subscription
	all []framework.Event
}

// Record subscribes to sw; the subscription is closed at test cleanup.
func Record(t testing.TB, sw *framework.Swarm) *Recorder {
	r := &Recorder{t: t, sub: sw.Subscribe()}
	t.Cleanup(r.sub.Close)
	return r
}

// Next returns the next event, or fails the test after DefaultWait.
func (r *Recorder) Next() framework.Event {
	r.t.Helper()
	select {
	case ev, ok := <-r.sub.C():
		if !ok {
			r.t.Fatal("swarmtest: subscription ended")
		}
		r.all = append(r.all, ev)
		return ev
	case <-time.After(DefaultWait):
		r.t.Fatalf("swarmtest: no event within %v (seen: %s)", DefaultWait, r.describe())
		return nil
	}
}

// None asserts that no event of type E arrives within d (events of other
// types are kept).
func None[E framework.Event](r *Recorder, d time.Duration) {
	r.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-r.sub.C():
			if !ok {
				return
			}
			r.all = append(r.all, ev)
			if _, bad := ev.(E); bad {
				r.t.Fatalf("swarmtest: unexpected %T: %+v", ev, ev)
			}
		case <-deadline:
			return
		}
	}
}

// Wait returns the next event of type E for which match (nil: any) is
// true, skipping others, or fails the test after DefaultWait.
func Wait[E framework.Event](r *Recorder, match func(E) bool) E {
	r.t.Helper()
	deadline := time.After(DefaultWait)
	for {
		select {
		case ev, ok := <-r.sub.C():
			if !ok {
				var zero E
				r.t.Fatalf("swarmtest: subscription ended while waiting for %T", zero)
				return zero
			}
			r.all = append(r.all, ev)
			if e, ok := ev.(E); ok && (match == nil || match(e)) {
				return e
			}
		case <-deadline:
			var zero E
			r.t.Fatalf("swarmtest: no %T within %v (seen: %s)", zero, DefaultWait, r.describe())
			return zero
		}
	}
}

// Drain reads events until the subscription ends (the swarm closed) and
// returns everything seen.
func (r *Recorder) Drain() []framework.Event {
	r.t.Helper()
	deadline := time.After(DefaultWait)
	for {
		select {
		case ev, ok := <-r.sub.C():
			if !ok {
				return r.all
			}
			r.all = append(r.all, ev)
		case <-deadline:
			r.t.Fatalf("swarmtest: subscription did not end within %v", DefaultWait)
		}
	}
}

// Seen returns every event read so far.
func (r *Recorder) Seen() []framework.Event { return r.all }

func (r *Recorder) describe() string {
	s := ""
	for i, ev := range r.all {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%T", ev)
	}
	if s == "" {
		return "nothing"
	}
	return s
}
