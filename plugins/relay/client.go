package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// Name is the plugin's name: the transport name of relayed connections
// (Conn.Type() == "relay" on the side that was reached through a relay)
// and the discovery name.
const Name = "relay"

var (
	_ framework.Transport = (*Client)(nil)
	_ framework.Discovery = (*Client)(nil)
	_ framework.Ordered   = (*Client)(nil)
	_ framework.Starter   = (*Client)(nil)
)

// ClientConfig configures a relay [Client].
type ClientConfig struct {
	// KeyPair is the key the client proves to relays (required; the
	// swarm's own key is fine: a relay sees it anyway).
	KeyPair secure.KeyPair
	// Relays are tried first, in order: "host:port", or "key@host:port"
	// to pin the relay's public key (z-base-32, as swarmhost prints it).
	Relays []string
	// Find returns more relays ("host:port"), tried after Relays: see
	// [DHTFinder]. Nil: only Relays.
	Find func(ctx context.Context) ([]string, error)
	// Need, when set, is asked before each reservation: the client
	// reserves only while it returns true (for instance "the connectivity
	// report says we are not hole-punchable") or while a dialler's demand
	// lasts ([Client.Demand]), and gives up a reservation that is no
	// longer needed once no relayed connection crosses it (checked every
	// Retry). A true from Need counts as a demand: a reservation is given
	// up only after a full DemandWindow without need or demand. Nil:
	// always reserve.
	Need func() bool
	// DemandWindow is how long a [Client.Demand], or Need's last true,
	// keeps the client reserving (default 2 min). Only meaningful with
	// Need.
	DemandWindow time.Duration
	// Dial connects to a relay (default: a TCP dial).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Retry is the wait between rounds of attempts when no relay could be
	// reserved at, and between checks of Need (default 1 s).
	Retry time.Duration
	// KeepAlive and Timeout of the reservation session (0: the secure
	// package's defaults, 5 s and 15 s): a relay that dies silently is
	// noticed within Timeout, and the client reserves at the next one.
	KeepAlive, Timeout time.Duration
	// Clock runs retries and the session's keep-alive.
	Clock clockwork.Clock
	// Logger: nil = discard.
	Logger *slog.Logger
}

// Reservation is a client's current allocation.
type Reservation struct {
	Relay    string           // the relay's control address
	Key      secure.PublicKey // the relay's public key
	Port     int              // the allocated port on the relay's host
	Attempts int              // reservations made so far, this one included
}

// Client is the relay plugin of a swarm behind a NAT. Give the same value to
// the swarm as a transport and as a discovery ([Client.Options]):
//
//   - as a discovery, it sends the infohash of every topic the swarm
//     announces to its relay, which announces it with the client's
//     allocated port (lookups are the other discoveries' job);
//   - as a transport, it accepts the connections the relay forwards: the
//     swarm runs its Noise handshake over them end to end with the
//     dialler, and reports them with Type() "relay". It never dials.
//
// It keeps one reservation at a time, and reserves again at the next relay
// when the one it holds ends.
type Client struct {
	cfg   ClientConfig
	clock clockwork.Clock
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	started  bool
	closed   bool
	ihs      map[framework.Topic][20]byte // announced topics → infohash
	res      Reservation
	cur      *clientSession
	changed  chan struct{} // closed and replaced on every reservation change
	attempts int
	ln       *listener
	sinks    map[framework.Topic]framework.DiscoverySink
	demand   time.Time     // a dialler's demand (or Need's, see needed) lasts until then
	wake     chan struct{} // a new demand (one pending at most)
	lastTry  time.Time     // when run last started a round of attempts
	open     int           // relayed connections handed to the swarm and not closed

	relayed, backFailed atomic.Uint64
}

// ClientStats are a relay client's counters.
type ClientStats struct {
	Reserved     bool   // a reservation is held now
	Reservations uint64 // reservations made since start (at any relay)
	// Relayed counts the connections a relay forwarded that the client
	// connected back for and handed to the swarm.
	Relayed uint64
	// ConnectBackFailed counts forwarded connections lost before the swarm
	// got them (the connect-back's dial or write failed, or the listener
	// was closed or full).
	ConnectBackFailed uint64
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	st := ClientStats{Reserved: c.cur != nil, Reservations: uint64(c.attempts)}
	c.mu.Unlock()
	st.Relayed = c.relayed.Load()
	st.ConnectBackFailed = c.backFailed.Load()
	return st
}

type clientSession struct {
	ctrl *secure.Conn
	addr string // the relay's control address (connect-backs go there)
	wmu  sync.Mutex
}

func (cs *clientSession) send(typ byte, body []byte) error {
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	return writeMsg(cs.ctrl, typ, body)
}

// NewClient returns a relay client; it reserves once the swarm starts it.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.KeyPair.Public.IsZero() {
		return nil, fmt.Errorf("%w: relay client needs a key pair", framework.ErrInvalidOption)
	}
	for _, r := range cfg.Relays {
		if _, _, err := parseRelay(r); err != nil {
			return nil, err
		}
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.DemandWindow <= 0 {
		cfg.DemandWindow = 2 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, ctx: ctx, cancel: cancel,
		ihs: map[framework.Topic][20]byte{}, changed: make(chan struct{}), wake: make(chan struct{}, 1),
		sinks: map[framework.Topic]framework.DiscoverySink{}}, nil
}

// Options returns the swarm options that install c as transport and
// discovery.
func (c *Client) Options() []framework.Option {
	return []framework.Option{framework.WithTransport(c), framework.WithDiscovery(c)}
}

// parseRelay splits "key@host:port" (key optional).
func parseRelay(s string) (addr string, key secure.PublicKey, err error) {
	addr = s
	if k, a, ok := strings.Cut(s, "@"); ok {
		if key, err = secure.ParsePublicKey(k); err != nil {
			return "", key, fmt.Errorf("%w: relay %q: %w", framework.ErrInvalidOption, s, err)
		}
		addr = a
	}
	if _, p, err := net.SplitHostPort(addr); err != nil {
		return "", key, fmt.Errorf("%w: relay %q: %w", framework.ErrInvalidOption, s, err)
	} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", key, fmt.Errorf("%w: relay %q: bad port", framework.ErrInvalidOption, s)
	}
	return addr, key, nil
}

// Name returns "relay".
func (c *Client) Name() string { return Name }

// Order puts the relay transport after TCP and uTP.
func (c *Client) Order() int { return 100 }

// Start starts reserving (framework.Starter). Idempotent.
func (c *Client) Start(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return framework.ErrClosed
	}
	if c.started {
		return nil
	}
	c.started = true
	c.wg.Add(1)
	go c.run()
	return nil
}

// Reservation returns the current reservation (ok false when none), and a
// channel closed at the next change.
func (c *Client) Reservation() (r Reservation, ok bool, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.res, c.cur != nil, c.changed
}

// WaitReservation waits until the client holds a reservation made after
// the first `after` ones (0: any), or ctx ends.
func (c *Client) WaitReservation(ctx context.Context, after int) (Reservation, error) {
	for {
		r, ok, ch := c.Reservation()
		if ok && r.Attempts > after {
			return r, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Reservation{}, ctx.Err()
		}
	}
}

func (c *Client) setLocked(cs *clientSession, r Reservation) {
	c.cur, c.res = cs, r
	close(c.changed)
	c.changed = make(chan struct{})
}

// Unpunchable returns a ClientConfig.Need that is true while the
// connectivity report (a swarm's Connectivity) says the swarm is not
// hole-punchable: bootstrapped, two reporters at least (one alone cannot
// tell a symmetric NAT from a cone), and they saw it at different ports.
// Unknown connectivity counts as hole-punchable, as on the dialler's side
// (dht: no relay request then). With [Client.Demand] wired to the DHT's relay requests
// (dht.Plugin.SetOnRelayRequest), this is the policy that connects every
// pair of NAT classes and lets a relay carry only what nothing else can:
// swarmhost's default (--relay-when unpunchable).
func Unpunchable(connectivity func() framework.Connectivity) func() bool {
	return func() bool {
		c := connectivity()
		return c.Bootstrapped && c.Reporters >= 2 && !c.Holepunchable
	}
}

// Demand makes the client reserve for ClientConfig.DemandWindow from now,
// whatever Need says: a dialler that cannot hole punch to this swarm asked
// to reach it through a relay (the DHT's relay request: give Demand to
// dht.Plugin.SetOnRelayRequest). It never blocks. It starts a round of
// attempts at once only when no reservation is held and the last round
// started at least ClientConfig.Retry ago (else the next one follows
// within Retry, as always).
func (c *Client) Demand() {
	now := c.clock.Now()
	c.mu.Lock()
	c.demand = now.Add(c.cfg.DemandWindow)
	wake := c.cur == nil && now.Sub(c.lastTry) >= c.cfg.Retry
	c.mu.Unlock()
	if !wake {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// needed reports whether the client should hold a reservation. Need's
// true counts as a demand (hysteresis): a reservation is given up only
// after a full DemandWindow in which neither Need nor a dialler wanted it,
// so a connectivity report that flips cannot make it churn.
func (c *Client) needed() bool {
	if c.cfg.Need == nil {
		return true
	}
	need := c.cfg.Need()
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if need {
		if until := now.Add(c.cfg.DemandWindow); until.After(c.demand) {
			c.demand = until
		}
		return true
	}
	return now.Before(c.demand)
}

// run keeps one reservation: explicit relays first, then found ones.
func (c *Client) run() {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		if c.needed() {
			start := c.clock.Now()
			c.mu.Lock()
			c.lastTry = start
			c.mu.Unlock()
			select {
			case <-c.wake: // a demand that came before: this round serves it
			default:
			}
			if c.round() && c.clock.Since(start) >= c.cfg.Retry {
				continue // a reservation that lasted ended: replace it at once
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.clock.After(c.cfg.Retry):
		case <-c.wake:
		}
	}
}

// round tries every candidate until one reservation is made, serves it
// until it ends, and reports whether it served one.
func (c *Client) round() bool {
	// the listed relays first, without waiting for a search
	if c.tryRelays(c.cfg.Relays) {
		return true
	}
	if c.cfg.Find == nil || c.ctx.Err() != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	found, err := c.cfg.Find(ctx)
	cancel()
	if err != nil {
		c.log.Debug("relay find", "err", err)
	}
	return c.tryRelays(found)
}

// tryRelays reserves at the first of cands that grants a reservation and
// serves it; it reports whether one did.
func (c *Client) tryRelays(cands []string) bool {
	for _, cand := range cands {
		if c.ctx.Err() != nil {
			return false
		}
		addr, pin, err := parseRelay(cand)
		if err != nil {
			continue
		}
		cs, r, err := c.reserve(addr, pin)
		if err != nil {
			c.log.Debug("relay reserve", "relay", addr, "err", err)
			continue
		}
		c.serve(cs, r)
		return true
	}
	return false
}

func (c *Client) reserve(addr string, pin secure.PublicKey) (*clientSession, Reservation, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	nc, err := c.cfg.Dial(ctx, addr)
	if err != nil {
		return nil, Reservation{}, err
	}
	sc, err := secure.Client(ctx, nc, secure.Config{
		KeyPair:   c.cfg.KeyPair,
		Topic:     Topic,
		KeepAlive: c.cfg.KeepAlive,
		Timeout:   c.cfg.Timeout,
		Clock:     c.clock,
		Accept: func(remote secure.PublicKey, _ [32]byte) error {
			if remote == c.cfg.KeyPair.Public {
				// our own relay (a daemon that relays and reserves), found on the DHT
				return fmt.Errorf("%w: the relay is ourselves", secure.ErrRefused)
			}
			if !pin.IsZero() && remote != pin {
				return fmt.Errorf("%w: relay key %s is not the pinned %s", secure.ErrRefused, remote.Short(), pin.Short())
			}
			return nil
		},
	})
	if err != nil {
		nc.Close()
		return nil, Reservation{}, err
	}
	fail := func(err error) (*clientSession, Reservation, error) {
		sc.Close()
		return nil, Reservation{}, err
	}
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	defer stop()
	if err := writeMsg(sc, msgReserve, []byte{Version}); err != nil {
		return fail(err)
	}
	typ, body, err := readMsg(sc)
	if err != nil {
		return fail(err)
	}
	switch {
	case typ == msgRefused:
		return fail(fmt.Errorf("%w: %s", ErrRefused, body))
	case typ != msgReserved || len(body) != 2:
		return fail(fmt.Errorf("%w: expected RESERVED, got type %d", ErrProtocol, typ))
	}
	if !stop() {
		return fail(ctx.Err())
	}
	r := Reservation{Relay: addr, Key: sc.RemotePublicKey(), Port: int(binary.BigEndian.Uint16(body))}
	return &clientSession{ctrl: sc, addr: addr}, r, nil
}

// serve installs a reservation, announces every topic, and answers the
// relay's messages (INCOMING: connect back) until the session ends.
func (c *Client) serve(cs *clientSession, r Reservation) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cs.ctrl.Close()
		return
	}
	c.attempts++
	r.Attempts = c.attempts
	c.setLocked(cs, r)
	ihs := make([][20]byte, 0, len(c.ihs))
	for _, ih := range c.ihs {
		ihs = append(ihs, ih)
	}
	c.mu.Unlock()
	c.log.Info("relay reserved", "relay", r.Relay, "key", r.Key.Short(), "port", r.Port)
	for _, ih := range ihs {
		_ = cs.send(msgAnnounce, ih[:])
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	if c.cfg.Need != nil {
		// give the reservation up once neither Need nor a demand wants it
		// and no relayed connection crosses it
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-c.ctx.Done():
					return
				case <-c.clock.After(c.cfg.Retry):
				}
				c.mu.Lock()
				idle := c.open == 0
				c.mu.Unlock()
				if idle && !c.needed() {
					c.log.Info("relay reservation no longer needed", "relay", r.Relay)
					cs.ctrl.Close()
					return
				}
			}
		}()
	}
	for {
		typ, body, err := readMsg(cs.ctrl)
		if err != nil {
			break
		}
		switch typ {
		case msgAnnounced:
			if len(body) == 21 && body[20] != statusOK {
				c.log.Warn("relay refused an announcement", "relay", r.Relay, "status", body[20])
			}
		case msgIncoming:
			if len(body) < tokenSize {
				continue
			}
			var tok [tokenSize]byte
			copy(tok[:], body)
			from := string(body[tokenSize:])
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.connectBack(cs, r, tok, from)
			}()
		case msgRefused:
			c.log.Warn("relay ended the reservation", "relay", r.Relay, "reason", string(body))
		}
		if typ == msgRefused {
			break
		}
	}
	cs.ctrl.Close()
	close(done)
	wg.Wait()
	c.mu.Lock()
	if c.cur == cs {
		c.setLocked(nil, Reservation{Attempts: c.attempts})
	}
	c.mu.Unlock()
	c.log.Info("relay reservation ended", "relay", r.Relay)
}

// connectBack opens the connection the relay splices a dialler's onto,
// and hands it to the listener.
func (c *Client) connectBack(cs *clientSession, r Reservation, tok [tokenSize]byte, from string) {
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	nc, err := c.cfg.Dial(ctx, cs.addr)
	if err != nil {
		c.backFailed.Add(1)
		c.log.Debug("relay connect-back", "relay", cs.addr, "err", err)
		return
	}
	if _, err := nc.Write(append(connectBackMagic[:], tok[:]...)); err != nil {
		c.backFailed.Add(1)
		nc.Close()
		return
	}
	var remote net.Addr = relayAddr(from)
	if ap, err := net.ResolveTCPAddr("tcp", from); err == nil {
		remote = ap
	}
	rc := &Conn{Conn: nc, remote: remote, relay: r, onClose: func() {
		c.mu.Lock()
		c.open--
		c.mu.Unlock()
	}}
	c.mu.Lock()
	ln := c.ln
	c.open++
	c.mu.Unlock()
	if ln == nil || !ln.push(rc) {
		c.backFailed.Add(1)
		rc.Close()
		return
	}
	c.relayed.Add(1)
}

// Conn is a connection forwarded by a relay: the swarm wraps it in its
// Noise session. RemoteAddr is the dialler's address as the relay saw it.
type Conn struct {
	net.Conn
	remote  net.Addr
	relay   Reservation
	once    sync.Once
	onClose func()
}

// Close closes the connection.
func (rc *Conn) Close() error {
	err := rc.Conn.Close()
	rc.once.Do(func() {
		if rc.onClose != nil {
			rc.onClose()
		}
	})
	return err
}

// RemoteAddr returns the dialler's address as the relay saw it.
func (rc *Conn) RemoteAddr() net.Addr { return rc.remote }

// Relay returns the reservation the connection came through.
func (rc *Conn) Relay() Reservation { return rc.relay }

// CloseWrite half-closes: the dialler reads EOF and may still send.
func (rc *Conn) CloseWrite() error {
	if cw, ok := rc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

type relayAddr string

func (a relayAddr) Network() string { return "relay" }
func (a relayAddr) String() string  { return string(a) }

// Listen returns the listener of relayed connections (the port is only
// reported back: relayed connections arrive at the relay's allocation).
func (c *Client) Listen(_ context.Context, host string, port int) (framework.Listener, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, framework.ErrClosed
	}
	if c.ln != nil {
		c.ln.Close()
	}
	ip := net.ParseIP(host)
	c.ln = &listener{addr: &net.TCPAddr{IP: ip, Port: port}, ch: make(chan net.Conn, 16), done: make(chan struct{})}
	return c.ln, nil
}

// Dial fails with ErrDialUnsupported: diallers reach a relayed peer at the
// relay's address with their own transports.
func (c *Client) Dial(context.Context, framework.Peer) (net.Conn, error) {
	return nil, ErrDialUnsupported
}

// WantsPeer returns false: the relay transport never dials
// (framework.DialFilter).
func (c *Client) WantsPeer(framework.Peer) bool { return false }

// Join records the topic's infohash when announcing and sends it to the
// current relay (framework.Discovery). The relay learns the infohash,
// never the topic.
func (c *Client) Join(_ context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	if !req.Announce && !req.Lookup {
		return framework.ErrInvalidJoin
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("relay: %w", framework.ErrClosed)
	}
	ih := dht.Infohash(req.Topic)
	_, had := c.ihs[req.Topic]
	if req.Announce {
		c.ihs[req.Topic] = ih
	} else {
		delete(c.ihs, req.Topic)
	}
	c.sinks[req.Topic] = sink
	cs := c.cur
	c.mu.Unlock()
	if cs != nil {
		if req.Announce {
			_ = cs.send(msgAnnounce, ih[:])
		} else if had {
			_ = cs.send(msgUnannounce, ih[:])
		}
	}
	c.wg.Add(1)
	go func() { // a relay join has no lookup cycle: it is flushed at once
		defer c.wg.Done()
		c.mu.Lock()
		current := c.sinks[req.Topic] == sink && !c.closed
		c.mu.Unlock()
		if current { // a sink ignores calls made after its topic was left
			sink.Flushed()
			sink.Updated()
		}
	}()
	return nil
}

// Leave withdraws the topic's infohash from the relay.
func (c *Client) Leave(_ context.Context, topic framework.Topic) error {
	c.mu.Lock()
	ih, had := c.ihs[topic]
	delete(c.ihs, topic)
	delete(c.sinks, topic)
	cs := c.cur
	c.mu.Unlock()
	if had && cs != nil {
		_ = cs.send(msgUnannounce, ih[:])
	}
	return nil
}

// Close ends the reservation and stops the client. The swarm calls it as
// a discovery; a second call is a no-op.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cs := c.cur
	ln := c.ln
	c.sinks = map[framework.Topic]framework.DiscoverySink{}
	c.mu.Unlock()
	c.cancel()
	if cs != nil {
		cs.ctrl.Close()
	}
	if ln != nil {
		ln.Close()
	}
	c.wg.Wait()
	return nil
}

// listener hands relayed connections to the swarm's accept loop.
type listener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func (l *listener) push(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		for {
			select {
			case c := <-l.ch:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// DHTFinder finds relays through a DHT node: a lookup of the relay topic's
// infohash (relays announce it with their control port). Each call runs
// one lookup round, bounded by ctx. node is asked at each call (a swarm's
// DHT plugin has its node only once the swarm started: pass
// plugin.Node).
func DHTFinder(node func() *dht.Node) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		n := node()
		if n == nil {
			return nil, fmt.Errorf("%w: the dht has not started", ErrNoRelay)
		}
		s := &findSink{seen: map[string]bool{}, done: make(chan struct{})}
		if err := n.Join(ctx, framework.JoinRequest{Topic: Topic, Lookup: true}, s); err != nil {
			return nil, err
		}
		select {
		case <-s.done:
		case <-ctx.Done():
		}
		leave, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = n.Leave(leave, Topic)
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.addrs) == 0 {
			return nil, fmt.Errorf("%w: none found on the dht", ErrNoRelay)
		}
		return append([]string(nil), s.addrs...), nil
	}
}

type findSink struct {
	mu    sync.Mutex
	seen  map[string]bool
	addrs []string
	once  sync.Once
	done  chan struct{}
}

func (s *findSink) Peer(p framework.Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := p.Addr(); !s.seen[a] {
		s.seen[a] = true
		s.addrs = append(s.addrs, a)
	}
}
func (s *findSink) Flushed() { s.once.Do(func() { close(s.done) }) }
func (s *findSink) Updated() {}

// Relayed reports whether c runs through a relay: framework.Conn.Relayed,
// which both sides of a relayed session report.
func Relayed(c *framework.Conn) bool { return c.Relayed() }

// Relayed returns true: the swarm marks sessions over a relayed
// connection as relayed, on both sides (see framework.Conn.Relayed).
func (rc *Conn) Relayed() bool { return true }
