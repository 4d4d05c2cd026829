package dhttest

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

func TestMemNetwork(t *testing.T) {
	mn := NewMemNetwork()
	a, err := mn.Listen()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mn.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.LocalAddr().String() == b.LocalAddr().String() || !IsLoopback(a.LocalAddr()) {
		t.Fatalf("addresses %v %v", a.LocalAddr(), b.LocalAddr())
	}
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := b.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || from.String() != a.LocalAddr().String() {
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
	// To nobody: dropped, counted, no error (like UDP).
	if _, err := a.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 1}); err != nil || mn.Dropped() != 1 {
		t.Fatalf("write to nobody: %v, %d dropped", err, mn.Dropped())
	}
	// Not loopback: refused.
	before := Violations()
	if _, err := a.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}); err == nil {
		t.Fatal("sent to a non-loopback address")
	}
	violations.Add(before - Violations())
	// A full queue drops.
	for range memQueueCap + 5 {
		a.WriteTo([]byte("y"), b.LocalAddr())
	}
	if mn.Dropped() != 6 {
		t.Fatalf("%d dropped, want 6", mn.Dropped())
	}
	for range memQueueCap {
		if _, _, err := b.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	// A deadline in the past unblocks a blocked reader (guardConn.Close).
	done := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFrom(buf)
		done <- err
	}()
	b.SetReadDeadline(time.Unix(1, 0))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after deadline: %v", err)
	}
	var ne net.Error
	b.SetReadDeadline(time.Time{})
	_, _, err = (func() (int, net.Addr, error) { b.SetReadDeadline(time.Unix(1, 0)); return b.ReadFrom(buf) })()
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline error %v is not a net.Error timeout", err)
	}
	b.SetReadDeadline(time.Time{})
	// Close unblocks a reader and frees the address.
	go func() {
		_, _, err := b.ReadFrom(buf)
		done <- err
	}()
	b.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	a.WriteTo([]byte("z"), b.LocalAddr())
	if mn.Dropped() != 7 {
		t.Fatalf("%d dropped after close, want 7", mn.Dropped())
	}
}

// TestChoosePings: for every node and bucket, the fill pings
// min(perBucket, bucket size) distinct nodes of that bucket (checked
// against a brute-force bucketing).
func TestChoosePings(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, per = 300, 4
	ids := make([][20]byte, n)
	for i := range ids {
		for k := range ids[i] {
			ids[i][k] = byte(rng.UintN(256))
		}
	}
	// two ids sharing a long prefix
	ids[1] = ids[0]
	ids[1][19] ^= 1
	bucket := func(a, b [20]byte) int {
		for k := range a {
			if x := a[k] ^ b[k]; x != 0 {
				return 8*k + bits.LeadingZeros8(x)
			}
		}
		return 160
	}
	got := make(map[[2]int]int) // (from, bucket) → pings
	seen := make(map[[2]int]bool)
	for _, e := range choosePings(ids, per, rng) {
		if e[0] == e[1] || seen[e] {
			t.Fatalf("ping %v: self or duplicate", e)
		}
		seen[e] = true
		got[[2]int{e[0], bucket(ids[e[0]], ids[e[1]])}]++
	}
	for i := range n {
		size := make(map[int]int)
		for j := range n {
			if j != i {
				size[bucket(ids[i], ids[j])]++
			}
		}
		for b, sz := range size {
			if want := min(per, sz); got[[2]int{i, b}] != want {
				t.Fatalf("node %d bucket %d (size %d): %d pings, want %d", i, b, sz, got[[2]int{i, b}], want)
			}
		}
	}
	if got[[2]int{0, 159}] != 1 {
		t.Fatal("the deep bucket was not pinged")
	}
}

// TestMemConnNoAllocs: a datagram sent and received costs no allocation
// (the sender's address is not made anew at each receiver, and a send
// looks its destination up without hashing); the 10 000-node testnet
// sends millions.
func TestMemConnNoAllocs(t *testing.T) {
	mn := NewMemNetwork()
	a, _ := mn.Listen()
	b, _ := mn.Listen()
	defer a.Close()
	defer b.Close()
	msg, buf, to := []byte("d1:y1:qe"), make([]byte, 64), b.LocalAddr()
	var from net.Addr
	n := testing.AllocsPerRun(200, func() {
		a.WriteTo(msg, to)
		_, from, _ = b.ReadFrom(buf)
	})
	if n != 0 {
		t.Errorf("%v allocations per datagram, want 0", n)
	}
	if from.String() != a.LocalAddr().String() {
		t.Errorf("from %v, want %v", from, a.LocalAddr())
	}
}

// TestMemConnReaders: datagrams to a conn with several blocked readers
// (one of which lends its buffer to the sender) all arrive exactly once,
// intact and in order per reader; Close then ends every reader.
func TestMemConnReaders(t *testing.T) {
	mn := NewMemNetwork()
	a, _ := mn.Listen()
	b, _ := mn.Listen()
	defer a.Close()
	const readers, total = 3, 3000
	got := make(chan string, total)
	errs := make(chan error, readers)
	for range readers {
		go func() {
			buf := make([]byte, 16)
			for {
				n, from, err := b.ReadFrom(buf)
				if err != nil {
					errs <- err
					return
				}
				if from.String() != a.LocalAddr().String() {
					errs <- errors.New("wrong sender " + from.String())
					return
				}
				got <- string(buf[:n])
			}
		}()
	}
	seen := make(map[string]bool)
	for i := range total {
		msg := []byte{byte('a' + i%26), byte(i >> 8), byte(i)}
		if _, err := a.WriteTo(msg, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if i%8 == 7 { // bound the queue: await what was sent so far
			for len(seen) < i+1 {
				s := <-got
				if seen[s] {
					t.Fatalf("datagram %q twice", s)
				}
				seen[s] = true
			}
		}
	}
	for len(seen) < total {
		seen[<-got] = true
	}
	for i := range total {
		if !seen[string([]byte{byte('a' + i%26), byte(i >> 8), byte(i)})] {
			t.Fatalf("datagram %d lost", i)
		}
	}
	if mn.Dropped() != 0 {
		t.Fatalf("%d dropped", mn.Dropped())
	}
	b.Close()
	for range readers {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("reader ended with %v", err)
		}
	}
}

// TestMemConnFutureDeadline: a reader blocked before its deadline wakes
// when the deadline passes, and a datagram that arrives earlier wins.
func TestMemConnFutureDeadline(t *testing.T) {
	mn := NewMemNetwork()
	a, _ := mn.Listen()
	b, _ := mn.Listen()
	defer a.Close()
	defer b.Close()
	buf := make([]byte, 16)
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := b.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v", err)
	}
	b.SetReadDeadline(time.Now().Add(time.Hour))
	a.WriteTo([]byte("early"), b.LocalAddr())
	if n, _, err := b.ReadFrom(buf); err != nil || string(buf[:n]) != "early" {
		t.Fatalf("read %q: %v", buf[:n], err)
	}
}

// BenchmarkMemConnPingPong: one request and its reply between two conns,
// each read by its own goroutine as a DHT server's would be (run with
// -benchmem).
func BenchmarkMemConnPingPong(b *testing.B) {
	mn := NewMemNetwork()
	a, _ := mn.Listen()
	s, _ := mn.Listen()
	defer a.Close()
	defer s.Close()
	go func() { // echo
		buf := make([]byte, 2048)
		for {
			n, from, err := s.ReadFrom(buf)
			if err != nil {
				return
			}
			s.WriteTo(buf[:n], from)
		}
	}()
	msg := []byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
	buf := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		a.WriteTo(msg, s.LocalAddr())
		if _, _, err := a.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// A reader that never empties its queue (one datagram always pending)
// keeps a bounded array (review of issue 16: it grew with every datagram).
func TestMemConnQueueStaysBounded(t *testing.T) {
	n := NewMemNetwork()
	dst, err := n.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	src, err := n.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	buf := make([]byte, 16)
	if _, err := src.WriteTo([]byte("x"), dst.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for range 20000 {
		if _, err := src.WriteTo([]byte("x"), dst.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := dst.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	dst.mu.Lock()
	c := cap(dst.queue)
	dst.mu.Unlock()
	if c > 4*memQueueCap {
		t.Fatalf("queue array of %d entries for 1 pending", c)
	}
}

// Once the deadline's timer fired, the reader times out even if the wall
// clock then reads earlier than the deadline (a deadline without a
// monotonic reading, and a clock step back).
func TestMemConnFiredDeadlineHolds(t *testing.T) {
	n := NewMemNetwork()
	c, err := n.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(time.Millisecond).Round(0)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadFrom(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first read: %v", err)
	}
	c.mu.Lock()
	c.deadline = time.Now().Add(time.Hour) // what a clock step back looks like to the check
	c.mu.Unlock()
	if _, _, err := c.ReadFrom(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the clock stepped back: %v", err)
	}
}
