package deadline

import (
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
