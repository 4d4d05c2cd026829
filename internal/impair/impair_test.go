package impair

import (
	"context"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newPlanner(cfg Config, seed uint64) *planner {
	return &planner{cfg: cfg.withDefaults(), rng: rand.New(rand.NewPCG(seed, seed))}
}

func TestZeroConfigPassesThrough(t *testing.T) {
	p := newPlanner(Config{}, 1)
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * time.Microsecond)
		if d := p.plan(now, 1200, 0); len(d) != 1 || !d[0].Equal(now) {
			t.Fatalf("packet %d: due %v, want [%v]", i, d, now)
		}
	}
}

func TestDelay(t *testing.T) {
	p := newPlanner(Config{Delay: 40 * time.Millisecond}, 1)
	d := p.plan(t0, 100, 0)
	if len(d) != 1 || d[0].Sub(t0) != 40*time.Millisecond {
		t.Fatalf("due %v", d)
	}
}

func TestLossRate(t *testing.T) {
	const n = 20000
	p := newPlanner(Config{Loss: 0.01}, 7)
	lost := 0
	for range n {
		if len(p.plan(t0, 100, 0)) == 0 {
			lost++
		}
	}
	// expected 200, σ ≈ 14: the bounds are ±7σ
	if lost < 100 || lost > 300 || p.stats.Lost != uint64(lost) {
		t.Fatalf("lost %d of %d (stats %d), want ≈1 %%", lost, n, p.stats.Lost)
	}
	dead := newPlanner(Config{Loss: 1}, 7)
	for range 100 {
		if len(dead.plan(t0, 100, 0)) != 0 {
			t.Fatal("Loss 1 let a packet through")
		}
	}
}

func TestDuplicateRate(t *testing.T) {
	const n = 20000
	p := newPlanner(Config{Duplicate: 0.05}, 3)
	dup := 0
	for range n {
		if len(p.plan(t0, 100, 0)) == 2 {
			dup++
		}
	}
	if dup < 700 || dup > 1300 { // expected 1000, σ ≈ 31
		t.Fatalf("duplicated %d of %d, want ≈5 %%", dup, n)
	}
}

func TestJitterBoundedAndOrderKept(t *testing.T) {
	p := newPlanner(Config{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond}, 5)
	var last time.Time
	spread := map[bool]int{}
	// 25 ms apart, jitter never needs clamping to keep the order
	for i := range 5000 {
		now := t0.Add(time.Duration(i) * 25 * time.Millisecond)
		d := p.plan(now, 100, 0)[0]
		if d.Before(last) {
			t.Fatalf("packet %d due %v before the previous one %v", i, d, last)
		}
		last = d
		lat := d.Sub(now)
		if lat < 30*time.Millisecond || lat > 50*time.Millisecond+time.Millisecond {
			t.Fatalf("packet %d delayed %v, want 40±10 ms", i, lat)
		}
		spread[lat > 40*time.Millisecond]++
	}
	if spread[true] < 1000 || spread[false] < 1000 {
		t.Fatalf("jitter not spread: %v", spread)
	}
	// 1 ms apart, the order is kept by holding a packet as long as the
	// previous one
	for i := range 5000 {
		now := t0.Add(time.Duration(5000*25+i) * time.Millisecond)
		d := p.plan(now, 100, 0)[0]
		if d.Before(last) {
			t.Fatalf("packet %d due %v before the previous one %v", i, d, last)
		}
		last = d
	}
}

func TestReorder(t *testing.T) {
	p := newPlanner(Config{Delay: 20 * time.Millisecond, Reorder: 0.1, ReorderDelay: 5 * time.Millisecond}, 9)
	const n = 10000
	type pk struct {
		i   int
		due time.Time
	}
	var all []pk
	for i := range n {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		all = append(all, pk{i, p.plan(now, 100, 0)[0]})
	}
	slices.SortStableFunc(all, func(a, b pk) int { return a.due.Compare(b.due) })
	overtaken := 0
	for k := 1; k < len(all); k++ {
		if all[k].i < all[k-1].i {
			overtaken++
		}
	}
	if r := int(p.stats.Reordered); r < 700 || r > 1300 || overtaken < r/2 {
		t.Fatalf("reordered %d, arrivals out of order %d, want ≈1 000", r, overtaken)
	}
}

func TestRateCapAndBoundedQueue(t *testing.T) {
	// 100 kB/s, 10 kB queue: 1 000-byte packets take 10 ms each, and a
	// burst beyond ~10 packets is dropped.
	p := newPlanner(Config{Rate: 100_000, QueueBytes: 10_000}, 1)
	var dues []time.Time
	for range 50 {
		if d := p.plan(t0, 1000, 0); len(d) == 1 {
			dues = append(dues, d[0])
		}
	}
	if len(dues) < 10 || len(dues) > 12 || p.stats.QueueDrops != uint64(50-len(dues)) {
		t.Fatalf("burst of 50: %d queued, %d dropped", len(dues), p.stats.QueueDrops)
	}
	for k, d := range dues {
		if want := time.Duration(k+1) * 10 * time.Millisecond; d.Sub(t0) != want {
			t.Fatalf("packet %d leaves at %v, want %v", k, d.Sub(t0), want)
		}
	}
	// Sent at the rate, nothing is dropped and nothing waits.
	p = newPlanner(Config{Rate: 100_000, QueueBytes: 10_000}, 1)
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		if d := p.plan(now, 1000, 0); len(d) != 1 || d[0].Sub(now) != 10*time.Millisecond {
			t.Fatalf("paced packet %d: %v", i, d)
		}
	}
}

func TestMaxPending(t *testing.T) {
	p := newPlanner(Config{Delay: time.Second, MaxPending: 3}, 1)
	if len(p.plan(t0, 1, 2)) != 1 || len(p.plan(t0, 1, 3)) != 0 || p.stats.QueueDrops != 1 {
		t.Fatalf("MaxPending not enforced: %+v", p.stats)
	}
}

func TestSeedReproducible(t *testing.T) {
	cfg := Config{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1}
	run := func(seed uint64) []time.Time {
		p := newPlanner(cfg, seed)
		var out []time.Time
		for i := range 500 {
			out = append(out, p.plan(t0.Add(time.Duration(i)*time.Millisecond), 100, 0)...)
			out = append(out, time.Time{}) // packet boundary
		}
		return out
	}
	if !slices.Equal(run(42), run(42)) {
		t.Fatal("same seed, different fates")
	}
	if slices.Equal(run(42), run(43)) {
		t.Fatal("different seeds, same fates")
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{{Loss: 1.5}, {Duplicate: -0.1}, {Delay: -1}, {Rate: -1}} {
		if _, err := Wrap(nil, cfg, Options{}); err == nil {
			t.Fatalf("%+v accepted", cfg)
		}
	}
}

// recorder is a net.PacketConn that records when each packet was sent.
type recorder struct {
	net.PacketConn // nil: only WriteTo and Close are used
	clock          clockwork.Clock
	sent           chan sentPacket
}

type sentPacket struct {
	at time.Time
	b  string
}

func (r *recorder) WriteTo(b []byte, _ net.Addr) (int, error) {
	r.sent <- sentPacket{r.clock.Now(), string(b)}
	return len(b), nil
}
func (r *recorder) Close() error { return nil }

// TestConnSendsWhenDue runs the Conn's goroutine on a fake clock: each
// packet leaves exactly at its due time, in due-time order.
func TestConnSendsWhenDue(t *testing.T) {
	clk := clockwork.NewFakeClockAt(t0)
	rec := &recorder{clock: clk, sent: make(chan sentPacket, 16)}
	c, err := Wrap(rec, Config{Delay: 40 * time.Millisecond}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.WriteTo([]byte("a"), nil)
	clk.Advance(10 * time.Millisecond)
	c.WriteTo([]byte("b"), nil)
	for _, want := range []sentPacket{{t0.Add(40 * time.Millisecond), "a"}, {t0.Add(50 * time.Millisecond), "b"}} {
		// wait until the sender sleeps on its timer, then move to the due time
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(want.at.Sub(clk.Now()))
		select {
		case got := <-rec.sent:
			if got != want {
				t.Fatalf("sent %+v, want %+v", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("%q never sent", want.b)
		}
	}
	if s := c.Stats(); s.Written != 2 || s.Sent != 2 || c.Pending() != 0 {
		t.Fatalf("stats %+v pending %d", s, c.Pending())
	}
}

// TestConnOverLoopback: through real sockets, with the real clock, a delayed
// and duplicated packet arrives twice and not before its delay (no upper
// bound: a busy machine may be late).
func TestConnOverLoopback(t *testing.T) {
	a, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := Wrap(a, Config{Delay: 20 * time.Millisecond, Duplicate: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 64)
	for i := range 2 {
		n, _, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("copy %d: %q %v", i, buf[:n], err)
		}
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("arrived after %v, before the 20 ms delay", el)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo([]byte("x"), b.LocalAddr()); err == nil {
		t.Fatal("write after Close")
	}
}

// TestCloseDropsHeld: Close returns with packets held, and sends none later.
func TestCloseDropsHeld(t *testing.T) {
	clk := clockwork.NewFakeClockAt(t0)
	rec := &recorder{clock: clk, sent: make(chan sentPacket, 16)}
	c, _ := Wrap(rec, Config{Delay: time.Hour}, Options{Clock: clk})
	for range 5 {
		c.WriteTo([]byte("x"), nil)
	}
	if c.Pending() != 5 {
		t.Fatalf("pending %d", c.Pending())
	}
	c.Close()
	clk.Advance(2 * time.Hour)
	if len(rec.sent) != 0 {
		t.Fatal("sent after Close")
	}
}

// QueueDelay is the rate cap's backlog in time: 1 000-byte packets at
// 100 kB/s take 10 ms each, so after three writes a fourth would wait
// 30 ms; it shrinks as the clock moves and is 0 once the queue drained.
func TestQueueDelay(t *testing.T) {
	clk := clockwork.NewFakeClockAt(t0)
	rec := &recorder{clock: clk, sent: make(chan sentPacket, 16)}
	c, err := Wrap(rec, Config{Rate: 100_000, QueueBytes: 100_000}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := c.QueueDelay(); d != 0 {
		t.Fatalf("empty queue: %v", d)
	}
	b := make([]byte, 1000)
	for range 3 {
		c.WriteTo(b, nil)
	}
	if d := c.QueueDelay(); d != 30*time.Millisecond {
		t.Fatalf("after 3 packets: %v, want 30ms", d)
	}
	clk.Advance(25 * time.Millisecond)
	if d := c.QueueDelay(); d != 5*time.Millisecond {
		t.Fatalf("25 ms later: %v, want 5ms", d)
	}
	clk.Advance(time.Second)
	if d := c.QueueDelay(); d != 0 {
		t.Fatalf("drained: %v", d)
	}
}
