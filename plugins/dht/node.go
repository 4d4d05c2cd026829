package dht

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Name is the discovery's name.
const Name = "dht"

// Node is a standalone DHT node: it finds peers on the BitTorrent mainline
// DHT on a UDP socket of its own (see [ListenNode]), as bootstrap nodes,
// testnets and `swarmhost dht` run it. It implements [framework.Discovery];
// see the package documentation for the protocol. A swarm does not use a
// Node directly: its discovery is the [Plugin] made by [New], which starts a
// Node on the swarm's shared socket when the swarm starts.
type Node struct {
	cfg      Config
	pc       net.PacketConn
	ownsPC   bool
	id       krpc.ID
	limiter  *rate.Limiter
	store    *PeerStore
	self     *selfFilter
	punch    *puncher
	relayReq *relayRequests
	mapping  mappingLog
	clock    clockwork.Clock
	rtt      rttEstimator
	private  bool // every bootstrap node is non-global: peers are marked PrivateNet

	connStats connStats
	limits    limitCounters
	rounds    atomic.Uint64
	queries   atomic.Uint64
	// queriesLate and lateReplies count soft timeouts (softquery.go).
	queriesLate, lateReplies atomic.Uint64

	adapt clockwork.Timer // the adaptive switch (Ephemeral nil); nil otherwise

	srvMu       sync.Mutex
	srv         *server
	srvClosed   bool
	maintain    bool
	modeChanged chan struct{} // closed when an adaptive node became full

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	joins   map[framework.Topic]*join
	wg      sync.WaitGroup
}

var (
	_ framework.Discovery = (*Node)(nil)
	_ framework.Refresher = (*Node)(nil)
)

// ListenNode starts a standalone DHT node: it binds a UDP socket on
// cfg.ListenAddr (default ":0"), which Close closes, or, when
// cfg.PacketConn is set, reads that socket (which the caller closes). It
// returns without network round trips: the routing table fills in the
// background (and on the first round of the first join). For a swarm's
// discovery use [New].
func ListenNode(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	d := &Node{
		cfg:         cfg,
		pc:          cfg.PacketConn,
		store:       NewPeerStore(cfg.PeerStore),
		self:        newSelfFilter(cfg.PublicIP),
		punch:       newPuncher(),
		relayReq:    newRelayRequests(),
		clock:       cfg.Clock,
		rtt:         rttEstimator{min: cfg.MinQueryTimeout, max: cfg.QueryTimeout},
		maintain:    !cfg.NoMaintenance,
		modeChanged: make(chan struct{}),
		closing:     make(chan struct{}),
		joins:       make(map[framework.Topic]*join),
		private:     privateNetwork(cfg.Bootstrap),
	}
	if cfg.SendRate < 0 {
		d.limiter = rate.NewLimiter(rate.Inf, 0)
	} else {
		d.limiter = rate.NewLimiter(rate.Limit(cfg.SendRate), cfg.SendBurst)
	}
	if cfg.NodeID != nil {
		d.id = *cfg.NodeID
	} else {
		d.id = krpc.RandomNodeID()
	}
	if d.pc == nil {
		pc, err := net.ListenPacket("udp", cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("dht: listen %s: %w", cfg.ListenAddr, err)
		}
		d.pc, d.ownsPC = pc, true
	}
	passive := cfg.Ephemeral == nil || *cfg.Ephemeral
	d.srvMu.Lock()
	srv, err := d.startServerLocked(passive, 0)
	if err == nil {
		d.srv = srv
		if d.maintain {
			d.startMaintenanceLocked(srv)
		}
	}
	d.srvMu.Unlock()
	if err != nil {
		if d.ownsPC {
			d.pc.Close()
		}
		return nil, fmt.Errorf("dht: %w", err)
	}
	if cfg.Ephemeral == nil {
		// A timer, not a goroutine waiting for 30 minutes: one goroutine
		// (and its stack) fewer per swarm.
		d.adapt = d.clock.AfterFunc(cfg.AdaptiveAfter, func() {
			d.mu.Lock()
			if d.closed {
				d.mu.Unlock()
				return
			}
			d.wg.Add(1)
			d.mu.Unlock()
			defer d.wg.Done()
			d.becomeFull()
		})
	}
	return d, nil
}

// ListenBootstrap starts a long-running full node on a UDP socket bound on
// listen (host:port), as run in the cloud to seed a private network. peers
// are other bootstrap nodes (may be empty). Its send limit is 1000
// packets/s, since every joining node queries it first.
func ListenBootstrap(listen string, peers []string) (*Node, error) {
	if peers == nil {
		peers = []string{}
	}
	return ListenNode(Config{
		ListenAddr: listen,
		Bootstrap:  peers,
		Ephemeral:  Bool(false),
		SendRate:   1000,
	})
}

// Name implements framework.Discovery.
func (d *Node) Name() string { return Name }

// Addr is the address of the DHT's UDP socket.
func (d *Node) Addr() net.Addr { return d.pc.LocalAddr() }

// ID is the DHT node id.
func (d *Node) ID() [20]byte { return d.id }

// ReadOnly reports whether the node is currently read-only (ephemeral, or
// adaptive and not yet switched).
func (d *Node) ReadOnly() bool {
	d.srvMu.Lock()
	defer d.srvMu.Unlock()
	return d.srv.passive
}

// PeerStore is the store of peers announced to this node.
func (d *Node) PeerStore() *PeerStore { return d.store }

// Stats are counters of a Node.
type Stats struct {
	ReadOnly  bool
	Nodes     int    // routing table size
	GoodNodes int    // nodes that answered recently
	Rounds    uint64 // completed discovery rounds, all topics
	Queries   uint64 // get_peers and announce_peer queries sent by rounds
	// QueriesLate counts get_peers queries that passed their soft timeout
	// (one RTO unanswered) and gave their traversal slot to the next node;
	// LateReplies the replies such queries got afterwards, which still
	// counted.
	QueriesLate, LateReplies uint64
	PacketsSent              uint64 // every packet sent (queries, replies, maintenance)
	PacketsReceived          uint64 // valid KRPC packets received
	InvalidPackets           uint64 // packets dropped by the KRPC guard
	StoredPeers              int    // entries in the peer store
}

// Stats returns the current counters.
func (d *Node) Stats() Stats {
	st := Stats{
		Rounds:          d.rounds.Load(),
		Queries:         d.queries.Load(),
		QueriesLate:     d.queriesLate.Load(),
		LateReplies:     d.lateReplies.Load(),
		PacketsSent:     d.connStats.sent.Load(),
		PacketsReceived: d.connStats.received.Load(),
		InvalidPackets:  d.connStats.dropped.Load(),
		StoredPeers:     d.store.Len(),
	}
	if srv := d.current(); srv != nil {
		ss := srv.s.Stats()
		st.ReadOnly, st.Nodes, st.GoodNodes = srv.passive, ss.Nodes, ss.GoodNodes
	}
	return st
}

func errClosed() error { return fmt.Errorf("dht: %w", framework.ErrClosed) }

// Join implements framework.Discovery. It starts the topic's rounds in the
// background and returns at once.
func (d *Node) Join(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	if !req.Announce && !req.Lookup {
		return framework.ErrInvalidJoin
	}
	if req.Announce && (req.Port < 1 || req.Port > 65535) {
		return fmt.Errorf("%w: dht announce port %d out of range 1-65535", framework.ErrInvalidOption, req.Port)
	}
	if sink == nil {
		return fmt.Errorf("%w: nil sink", framework.ErrInvalidOption)
	}
	j := newJoin(d, req, sink)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errClosed()
	}
	old := d.joins[req.Topic]
	d.joins[req.Topic] = j
	d.wg.Add(1)
	d.mu.Unlock()
	if old != nil {
		old.stop()
		select {
		case <-old.done:
		case <-ctx.Done():
		}
	}
	go d.runJoin(j)
	return nil
}

// Leave implements framework.Discovery: the topic's rounds stop (mainline
// has no un-announce; our records expire from the storing nodes). It waits,
// at most until ctx is done, for an ongoing round to abort.
func (d *Node) Leave(ctx context.Context, topic framework.Topic) error {
	d.mu.Lock()
	j := d.joins[topic]
	delete(d.joins, topic)
	d.mu.Unlock()
	if j == nil {
		return nil
	}
	j.stop()
	select {
	case <-j.done:
	case <-ctx.Done():
	}
	if j.req.Announce {
		d.unannounce(ctx, j)
	}
	return nil
}

// Close implements framework.Discovery: it stops every topic, the DHT
// server and every goroutine, and closes the socket if the Node opened
// it (never Config.PacketConn).
func (d *Node) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.closing)
	if d.adapt != nil {
		d.adapt.Stop()
	}
	joins := d.joins
	d.joins = nil
	d.mu.Unlock()
	for _, j := range joins {
		j.stop()
	}
	d.srvMu.Lock()
	d.srvClosed = true
	srv := d.srv
	d.srvMu.Unlock()
	srv.stop()
	d.wg.Wait()
	d.punch.wg.Wait()
	if d.ownsPC {
		return d.pc.Close()
	}
	return nil
}

// join is one joined topic.
type join struct {
	d      *Node
	req    framework.JoinRequest
	ih     [20]byte
	sink   framework.DiscoverySink
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed once stopped and no round runs

	// Between rounds a join holds no goroutine (8 KiB of stack each): a
	// clock timer starts the next round. Under sched:
	sched      sync.Mutex
	running    bool            // a goroutine (runJoin) runs the rounds
	ended      bool            // stopped: no round follows
	doneClosed bool            // done is closed
	timer      clockwork.Timer // the wait for the next round, while not running
	pending    bool            // a Refresh came while running: next round at once
	lookupOnly bool            // the next round started by a refresh is lookup-only (refreshLookup)
	due        time.Time       // when the next regular round is due (set by wait)
	// touched only by the running runJoin
	fast                []time.Duration // the fast re-lookups still to come
	failures            int
	relookup, announced bool

	mu      sync.Mutex // serialises sink calls with stop
	stopped bool
	flushed bool
	// nodes we sent announce_peer to, with when (for the un-announce at
	// Leave and to accept hole punches they relay); see rememberAnnounce
	announcedTo map[netip.AddrPort]time.Time
}

func newJoin(d *Node, req framework.JoinRequest, sink framework.DiscoverySink) *join {
	ctx, cancel := context.WithCancel(context.Background())
	// running: the caller starts runJoin at once
	return &join{d: d, req: req, ih: Infohash(req.Topic), sink: sink, ctx: ctx, cancel: cancel, done: make(chan struct{}), running: true, fast: d.cfg.FastRelookups}
}

// deliver calls f (a sink call) unless the join was stopped. After stop
// returns, no sink call happens.
func (j *join) deliver(f func()) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.stopped {
		f()
	}
}

// stop ends the join: no sink call after it returns, the round in
// progress aborts, and no round follows. done is closed at once when no
// round runs, else when the round has returned.
func (j *join) stop() {
	j.mu.Lock()
	j.stopped = true
	j.mu.Unlock()
	j.cancel()
	j.sched.Lock()
	defer j.sched.Unlock()
	j.ended = true
	if !j.running {
		if j.timer != nil {
			j.timer.Stop()
			j.timer = nil
		}
		j.closeDoneLocked()
	}
}

// closeDoneLocked closes done once. j.sched is held.
func (j *join) closeDoneLocked() {
	if !j.doneClosed {
		j.doneClosed = true
		close(j.done)
	}
}

// end is runJoin's exit when the join was stopped or the Node closed.
func (j *join) end() {
	j.sched.Lock()
	defer j.sched.Unlock()
	j.ended, j.running = true, false
	j.closeDoneLocked()
}

// wait ends the running runJoin with the next round scheduled after wait,
// unless a Refresh is pending: then it reports true (run it now).
func (j *join) wait(wait time.Duration) bool {
	j.sched.Lock()
	defer j.sched.Unlock()
	j.due = j.d.clock.Now().Add(wait)
	switch {
	case j.ended:
		j.running = false
		j.closeDoneLocked()
		return false
	case j.pending:
		j.pending = false
		return true
	}
	j.running = false
	j.timer = j.d.clock.AfterFunc(wait, j.wake)
	return false
}

// wake starts the next round (the timer of wait fired).
func (j *join) wake() {
	d := j.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return // Close stops the join
	}
	j.sched.Lock()
	defer j.sched.Unlock()
	if j.ended || j.running {
		return
	}
	j.lookupOnly = false // the regular round
	j.startLocked()
}

// startLocked starts runJoin. d.mu and j.sched are held, d is not closed
// and no round runs.
func (j *join) startLocked() {
	j.timer, j.running = nil, true
	j.d.wg.Add(1)
	go j.d.runJoin(j)
}

// refreshLocked asks for the next round now (Refresh), lookup-only if
// lookupOnly (and every other pending request is). d.mu is held and d is
// not closed.
func (j *join) refreshLocked(lookupOnly bool) {
	j.sched.Lock()
	defer j.sched.Unlock()
	switch {
	case j.ended:
	case j.running:
		if j.pending {
			lookupOnly = lookupOnly && j.lookupOnly
		}
		j.pending, j.lookupOnly = true, lookupOnly // one pending request at most
	case j.timer != nil && j.timer.Stop():
		j.lookupOnly = lookupOnly
		j.startLocked()
	default:
		// the timer has fired: its wake starts the round
	}
}

// takeLookupOnly reports (and clears) whether the round about to run was
// asked by refreshLookup alone.
func (j *join) takeLookupOnly() (bool, time.Time) {
	j.sched.Lock()
	defer j.sched.Unlock()
	lo := j.lookupOnly
	j.lookupOnly = false
	return lo, j.due
}

// runJoin runs the rounds of one topic: the first at once, then
// Config.FastRelookups, then every RoundMin–RoundMax at random. A round that
// fails (no node answered) still counts as completed for Flushed/Updated,
// and the next one follows after a backoff of 1 s, 2 s, 4 s … capped at
// RoundMin. A Refresh cuts the wait short. Between rounds no goroutine
// waits: runJoin returns with a clock timer set (join.wait), whose expiry,
// or a Refresh, starts runJoin again.
//
// When the topic is both announced and looked up, the first announce is
// followed at once by a lookup-only round (the re-lookup): two peers that
// join at the same moment each miss the other in their first lookup, which
// ran before either announce was stored, and the re-lookup of the later one
// runs after the earlier announce was stored, so the pair meets within
// about two lookups rather than after the first fast re-lookup's timer.
func (d *Node) runJoin(j *join) {
	defer d.wg.Done()
	for {
		lookupOnly, due := j.takeLookupOnly()
		gen, err := d.round(j, j.req.Announce && !j.relookup && !lookupOnly)
		if j.ctx.Err() != nil {
			j.end()
			return
		}
		if srv := d.current(); srv == nil {
			j.end()
			return
		} else if srv.gen != gen {
			continue // the server was replaced mid-round (adaptive switch): redo
		}
		d.rounds.Add(1)
		j.deliver(func() {
			if !j.flushed {
				j.flushed = true
				j.sink.Flushed()
			}
			j.sink.Updated()
		})
		if lookupOnly && !due.IsZero() {
			// a relay request's lookup: the regular schedule stands
			if !j.wait(max(due.Sub(d.clock.Now()), 0)) {
				return
			}
			continue
		}
		if j.relookup {
			j.relookup = false
		} else if err == nil && j.req.Announce && j.req.Lookup && !j.announced {
			j.announced, j.relookup = true, true
			continue
		}
		var wait time.Duration
		switch {
		case err != nil:
			j.failures++
			wait = min(time.Second<<min(j.failures-1, 20), d.cfg.RoundMin)
		case len(j.fast) > 0:
			j.failures = 0
			wait, j.fast = j.fast[0], j.fast[1:]
		default:
			j.failures = 0
			wait = d.cfg.RoundMin
			if spread := d.cfg.RoundMax - d.cfg.RoundMin; spread > 0 {
				wait += rand.N(spread)
			}
		}
		if !j.wait(wait) {
			return
		}
	}
}

// Refresh implements [framework.Refresher]: the topic's next round starts
// now, or right after the one in progress. A topic not joined is a no-op.
func (d *Node) Refresh(_ context.Context, topic framework.Topic) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed()
	}
	if j := d.joins[topic]; j != nil {
		j.refreshLocked(false)
	}
	return nil
}

// refreshLookup is Refresh with a lookup-only round (no announce_peer)
// that leaves the topic's regular schedule as it was: the lookups after a
// relay request.
func (d *Node) refreshLookup(topic framework.Topic) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if j := d.joins[topic]; j != nil {
		j.refreshLocked(true)
	}
}
