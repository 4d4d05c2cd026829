package utp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestByteQueueIsFIFO pushes and reads random amounts, wrapping the ring
// and growing it, against a plain slice.
func TestByteQueueIsFIFO(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	q := byteQueue{limit: 50000}
	var want []byte
	next := byte(0)
	for range 20000 {
		if rng.IntN(2) == 0 {
			b := make([]byte, rng.IntN(3000))
			for i := range b {
				b[i] = next
				next++
			}
			q.push(b)
			want = append(want, b...)
		} else {
			b := make([]byte, rng.IntN(5000))
			n := q.read(b)
			if n != min(len(b), len(want)) || !bytes.Equal(b[:n], want[:n]) {
				t.Fatalf("read %d bytes, want %d: content differs", n, min(len(b), len(want)))
			}
			want = want[n:]
		}
		if q.len() != len(want) {
			t.Fatalf("len %d, want %d", q.len(), len(want))
		}
		if len(q.buf) > max(q.limit, len(want)) {
			t.Fatalf("ring of %d bytes for %d queued, limit %d", len(q.buf), len(want), q.limit)
		}
	}
}

// TestByteQueueSteadyStateDoesNotMove: once the ring is big enough,
// pushing and reading allocate nothing.
func TestByteQueueSteadyStateDoesNotMove(t *testing.T) {
	var q byteQueue
	in, out := make([]byte, 1400), make([]byte, 64<<10)
	for range 1000 {
		q.push(in)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for range 40 {
			q.push(in)
		}
		q.read(out[:40*1400])
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round", allocs)
	}
}
