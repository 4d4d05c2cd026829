package framework

import "testing"

func TestQueuePrioritiesTable(t *testing.T) {
	cases := []struct {
		name    string
		local   bool
		proven  bool
		retries int
		want    int
	}{
		{"fresh LAN peer", true, false, 0, 3},
		{"fresh remote peer", false, false, 0, 2},
		{"proven peer after 1 failure", false, true, 1, 5},
		{"proven peer after 2 failures", false, true, 2, 4},
		{"proven peer after 3 failures", false, true, 3, 1},
		{"tried but never connected", false, false, 1, 0},
		{"LAN peer tried but never connected", true, false, 2, 0},
	}
	for _, c := range cases {
		e := &entry{peer: Peer{Local: c.local}, proven: c.proven, retries: c.retries}
		if got := e.priority(); got != c.want {
			t.Errorf("%s: priority %d, want %d", c.name, got, c.want)
		}
	}
}

func TestQueuePopsHighestPriorityAndShufflesTies(t *testing.T) {
	var q queue
	low := &entry{key: "low"}
	q.push(low, 0)
	seen := map[string]int{}
	for range 200 {
		a, b := &entry{key: "a"}, &entry{key: "b"}
		q.push(a, 2)
		q.push(b, 2)
		hi := &entry{key: "hi"}
		q.push(hi, 5)
		if e := q.pop(); e != hi {
			t.Fatalf("popped %s before the priority-5 entry", e.key)
		}
		seen[q.pop().key]++
		q.pop()
	}
	if seen["a"] < 50 || seen["b"] < 50 {
		t.Fatalf("ties not shuffled: %v", seen)
	}
	if q.pop() != low || q.len() != 0 {
		t.Fatal("lowest entry lost")
	}
}
