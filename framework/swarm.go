package framework

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
)

// Swarm finds and connects to peers of the topics it joins. Create one with
// [New], or through fx with package swarmfx. All methods are safe for concurrent use.
type Swarm struct {
	cfg         config
	log         *slog.Logger
	transports  []Transport
	discoveries []Discovery
	validators  []PeerValidator
	bus         *bus

	joinMu sync.Mutex // serialises Join, Leave and Close's discovery calls

	mu        sync.Mutex
	started   bool
	starters  int // plugins (in startPlugins' order) whose Starter.Start succeeded
	closed    bool
	port      int
	listeners []Listener
	udp       *udpmux.Mux // the shared UDP socket, when a plugin uses it
	topics    map[Topic]*joined
	joinGen   uint64 // the last join generation handed out: every Join takes a new one
	peers     map[string]*entry
	queue     queue
	conns     map[*Conn]struct{}
	clients   int     // open client connections
	servers   int     // open server connections
	dialing   int     // dials in flight (queue and manual)
	reserve   int     // maxPeers slots inbound connections cannot take
	silent    []*Conn // unproven inbound connections, oldest first
	// inbound connections closed as unproven, and displaced
	unprovenClosed, displaced uint64
	dedup                     map[string]*Conn
	key                       secure.KeyPair
	byKey                     map[secure.PublicKey]*Conn      // the session kept per remote key
	claims                    map[secure.PublicKey][]*hsState // sessions accepted in their handshake, not yet admitted (session.go)
	srvClaims                 int                             // of which inbound: they count as servers
	bannedKeys                map[secure.PublicKey]time.Time  // until (zero: forever)
	pins                      map[Topic]secure.PublicKey      // JoinPeer's topics and their keys, ever joined
	hs                        HandshakeStats
	hsInflight                int                     // inbound handshakes in progress
	hsPending                 map[string][]*pendingHS // of which per source IP (/64), oldest first
	hsSeq                     uint64                  // numbers pendingHS in arrival order
	changed                   chan struct{}           // closed and replaced on every state change
	intake                    []found
	admitting                 bool // the intake loop is validating a peer
	closeCh                   chan struct{}
	b                         bounds // discovery and dial limits' bookkeeping

	wake chan struct{} // wakes the dialler
	// a wake-up was sent to the dialler and its pass has not run yet
	// (guarded by mu; see AwaitQuiet in export_test.go)
	wakePending bool
	intakeCh    chan struct{} // wakes the intake loop
	wg          sync.WaitGroup
	dialCtx     context.Context
	cancel      context.CancelFunc
}

// joined is the state of one joined topic.
type joined struct {
	status  JoinStatus
	self    bool // the swarm's own peer topic, joined by syncFindable
	gen     uint64
	flushed chan struct{}
	done    chan struct{}      // closed when this join ends: left, replaced, or the swarm closed
	next    *joined            // the join that replaced this one (set before done closes)
	pending map[Discovery]bool // discoveries that have not flushed yet
}

// end closes j's done signal; next is the replacing join, nil when the
// topic is left. Caller holds s.mu.
func (j *joined) end(next *joined) {
	j.next = next
	close(j.done)
}

// found is a peer reported by a discovery, waiting for validation.
type found struct {
	peer Peer
	gen  uint64
}

// New builds a swarm from options. It does not listen yet: call
// [Swarm.Start] (the root package's constructor and swarmfx do).
func New(opts ...Option) (*Swarm, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.transports) == 0 {
		cfg.transports = cfg.fallbackTransports
	}
	if len(cfg.transports) == 0 {
		return nil, fmt.Errorf("%w: give at least one with WithTransport", ErrNoTransport)
	}
	if err := uniqueNames("transport", cfg.transports); err != nil {
		return nil, err
	}
	if err := uniqueNames("discovery", cfg.discoveries); err != nil {
		return nil, err
	}
	if cfg.dialReserve >= cfg.maxPeers {
		return nil, invalid("dial reserve %d leaves no slot of maxPeers %d for inbound connections", cfg.dialReserve, cfg.maxPeers)
	}
	key := cfg.keyPair
	if key == nil {
		kp, err := secure.GenerateKeyPair()
		if err != nil {
			return nil, fmt.Errorf("generate the swarm's key pair: %w", err)
		}
		key = &kp
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Swarm{
		key:         *key,
		byKey:       make(map[secure.PublicKey]*Conn),
		claims:      make(map[secure.PublicKey][]*hsState),
		pins:        make(map[Topic]secure.PublicKey),
		bannedKeys:  make(map[secure.PublicKey]time.Time),
		hsPending:   make(map[string][]*pendingHS),
		cfg:         cfg,
		log:         cfg.logger.With("component", "dwebswarm"),
		transports:  sortPlugins(cfg.transports),
		discoveries: sortPlugins(cfg.discoveries),
		validators:  slices.Clone(cfg.validators),
		bus:         newBus(),
		topics:      make(map[Topic]*joined),
		peers:       make(map[string]*entry),
		conns:       make(map[*Conn]struct{}),
		dedup:       make(map[string]*Conn),
		b:           newBounds(),
		changed:     make(chan struct{}),
		closeCh:     make(chan struct{}),
		wake:        make(chan struct{}, 1),
		intakeCh:    make(chan struct{}, 1),
		dialCtx:     ctx,
		cancel:      cancel,
		reserve:     cfg.reserve(),
	}
	return s, nil
}

type named interface{ Name() string }

func order(v any) int {
	if o, ok := v.(Ordered); ok {
		return o.Order()
	}
	return 0
}

// sortPlugins orders plugins by (Order, Name): fx value groups arrive shuffled.
func sortPlugins[T named](in []T) []T {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b T) int {
		return cmp.Or(cmp.Compare(order(a), order(b)), cmp.Compare(a.Name(), b.Name()))
	})
	return out
}

func uniqueNames[T named](kind string, in []T) error {
	seen := map[string]bool{}
	for _, p := range in {
		n := p.Name()
		if n == "" {
			return fmt.Errorf("%w: a %s has an empty name", ErrInvalidOption, kind)
		}
		if seen[n] {
			return fmt.Errorf("%w: two %ss named %q", ErrInvalidOption, kind, n)
		}
		seen[n] = true
	}
	return nil
}

// Start starts the plugins that are a [Starter] (in the calling goroutine),
// binds the listeners (port choice: the exact port if one was given, else
// the preferred port, +1, +2, then a random port) and starts the swarm's
// loops. It is called once (again only after it failed).
func (s *Swarm) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.started {
		s.mu.Unlock()
		return fmt.Errorf("%w: swarm already started", ErrInvalidOption)
	}
	s.started = true
	s.mu.Unlock()

	err := s.startPlugins(ctx)
	var ls []Listener
	var mux *udpmux.Mux
	var port int
	if err == nil {
		ls, mux, port, err = s.listen(ctx)
	}
	if err == nil && mux != nil {
		err = s.shareUDP(mux)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			mux.Close()
		}
	}
	if err != nil {
		s.mu.Lock()
		s.started = false
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.port = port
	s.listeners = ls
	s.udp = mux
	s.mu.Unlock()
	for i, l := range ls {
		s.wg.Add(1)
		go s.acceptLoop(l, s.transports[i])
	}
	s.wg.Add(2)
	go s.dialLoop()
	go s.intakeLoop()
	s.log.Debug("swarm started", "port", port, "transports", len(s.transports), "discoveries", len(s.discoveries))
	if s.cfg.findable == FindableAlways {
		s.joinMu.Lock()
		s.syncFindable(ctx)
		s.joinMu.Unlock()
	}
	return nil
}

// startPlugins calls Start on every plugin that is a [Starter]: the
// transports, then the discoveries, then the validators. It skips the ones
// an earlier, failed Swarm.Start started already.
func (s *Swarm) startPlugins(ctx context.Context) error {
	plugins := make([]named, 0, len(s.transports)+len(s.discoveries)+len(s.validators))
	for _, t := range s.transports {
		plugins = append(plugins, t)
	}
	for _, d := range s.discoveries {
		plugins = append(plugins, d)
	}
	for _, v := range s.validators {
		plugins = append(plugins, v)
	}
	s.mu.Lock()
	done := s.starters
	s.mu.Unlock()
	for _, p := range plugins[done:] {
		if st, ok := As[Starter](p); ok {
			if err := st.Start(ctx); err != nil {
				return fmt.Errorf("%s: start: %w", p.Name(), err)
			}
		}
		s.mu.Lock()
		s.starters++
		s.mu.Unlock()
	}
	return nil
}

// Port returns the listening port (0 before Start).
func (s *Swarm) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// Subscribe returns a subscription to every event from now on (subscribe
// before Join or Connect not to miss the first ones). Read its channel
// until it closes, at Close after the last event, or Close it. By default
// it never drops an event and so holds every unread one in memory; pass
// [BufferSize] for a bounded subscription. Subscribing after Close returns
// an ended subscription: its C is closed at once.
func (s *Swarm) Subscribe(opts ...SubscribeOption) *Subscription { return s.bus.subscribe(opts...) }

// Connections returns the open connections (seed: swarm.connections).
func (s *Swarm) Connections() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Stats is a snapshot of the swarm's counters.
type Stats struct {
	Topics        int // joined topics (as Swarm.Topics lists them)
	Known         int // peers known to the queue (any state)
	Queued        int // peers ready to be dialled
	Dialing       int // dials in flight
	Clients       int // open client connections
	Servers       int // open server connections
	Banned        int // banned peers remembered
	Unresponsive  int // unresponsive peers remembered
	Subscriptions int // open event subscriptions
	// Unproven is the number of open inbound connections that have not
	// proven themselves yet (no Read returned a byte).
	Unproven int
	// UnprovenClosed counts inbound connections closed at the unproven
	// timeout; Displaced those that gave way to a newer inbound connection
	// at a limit (see WithUnprovenTimeout, WithDialReserve).
	UnprovenClosed, Displaced uint64
	// DialReserve is the number of maxPeers slots kept for our own dials.
	DialReserve int
	// Handshakes counts the session handshakes (all zero in plaintext mode).
	Handshakes HandshakeStats
	// Bounds counts what the discovery and dial limits held back
	// ([DiscoveryLimits], [DialLimits], the private-address rule).
	Bounds BoundStats
}

// Stats returns a snapshot of the swarm's counters.
func (s *Swarm) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statsLocked()
}

// statsLocked returns a snapshot of the counters. Caller holds s.mu.
func (s *Swarm) statsLocked() Stats {
	st := Stats{Topics: len(s.topics), Known: len(s.peers), Queued: s.queue.len(), Dialing: s.dialing, Clients: s.clients, Servers: s.servers,
		Unproven: len(s.silent), UnprovenClosed: s.unprovenClosed, Displaced: s.displaced, DialReserve: s.reserve, Bounds: s.b.st, Handshakes: s.hs}
	st.Handshakes.InProgress = s.hsInflight
	if j := s.topics[PeerTopic(s.key.Public)]; j != nil && j.self {
		st.Topics-- // as Topics: the own peer topic is not listed
	}
	st.Bounds.NeverConnected = s.b.freshTotal
	for _, e := range s.peers {
		switch e.state {
		case stBanned:
			st.Banned++
		case stUnresponsive:
			st.Unresponsive++
		}
	}
	s.bus.mu.Lock()
	st.Subscriptions = len(s.bus.subs)
	s.bus.mu.Unlock()
	return st
}

// notifyLocked wakes everyone waiting for a state change. Caller holds s.mu.
func (s *Swarm) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wakeDialler makes the dialler run a pass. Caller holds s.mu.
func (s *Swarm) wakeDialler() {
	s.wakePending = true
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// waitFor blocks until cond (called with s.mu held) is true, ctx is done or
// the swarm closes.
func (s *Swarm) waitFor(ctx context.Context, cond func() (bool, error)) error {
	for {
		s.mu.Lock()
		ok, err := cond()
		ch := s.changed
		closed := s.closed
		s.mu.Unlock()
		if ok || err != nil {
			return err
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close un-announces every topic, stops discovery, closes every connection
// (each fires its disconnection event), the listeners and the discoveries,
// then ends every subscription. Later calls return [ErrClosed]; so do
// Join, Leave, Connect, Flush and Flushed, while Status answers not ok and
// Topics is empty.
func (s *Swarm) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.closeCh)
	s.cancel()
	topics := make([]Topic, 0, len(s.topics))
	for t, j := range s.topics {
		topics = append(topics, t)
		j.end(nil)
	}
	clear(s.topics) // Status and Topics answer as for a swarm that joined nothing
	for _, e := range s.peers {
		s.stopTimer(e)
		e.gen++
	}
	if s.b.timer != nil {
		s.b.timer.Stop()
		s.b.timer = nil
	}
	listeners := s.listeners
	s.notifyLocked()
	s.mu.Unlock()

	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDiscoveryCallTimeout)
	defer cancel()
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	for _, d := range s.discoveries {
		for _, t := range topics {
			if err := d.Leave(ctx, t); err != nil {
				errs = append(errs, fmt.Errorf("%s: leave %s: %w", d.Name(), t.Short(), err))
			}
		}
		if err := d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: close: %w", d.Name(), err))
		}
	}
	for _, l := range listeners {
		if err := l.Close(); err != nil && !errors.Is(err, netErrClosed) {
			errs = append(errs, err)
		}
	}
	s.wg.Wait() // accept, dial, intake loops and dials in flight
	for _, c := range s.Connections() {
		c.closeWith(ErrClosed)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
	for _, t := range s.transports {
		if d, ok := As[Drainer](t); ok {
			if err := d.Drain(dctx); err != nil {
				s.log.Warn("transport did not drain", "transport", t.Name(), "err", err)
			}
		}
	}
	dcancel()
	s.mu.Lock()
	mux := s.udp
	s.mu.Unlock()
	if mux != nil {
		if err := mux.Close(); err != nil && !errors.Is(err, netErrClosed) {
			errs = append(errs, fmt.Errorf("udp socket: %w", err))
		}
	}
	// plugins with resources of their own (uTP's read loop, out-of-process
	// plugins' processes) are closed with the swarm
	for _, t := range s.transports {
		if c, ok := t.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("transport %s: close: %w", t.Name(), err))
			}
		}
	}
	for _, v := range s.validators {
		if c, ok := v.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("validator %s: close: %w", v.Name(), err))
			}
		}
	}
	s.bus.close()
	return errors.Join(errs...)
}

// Connectivity reports how reachable the swarm is (hyperswarm v2's
// connectivity() and holepunchable()): bound, bootstrapped, and our public
// address as the DHT saw it.
func (s *Swarm) Connectivity() Connectivity {
	s.mu.Lock()
	bound := s.started && !s.closed
	s.mu.Unlock()
	c := Connectivity{}
	for _, d := range s.discoveries {
		if r, ok := As[ConnectivityReporter](d); ok {
			c = r.Connectivity()
			break
		}
	}
	c.Bound = bound
	if !bound {
		c.Holepunchable = false
	}
	return c
}
