package utp

import (
	"testing"
	"time"
)

// ledbatConn is a connection with only what the congestion controller
// uses, its delay history fed on a fake timeline.
func ledbatConn(cwnd int) *Conn {
	c := &Conn{mss: 1380, cwnd: cwnd, ssthresh: maxCwnd, cwndFull: true}
	return c
}

// baseDelay is the one-way delay (µs, as the peer echoes it) of an
// empty path in these tests.
const baseDelay = 10_000

// ackWindow acks one window's worth of bytes, two packets per ack, each
// ack echoing a one-way delay of baseDelay plus queue; the fake clock
// moves by rtt over the window. It returns the clock.
func ackWindow(c *Conn, now time.Time, rtt, queue time.Duration) time.Time {
	n := max(c.cwnd/(2*c.mss), 1)
	for i := range n {
		c.noteDelay(uint32(baseDelay+queue.Microseconds()), now.Add(rtt*time.Duration(i)/time.Duration(n)))
		c.grow(2 * c.mss)
	}
	return now.Add(rtt)
}

var fakeT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// The controller's response on a fake timeline: slow start while the
// queue stays under half the target, left as soon as it does not; about
// one packet per RTT of growth below the target; above it, a decrease in
// proportion to the window (LEDBAT++), whether the window limited the
// sending or not, down to two packets and no further; once the queue is
// gone, slow start back toward the window before the decrease.
func TestLEDBATResponse(t *testing.T) {
	const rtt = 30 * time.Millisecond
	now := fakeT0
	c := ledbatConn(4 * 1380)
	now = ackWindow(c, now, rtt, 0) // the base delay
	// slow start at an empty queue: the window doubles per RTT
	before := c.cwnd
	now = ackWindow(c, now, rtt, 0)
	if c.cwnd < 2*before-2*c.mss {
		t.Fatalf("slow start: %d → %d in an RTT, want about double", before, c.cwnd)
	}
	// the queue reaches half the target: slow start ends
	now = ackWindow(c, now, rtt, target/2+time.Millisecond)
	if c.ssthresh == maxCwnd {
		t.Fatal("still in slow start with the queue at half the target")
	}
	// below the target: at most about one packet per RTT
	for range 5 {
		before = c.cwnd
		now = ackWindow(c, now, rtt, target/4)
		if g := c.cwnd - before; g <= 0 || g > 2*c.mss {
			t.Fatalf("below the target: grew %d bytes in an RTT (window %d), want (0, 2 packets]", g, before)
		}
	}
	// 50 % over the target: a third of the window or more goes per RTT
	c.cwnd = 200 * c.mss
	before = c.cwnd
	now = ackWindow(c, now, rtt, target*3/2)
	if c.cwnd > before*7/10 {
		t.Fatalf("queue 1.5×target: window %d → %d in an RTT, want ≤ 70 %%", before, c.cwnd)
	}
	// ... also when the application, not the window, limited the sending
	c.cwndFull = false
	before = c.cwnd
	now = ackWindow(c, now, rtt, target*3/2)
	if c.cwnd >= before {
		t.Fatalf("application-limited, queue over the target: window %d → %d, want smaller", before, c.cwnd)
	}
	// ... but an application-limited window does not grow
	before = c.cwnd
	now = ackWindow(c, now, rtt, 0)
	if c.cwnd != before {
		t.Fatalf("application-limited at an empty queue: window %d → %d, want unchanged", before, c.cwnd)
	}
	// never below two packets
	c.cwndFull = true
	for range 50 {
		now = ackWindow(c, now, rtt, 4*target)
	}
	if c.cwnd != 2*c.mss {
		t.Fatalf("window %d after a long overload, want the floor %d", c.cwnd, 2*c.mss)
	}
	// the queue drains: slow start takes the window back toward what it
	// was before the overload (not one packet per RTT)
	for range 3 {
		before = c.cwnd
		now = ackWindow(c, now, rtt, 0)
		if c.cwnd < 2*before-2*c.mss {
			t.Fatalf("empty queue after an overload: window %d → %d in an RTT, want about double", before, c.cwnd)
		}
	}
}
