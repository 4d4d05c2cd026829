package forward

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// Defaults of [Options].
const (
	DefaultHeaderTimeout     = 10 * time.Second
	DefaultTargetDialTimeout = 5 * time.Second
	DefaultDialTimeout       = 10 * time.Second
	DefaultDialAttempts      = 3
	DefaultPeerWait          = 5 * time.Second
	DefaultRefreshInterval   = 3 * time.Second
	// DefaultSetupsPerPeer bounds the connection setups (swarm dial,
	// handshake, header and status) in flight to one peer IP at a time.
	DefaultSetupsPerPeer = 8
	// peerFailCooldown is how long a peer that failed is tried after the
	// others.
	peerFailCooldown = 30 * time.Second
)

// Errors. Test with errors.Is.
var (
	ErrInvalidService = errors.New("forward: invalid service")
	ErrDuplicate      = errors.New("forward: duplicate service")
	ErrUnknownService = errors.New("forward: unknown service")
	ErrNoPeer         = errors.New("forward: no peer known for the topic")
	ErrRefused        = errors.New("forward: peer refused the connection")
)

// Service is one TCP service forwarded over a topic. Exactly one of Serve
// and Connect is set.
type Service struct {
	Name  string          // unique within a Manager; labels logs and metrics
	Topic framework.Topic // the topic the service lives under
	// Serve (host:port) exposes this TCP address to peers of Topic: every
	// swarm connection asking for Topic is piped to a new TCP connection to
	// it.
	Serve string
	// Connect (host:port, port 0 = any) listens here: every accepted
	// connection is piped to a new swarm connection to a peer of Topic.
	Connect string
	// Allow, for a serve service, is the set of keys allowed to use it: a
	// session whose remote key is not in it (and any plaintext connection)
	// is refused before the service's address is dialled. Nil: every peer
	// of Topic may use it. [Manager.SetAllow] replaces it on a running
	// service.
	Allow *Allowlist
	// ServerKey, for a connect service, pins the key of the peer it
	// forwards to: a session to a peer proving another key (and a
	// plaintext connection) is closed before the local client's bytes are
	// sent, and the next peer is tried. Zero: any peer of Topic.
	ServerKey secure.PublicKey
	// PeerKey (connect services only; zero: any peer of Topic) is the key
	// of the one peer to reach: it is found under its peer topic
	// (framework.PeerTopic; the caller joins it with Swarm.JoinPeer), every
	// connection to it still proves Topic, which picks the serve service on
	// that peer, and a peer proving another key is refused in the
	// handshake (framework.Peer.Key).
	PeerKey secure.PublicKey
}

// Kind returns "serve" or "connect".
func (s Service) Kind() string {
	if s.Serve != "" {
		return "serve"
	}
	return "connect"
}

func (s Service) validate() error {
	if s.Name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidService)
	}
	if (s.Serve == "") == (s.Connect == "") {
		return fmt.Errorf("%w: %q: set exactly one of serve and connect", ErrInvalidService, s.Name)
	}
	if s.Serve != "" && !s.PeerKey.IsZero() {
		return fmt.Errorf("%w: %q: a peer key is for connect services", ErrInvalidService, s.Name)
	}
	addr, zeroOK := s.Serve, false
	if s.Connect != "" {
		addr, zeroOK = s.Connect, true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %q: %s address %q: %v", ErrInvalidService, s.Name, s.Kind(), addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		return fmt.Errorf("%w: %q: %s address %q: bad port %q", ErrInvalidService, s.Name, s.Kind(), addr, port)
	}
	if s.Serve != "" && host == "" {
		return fmt.Errorf("%w: %q: serve address %q has no host", ErrInvalidService, s.Name, addr)
	}
	if s.Allow != nil && s.Serve == "" {
		return fmt.Errorf("%w: %q: only a serve service has an allow list", ErrInvalidService, s.Name)
	}
	if !s.ServerKey.IsZero() && s.Connect == "" {
		return fmt.Errorf("%w: %q: only a connect service pins a server key", ErrInvalidService, s.Name)
	}
	return nil
}

// Options tunes a [Manager]. Zero values mean the defaults.
type Options struct {
	Logger *slog.Logger // default slog.Default()
	// HeaderTimeout bounds how long an inbound swarm connection may take to
	// send its header (serving side).
	HeaderTimeout time.Duration
	// TargetDialTimeout bounds the dial of a serve service's address.
	TargetDialTimeout time.Duration
	// DialTimeout bounds each attempt of the connecting side: the swarm
	// dial plus the header/status exchange.
	DialTimeout time.Duration
	// DialAttempts is how many peers an accepted connection tries, one
	// after the other, before it is closed.
	DialAttempts int
	// PeerWait is how long an accepted connection waits for a first peer of
	// its topic when none is known yet; negative: fail at once.
	PeerWait time.Duration
	// RefreshInterval is the least time between two on-demand lookups
	// ([framework.Swarm.Refresh]) of one topic, asked for by a connection
	// that knows no peer or whose every known peer failed.
	RefreshInterval time.Duration
	// SetupsPerPeer bounds the connection setups in flight to one peer IP
	// (DefaultSetupsPerPeer, the swarm's default of inbound handshakes per
	// IP): a burst of local connections waits its turn, within the
	// connection's context, instead of starting a hundred handshakes at
	// once, each slower than the handshake timeout on a busy machine. The
	// wait does not count against DialTimeout.
	SetupsPerPeer int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.TargetDialTimeout <= 0 {
		o.TargetDialTimeout = DefaultTargetDialTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.DialAttempts <= 0 {
		o.DialAttempts = DefaultDialAttempts
	}
	if o.PeerWait == 0 {
		o.PeerWait = DefaultPeerWait
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.SetupsPerPeer <= 0 {
		o.SetupsPerPeer = DefaultSetupsPerPeer
	}
	return o
}

// Metrics are a service's counters, safe to read at any time. They are kept
// per service name for the Manager's life, so they stay monotonic across a
// Remove and Add of the same name (a config reload).
type Metrics struct {
	Connections atomic.Uint64 // forwarded connections established
	Active      atomic.Int64  // forwarded connections open now
	Failed      atomic.Uint64 // connections that could not be forwarded
	BytesIn     atomic.Uint64 // bytes received from peers, written to local sockets
	BytesOut    atomic.Uint64 // bytes read from local sockets, sent to peers
	// Refusals by key, by reason (ReasonKeyNotAllowed, ReasonNoKey:
	// inbound sessions a serve service refused; ReasonServerKey: sessions
	// a connect service closed for their key). Not counted in Failed.
	RefusedKeyNotAllowed, RefusedNoKey, RefusedServerKey atomic.Uint64
}

func (m *Metrics) refuse(reason string) {
	switch reason {
	case ReasonKeyNotAllowed:
		m.RefusedKeyNotAllowed.Add(1)
	case ReasonNoKey:
		m.RefusedNoKey.Add(1)
	case ReasonServerKey:
		m.RefusedServerKey.Add(1)
	}
}

// Refusals returns the refusal counters by reason, every reason present.
func (m *Metrics) Refusals() map[string]uint64 {
	return map[string]uint64{
		ReasonKeyNotAllowed: m.RefusedKeyNotAllowed.Load(),
		ReasonNoKey:         m.RefusedNoKey.Load(),
		ReasonServerKey:     m.RefusedServerKey.Load(),
	}
}

// MetricsSnapshot is a copy of [Metrics].
type MetricsSnapshot struct {
	Connections, Failed, BytesIn, BytesOut uint64
	Active                                 int64
}

// Snapshot reads every counter.
func (m *Metrics) Snapshot() MetricsSnapshot {
	return MetricsSnapshot{
		Connections: m.Connections.Load(), Failed: m.Failed.Load(),
		BytesIn: m.BytesIn.Load(), BytesOut: m.BytesOut.Load(), Active: m.Active.Load(),
	}
}

// Manager runs forwarded services on one swarm. It owns every inbound
// connection of the swarm (it reads their header) and the client
// connections it dials itself; see the package documentation for the
// wiring. All methods are safe for concurrent use.
type Manager struct {
	sw     *framework.Swarm
	opt    Options
	log    *slog.Logger
	sub    *framework.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // router and inbound connections before routing

	mu           sync.Mutex
	closed       bool
	services     map[string]*service
	serving      map[framework.Topic]*service
	metrics      map[string]*Metrics
	peers        map[framework.Topic]*peerSet
	peersChanged chan struct{} // closed and replaced when a peer is added
	pending      map[*framework.Conn]struct{}
	refreshed    map[framework.Topic]time.Time // last on-demand lookup
	setups       map[string]*setupSlots        // peer IP → setups in flight
}

// New returns a manager for sw and starts routing its events at once:
// create it before joining any topic, so that it sees every peer found.
func New(sw *framework.Swarm, opt Options) *Manager {
	opt = opt.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		sw: sw, opt: opt, log: opt.Logger.With("component", "forward"),
		sub: sw.Subscribe(), ctx: ctx, cancel: cancel,
		services: map[string]*service{}, serving: map[framework.Topic]*service{},
		metrics: map[string]*Metrics{}, peers: map[framework.Topic]*peerSet{},
		peersChanged: make(chan struct{}), pending: map[*framework.Conn]struct{}{},
		setups:    map[string]*setupSlots{},
		refreshed: map[framework.Topic]time.Time{},
	}
	m.wg.Add(1)
	go m.route()
	return m
}

// route consumes the swarm's events: inbound connections are served,
// peers are remembered per topic.
func (m *Manager) route() {
	defer m.wg.Done()
	for ev := range m.sub.C() {
		switch e := ev.(type) {
		case *framework.ConnectionEvent:
			if !e.Conn.Client() {
				m.inbound(e.Conn)
			}
		case *framework.PeerEvent:
			m.AddPeer(e.Peer)
		}
	}
}

// Add starts a service. A connect service's listener is bound when Add
// returns. Names are unique, and so are the topics of serve services.
func (m *Manager) Add(ctx context.Context, s Service) error {
	if err := s.validate(); err != nil {
		return err
	}
	var ln net.Listener
	if s.Connect != "" {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", s.Connect)
		if err != nil {
			return fmt.Errorf("service %q: %w", s.Name, err)
		}
		ln = l
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fail := func(err error) error {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	if m.closed {
		return fail(framework.ErrClosed)
	}
	if _, ok := m.services[s.Name]; ok {
		return fail(fmt.Errorf("%w: name %q", ErrDuplicate, s.Name))
	}
	if o := m.serving[s.Topic]; s.Serve != "" && o != nil {
		return fail(fmt.Errorf("%w: %q serves topic %s already served by %q", ErrDuplicate, s.Name, s.Topic.Short(), o.Name))
	}
	met := m.metrics[s.Name]
	if met == nil {
		met = new(Metrics)
		m.metrics[s.Name] = met
	}
	sctx, cancel := context.WithCancel(m.ctx)
	svc := &service{
		Service: s, m: m, metrics: met, ln: ln, ctx: sctx, cancel: cancel,
		log:   m.log.With("service", s.Name, "topic", s.Topic.Short()),
		links: map[*link]struct{}{},
	}
	svc.allow.Store(s.Allow)
	m.services[s.Name] = svc
	if s.Serve != "" {
		m.serving[s.Topic] = svc
	} else {
		svc.wg.Add(1)
		go svc.acceptLoop()
	}
	svc.log.Info("service added", append([]any{"kind", s.Kind(), "addr", svc.addr()}, s.accessAttrs()...)...)
	return nil
}

// Remove stops a service: a connect service stops listening, a serve
// service takes no new connection, and the service's own forwarded
// connections are closed. Other services and their connections are not
// touched. It returns once the service's goroutines ended.
func (m *Manager) Remove(name string) error {
	m.mu.Lock()
	svc := m.services[name]
	if svc == nil {
		m.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownService, name)
	}
	delete(m.services, name)
	if m.serving[svc.Topic] == svc {
		delete(m.serving, svc.Topic)
	}
	m.mu.Unlock()
	svc.stop()
	svc.log.Info("service removed")
	return nil
}

// Services returns the running services sorted by name.
func (m *Manager) Services() []Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Service, 0, len(m.services))
	for _, s := range m.services {
		svc := s.Service
		svc.Allow = s.allow.Load()
		out = append(out, svc)
	}
	slices.SortFunc(out, func(a, b Service) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Addr returns the bound listen address of a running connect service
// (useful with port 0), or nil.
func (m *Manager) Addr(name string) net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.services[name]; s != nil && s.ln != nil {
		return s.ln.Addr()
	}
	return nil
}

// Metrics returns the counters of the service name (running or removed),
// or nil if no service of that name was ever added.
func (m *Manager) Metrics(name string) *Metrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.metrics[name]
}

// AllMetrics returns the counters of every service ever added, by name.
func (m *Manager) AllMetrics() map[string]*Metrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*Metrics, len(m.metrics))
	for k, v := range m.metrics {
		out[k] = v
	}
	return out
}

// Close stops every service, closes every forwarded connection and every
// inbound connection of the swarm (forwarded, still sending its header, or
// not routed yet), stops routing and waits for all of it. The swarm itself
// stays open, but inbound connections that arrive later are not read:
// close the swarm next. Later calls return ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return framework.ErrClosed
	}
	m.closed = true
	svcs := make([]*service, 0, len(m.services))
	for _, s := range m.services {
		svcs = append(svcs, s)
	}
	m.services = map[string]*service{}
	m.serving = map[framework.Topic]*service{}
	pending := make([]*framework.Conn, 0, len(m.pending))
	for c := range m.pending {
		pending = append(pending, c)
	}
	m.mu.Unlock()
	m.cancel()
	m.sub.Close()
	for _, c := range pending {
		c.Close()
	}
	for _, s := range svcs {
		s.stop()
	}
	m.wg.Wait()
	// inbound connections whose event the router had not reached yet are
	// the manager's too: nobody else reads them
	for _, c := range m.sw.Connections() {
		if !c.Client() {
			c.Close()
		}
	}
	return nil
}

// service is a running Service.
type service struct {
	Service
	m       *Manager
	metrics *Metrics
	log     *slog.Logger
	ln      net.Listener // connect services
	allow   atomic.Pointer[Allowlist]
	ctx     context.Context
	cancel  context.CancelFunc

	mu     sync.Mutex
	closed bool
	links  map[*link]struct{}
	wg     sync.WaitGroup // accept loop and forwarded connections
}

func (s *service) addr() string {
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.Serve
}

// track registers a forwarded connection; false once the service stopped.
func (s *service) track(l *link) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.links[l] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *service) untrack(l *link) {
	s.mu.Lock()
	delete(s.links, l)
	s.mu.Unlock()
	s.wg.Done()
}

// stop closes the listener and every forwarded connection, then waits.
func (s *service) stop() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	links := make([]*link, 0, len(s.links))
	for l := range s.links {
		links = append(links, l)
	}
	s.mu.Unlock()
	s.cancel()
	if s.ln != nil {
		s.ln.Close()
	}
	for _, l := range links {
		l.close()
	}
	s.wg.Wait()
}

// forward pipes an established link and keeps the counters.
func (s *service) forward(l *link) {
	s.metrics.Connections.Add(1)
	s.metrics.Active.Add(1)
	defer s.metrics.Active.Add(-1)
	l.pipe(&s.metrics.BytesIn, &s.metrics.BytesOut)
}
