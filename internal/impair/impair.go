package impair

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// ErrClosed is returned by WriteTo after Close.
var ErrClosed = errors.New("impair: conn closed")

// Defaults of the bounds.
const (
	// DefaultQueueBytes bounds the bytes waiting for the rate cap.
	DefaultQueueBytes = 64 << 10
	// DefaultMaxPending bounds the packets held (delayed) at any time.
	DefaultMaxPending = 4096
)

// Config is one direction's impairment: what happens to every packet
// written to a [Conn]. The zero value passes packets through unchanged.
type Config struct {
	// Delay is the one-way delay added to every packet.
	Delay time.Duration
	// Jitter adds a uniform random delay in [-Jitter, +Jitter] (the total is
	// never negative). Jitter alone keeps the packet order: a packet is
	// never sent before the one written before it (see Reorder).
	Jitter time.Duration
	// Loss is the probability in [0, 1] that a packet is dropped (1: a dead
	// path).
	Loss float64
	// Duplicate is the probability that a packet is sent twice.
	Duplicate float64
	// Reorder is the probability that a packet is held ReorderDelay longer
	// than its due time, so that packets written after it overtake it.
	Reorder float64
	// ReorderDelay is how much longer a reordered packet is held (default
	// Delay/2, at least 1 ms).
	ReorderDelay time.Duration
	// Rate caps the bandwidth, in bytes per second (0: unlimited). Packets
	// are serialised at this rate before the delay; a packet that finds
	// more than QueueBytes ahead of it is dropped (a tail-drop queue).
	Rate int64
	// QueueBytes bounds the rate cap's queue (default DefaultQueueBytes).
	QueueBytes int
	// MaxPending bounds the packets held at any time, whatever their state
	// (default DefaultMaxPending); a packet beyond it is dropped.
	MaxPending int
}

func (c Config) validate() error {
	for _, p := range []float64{c.Loss, c.Duplicate, c.Reorder} {
		if p < 0 || p > 1 {
			return fmt.Errorf("impair: probability %v outside [0, 1]", p)
		}
	}
	if c.Delay < 0 || c.Jitter < 0 || c.ReorderDelay < 0 || c.Rate < 0 || c.QueueBytes < 0 || c.MaxPending < 0 {
		return errors.New("impair: negative delay, rate or bound")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.ReorderDelay == 0 {
		c.ReorderDelay = max(c.Delay/2, time.Millisecond)
	}
	return c
}

// Stats count what a Conn did with the packets written to it.
type Stats struct {
	Written    uint64 // packets passed to WriteTo
	Sent       uint64 // packets (duplicates included) passed to the wrapped conn
	Lost       uint64 // dropped by Loss
	QueueDrops uint64 // dropped because the rate queue or MaxPending was full
	Duplicated uint64 // extra copies made
	Reordered  uint64 // packets held back by Reorder
	SendErrors uint64 // sends the wrapped conn refused
}

// planner decides the fate of each packet: pure, given the time and the RNG,
// so that it is tested without goroutines or clocks.
type planner struct {
	cfg      Config
	rng      *rand.Rand
	linkFree time.Time // when the rate cap has sent what it holds
	lastDue  time.Time // latest due time of an in-order packet
	stats    Stats
}

// plan returns when the copies of a packet of size bytes written at now are
// due (none: dropped). pending is how many packets are held already.
func (p *planner) plan(now time.Time, size, pending int) []time.Time {
	p.stats.Written++
	c := &p.cfg
	if c.Loss > 0 && p.rng.Float64() < c.Loss {
		p.stats.Lost++
		return nil
	}
	copies := 1
	if c.Duplicate > 0 && p.rng.Float64() < c.Duplicate {
		copies = 2
	}
	if pending+copies > c.MaxPending {
		p.stats.QueueDrops++
		return nil
	}
	sent := now
	if c.Rate > 0 {
		start := now
		if p.linkFree.After(now) {
			start = p.linkFree
		}
		backlog := int64(start.Sub(now)) * c.Rate / int64(time.Second)
		if backlog+int64(size) > int64(c.QueueBytes) {
			p.stats.QueueDrops++
			return nil
		}
		sent = start.Add(time.Duration(int64(size) * int64(time.Second) / c.Rate))
		p.linkFree = sent
	}
	due := sent.Add(c.Delay)
	if c.Jitter > 0 {
		j := time.Duration(p.rng.Int64N(int64(2*c.Jitter)+1)) - c.Jitter
		if due = due.Add(j); due.Before(sent) {
			due = sent
		}
	}
	if c.Reorder > 0 && p.rng.Float64() < c.Reorder {
		p.stats.Reordered++
		due = due.Add(c.ReorderDelay)
	} else {
		if due.Before(p.lastDue) {
			due = p.lastDue
		}
		p.lastDue = due
	}
	if copies == 2 {
		p.stats.Duplicated++
		return []time.Time{due, due}
	}
	return []time.Time{due}
}

// Conn is a net.PacketConn whose writes go through an impairment (one
// direction: what this end sends). Reads pass through unchanged. It is safe
// for concurrent use.
type Conn struct {
	net.PacketConn
	clock clockwork.Clock

	mu      sync.Mutex
	plan    planner
	queue   packetHeap
	seq     uint64
	closed  bool
	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
}

// Options are the fixed parameters of a Conn.
type Options struct {
	// Seed of the random decisions: the same seed, writes and clock give
	// the same fates (0 is a valid seed).
	Seed uint64
	// Clock (default the real clock); tests pass a fake one.
	Clock clockwork.Clock
}

// Wrap returns pc with cfg applied to what is written to it. Close closes
// pc. It fails only on an invalid cfg.
func Wrap(pc net.PacketConn, cfg Config, opts Options) (*Conn, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	clk := opts.Clock
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	c := &Conn{
		PacketConn: pc,
		clock:      clk,
		plan:       planner{cfg: cfg.withDefaults(), rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))},
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// SetConfig changes the impairment of the packets written from now on
// (those held keep their due times). It fails only on an invalid cfg.
func (c *Conn) SetConfig(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	c.plan.cfg = cfg.withDefaults()
	c.mu.Unlock()
	return nil
}

// Stats returns the counts so far.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plan.stats
}

// QueueDelay is how long a packet written now would wait in the rate
// cap's queue before it starts to leave: the queue's occupancy in time (0
// without a Rate or with the queue empty).
func (c *Conn) QueueDelay() time.Duration {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.plan.linkFree.Sub(now), 0)
}

// Pending is how many packets are held.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// WriteTo implements net.PacketConn: the packet is copied and sent when the
// impairment says (or dropped). It reports len(b) unless the conn is
// closed, as a lossy network would.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	now := c.clock.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	dues := c.plan.plan(now, len(b), len(c.queue))
	if len(dues) == 0 {
		c.mu.Unlock()
		return len(b), nil
	}
	if len(dues) == 1 && len(c.queue) == 0 && !dues[0].After(now) {
		// Nothing held and nothing to wait for: send in line.
		c.plan.stats.Sent++
		c.mu.Unlock()
		if _, err := c.PacketConn.WriteTo(b, addr); err != nil {
			c.countSendError()
		}
		return len(b), nil
	}
	buf := append([]byte(nil), b...)
	for _, due := range dues {
		c.seq++
		heap.Push(&c.queue, &packet{due: due, seq: c.seq, b: buf, addr: addr})
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (c *Conn) countSendError() {
	c.mu.Lock()
	c.plan.stats.SendErrors++
	c.mu.Unlock()
}

// run sends the held packets when they are due.
func (c *Conn) run() {
	defer close(c.stopped)
	for {
		c.mu.Lock()
		var next *packet
		if len(c.queue) > 0 {
			next = c.queue[0]
		}
		now := c.clock.Now()
		if next != nil && !next.due.After(now) {
			heap.Pop(&c.queue)
			c.plan.stats.Sent++
			c.mu.Unlock()
			if _, err := c.PacketConn.WriteTo(next.b, next.addr); err != nil {
				c.countSendError()
			}
			continue
		}
		c.mu.Unlock()
		if next == nil {
			select {
			case <-c.quit:
				return
			case <-c.wake:
			}
			continue
		}
		t := c.clock.NewTimer(next.due.Sub(now))
		select {
		case <-c.quit:
			t.Stop()
			return
		case <-c.wake:
			t.Stop()
		case <-t.Chan():
		}
	}
}

// Close drops the held packets, stops the conn and closes the wrapped one.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.queue = nil
	c.mu.Unlock()
	close(c.quit)
	<-c.stopped
	return c.PacketConn.Close()
}

type packet struct {
	due  time.Time
	seq  uint64
	b    []byte
	addr net.Addr
}

type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}
