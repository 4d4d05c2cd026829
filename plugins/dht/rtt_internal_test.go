package dht

import (
	"testing"
	"time"
)

func TestRTTEstimator(t *testing.T) {
	e := rttEstimator{min: 150 * time.Millisecond, max: 2 * time.Second}
	if got := e.rto(); got != time.Second {
		t.Fatalf("RTO before any sample %v, want 1 s", got)
	}
	for range 50 {
		e.sample(80 * time.Millisecond)
	}
	if got := e.rto(); got != 150*time.Millisecond {
		t.Fatalf("RTO at a steady 80 ms RTT %v, want the 150 ms floor", got)
	}
	for range 50 {
		e.sample(300 * time.Millisecond)
	}
	if got := e.rto(); got < 300*time.Millisecond || got > 500*time.Millisecond {
		t.Fatalf("RTO at a steady 300 ms RTT %v, want 350 ms or a little more", got)
	}
	// alternating 100/500 ms: the deviation widens the RTO
	for i := range 100 {
		e.sample(time.Duration(100+400*(i%2)) * time.Millisecond)
	}
	if got := e.rto(); got < 900*time.Millisecond {
		t.Fatalf("RTO on a jittery path %v, want SRTT + 4 deviations ≥ 900 ms", got)
	}
	for range 50 {
		e.sample(10 * time.Second)
	}
	if got := e.rto(); got != 2*time.Second {
		t.Fatalf("RTO %v above the maximum", got)
	}
}

func TestQueryTimeoutAdaptiveOnlyWhenUnset(t *testing.T) {
	c := Config{Bootstrap: []string{}}
	if err := c.setDefaults(); err != nil || !c.adaptiveTimeout || c.QueryTimeout != DefaultQueryTimeout || c.MinQueryTimeout != DefaultMinQueryTimeout {
		t.Fatalf("unset QueryTimeout: %+v %v", c, err)
	}
	c = Config{Bootstrap: []string{}, QueryTimeout: time.Second}
	if err := c.setDefaults(); err != nil || c.adaptiveTimeout {
		t.Fatalf("set QueryTimeout made adaptive: %v", err)
	}
}
