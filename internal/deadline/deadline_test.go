package deadline

import (
	"errors"
	"testing"
	"time"
)

func TestSetExpireAndReset(t *testing.T) {
	d := New()
	if Closed(d.Wait()) {
		t.Fatal("new deadline expired")
	}
	d.Set(time.Now().Add(-time.Second))
	if !Closed(d.Wait()) {
		t.Fatal("past deadline not expired")
	}
	d.Set(time.Time{})
	if Closed(d.Wait()) {
		t.Fatal("disarmed deadline still expired")
	}
	d.Set(time.Now().Add(10 * time.Millisecond))
	select {
	case <-d.Wait():
	case <-time.After(5 * time.Second):
		t.Fatal("deadline never passed")
	}
	d.Set(time.Now().Add(time.Hour))
	if Closed(d.Wait()) {
		t.Fatal("re-armed deadline expired")
	}
	d.Stop()
}

// returnsAtOnce fails the test when fn does not return within a generous
// bound (the bug this guards against blocked forever).
func returnsAtOnce(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked after Stop", what)
	}
}

func TestSetAfterStopWithAnArmedDeadlineReturnsAtOnce(t *testing.T) {
	for _, next := range []time.Time{{}, time.Now().Add(time.Hour), time.Now().Add(-time.Second)} {
		d := New()
		d.Set(time.Now().Add(time.Hour)) // armed
		d.Stop()
		var err error
		returnsAtOnce(t, "Set", func() { err = d.Set(next) })
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Set after Stop = %v, want ErrStopped", err)
		}
		returnsAtOnce(t, "second Stop", d.Stop)
		returnsAtOnce(t, "Wait", func() { d.Wait() })
	}
}

func TestStopAfterTheDeadlinePassedKeepsItExpired(t *testing.T) {
	d := New()
	d.Set(time.Now().Add(-time.Second))
	d.Stop()
	if !Closed(d.Wait()) {
		t.Fatal("expired deadline reopened by Stop")
	}
	if err := d.Set(time.Time{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Set after Stop = %v, want ErrStopped", err)
	}
}

func TestSetBeforeStopReturnsNil(t *testing.T) {
	d := New()
	if err := d.Set(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d.Stop()
}
