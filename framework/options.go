package framework

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"github.com/jonboulle/clockwork"
)

// Forever, as a forget duration, means "never forget".
const Forever time.Duration = math.MaxInt64

// Defaults of the seed (dwebswarm v3 / hyperswarm v2).
const (
	DefaultMaxPeers             = 24
	DefaultPreferredPort        = 49737
	DefaultConnectTimeout       = 10 * time.Second
	DefaultForgetUnresponsive   = 7500 * time.Millisecond
	DefaultDiscoveryCallTimeout = 10 * time.Second
	DefaultDrainTimeout         = 5 * time.Second
)

// DefaultRequeue is the seed's default requeue schedule.
func DefaultRequeue() []time.Duration {
	return []time.Duration{1000 * time.Millisecond, 5000 * time.Millisecond, 15000 * time.Millisecond}
}

// config holds every swarm option. The zero value is not used; see defaultConfig.
type config struct {
	maxPeers           int
	maxClientSockets   int // 0 = unlimited, -1 = never dial
	maxServerSockets   int // 0 = unlimited, -1 = refuse inbound
	requeue            []time.Duration
	forgetUnresponsive time.Duration
	forgetBanned       time.Duration
	multiplex          bool
	port               int // exact port, 0 = none
	preferredPort      int
	listenHost         string
	connectTimeout     time.Duration
	attemptDelay       time.Duration // Happy Eyeballs: see WithConnectionAttemptDelay
	validators         []PeerValidator
	discoveries        []Discovery
	transports         []Transport
	fallbackTransports []Transport
	handler            func(*Conn)
	clock              clockwork.Clock
	logger             *slog.Logger
	unprovenTimeout    time.Duration   // 0: never close silent inbound connections
	dialReserve        int             // -1: automatic (see WithDialReserve)
	discLimits         DiscoveryLimits // see WithDiscoveryLimits
	dialLimits         DialLimits      // see WithDialLimits
	allowPrivate       bool            // see WithAllowPrivatePeers
	privatePrefixes    []netip.Prefix  // see WithPrivatePeerPrefixes
}

func defaultConfig() config {
	return config{
		maxPeers:           DefaultMaxPeers,
		requeue:            DefaultRequeue(),
		forgetUnresponsive: DefaultForgetUnresponsive,
		forgetBanned:       Forever,
		preferredPort:      DefaultPreferredPort,
		connectTimeout:     DefaultConnectTimeout,
		attemptDelay:       DefaultConnectionAttemptDelay,
		clock:              clockwork.NewRealClock(),
		logger:             slog.Default(),
		unprovenTimeout:    DefaultUnprovenTimeout,
		dialReserve:        -1,
		discLimits:         DefaultDiscoveryLimits(),
		dialLimits:         DefaultDialLimits(),
	}
}

// Option configures a [Swarm]. Options are applied in order; an invalid value
// makes [New] fail with an error wrapping [ErrInvalidOption].
type Option func(*config) error

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
}

// WithMaxPeers caps the connections (client + server) of the swarm
// (seed: maxPeers, default 24). At the cap no new dials happen and inbound
// connections are refused. n must be at least 1.
func WithMaxPeers(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalid("maxPeers %d: must be at least 1", n)
		}
		c.maxPeers = n
		return nil
	}
}

// WithMaxClientSockets caps the connections this swarm dials
// (seed: maxClientSockets, default unlimited). 0 means unlimited, -1 means the
// swarm never dials on its own.
func WithMaxClientSockets(n int) Option {
	return func(c *config) error {
		if n < -1 {
			return invalid("maxClientSockets %d: must be -1, 0 (unlimited) or positive", n)
		}
		c.maxClientSockets = n
		return nil
	}
}

// WithMaxServerSockets caps inbound connections (seed: maxServerSockets,
// default unlimited). As in the seed, 0 means unlimited and -1 refuses every
// inbound connection.
func WithMaxServerSockets(n int) Option {
	return func(c *config) error {
		if n < -1 {
			return invalid("maxServerSockets %d: must be -1 (refuse), 0 (unlimited) or positive", n)
		}
		c.maxServerSockets = n
		return nil
	}
}

// WithRequeue sets the retry schedule (seed: queue.requeue, default
// [1s 5s 15s]): after the n-th failed dial or dropped client connection the
// peer is retried after schedule[n-1]; past the end it is unresponsive.
// Every step must be positive; an empty schedule never retries.
func WithRequeue(schedule ...time.Duration) Option {
	return func(c *config) error {
		for i, d := range schedule {
			if d <= 0 {
				return invalid("requeue[%d] = %v: must be positive", i, d)
			}
		}
		c.requeue = append([]time.Duration(nil), schedule...)
		return nil
	}
}

// WithForgetUnresponsive sets how long an unresponsive peer is remembered
// (and ignored by discovery) before it counts as fresh again
// (seed: queue.forget.unresponsive, default 7.5 s). Forever never forgets.
func WithForgetUnresponsive(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("forget.unresponsive %v: must be positive", d)
		}
		c.forgetUnresponsive = d
		return nil
	}
}

// WithForgetBanned sets how long a banned peer stays banned
// (seed: queue.forget.banned, default Forever).
func WithForgetBanned(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("forget.banned %v: must be positive", d)
		}
		c.forgetBanned = d
		return nil
	}
}

// WithMultiplex reuses one connection per peer address across topics
// (seed: queue.multiplex, default false).
func WithMultiplex(on bool) Option {
	return func(c *config) error { c.multiplex = on; return nil }
}

// WithPort listens on exactly this port; [Swarm.Start] fails with
// [ErrPortInUse] if it is taken. 0 restores the default port choice.
func WithPort(port int) Option {
	return func(c *config) error {
		if port < 0 || port > 65535 {
			return invalid("port %d out of range 0-65535", port)
		}
		c.port = port
		return nil
	}
}

// WithPreferredPort sets the first port tried when no exact port is given
// (default 49737); then +1, +2, then a random port. 0 goes straight to a
// random port.
func WithPreferredPort(port int) Option {
	return func(c *config) error {
		if port < 0 || port > 65535 {
			return invalid("preferred port %d out of range 0-65535", port)
		}
		c.preferredPort = port
		return nil
	}
}

// WithListenHost sets the address listeners bind (default "": all).
// Tests and demos use "127.0.0.1".
func WithListenHost(host string) Option {
	return func(c *config) error { c.listenHost = host; return nil }
}

// WithConnectTimeout bounds each dial (default 10 s).
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("connect timeout %v: must be positive", d)
		}
		c.connectTimeout = d
		return nil
	}
}

// WithValidatePeer adds a filter consulted before any dial (seed:
// validatePeer). Returning false rejects the peer.
func WithValidatePeer(fn func(Peer) bool) Option {
	return func(c *config) error {
		if fn == nil {
			return invalid("validatePeer is nil")
		}
		c.validators = append(c.validators, ValidatorFunc(func(p Peer) error {
			if fn(p) {
				return nil
			}
			return fmt.Errorf("%w by validatePeer", ErrRejected)
		}))
		return nil
	}
}

// WithValidators appends validators; they run in the order given, after
// those already configured, and the first rejection wins.
func WithValidators(v ...PeerValidator) Option {
	return func(c *config) error {
		for _, x := range v {
			if x == nil {
				return invalid("nil validator")
			}
		}
		c.validators = append(c.validators, v...)
		return nil
	}
}

// WithDiscovery adds discoveries.
func WithDiscovery(d ...Discovery) Option {
	return func(c *config) error {
		for _, x := range d {
			if x == nil {
				return invalid("nil discovery")
			}
		}
		c.discoveries = append(c.discoveries, d...)
		return nil
	}
}

// WithTransport adds transports. At least one is required.
func WithTransport(t ...Transport) Option {
	return func(c *config) error {
		for _, x := range t {
			if x == nil {
				return invalid("nil transport")
			}
		}
		c.transports = append(c.transports, t...)
		return nil
	}
}

// WithDefaultTransport sets the transports used when no WithTransport
// option gives any (the root package uses it for TCP).
func WithDefaultTransport(t ...Transport) Option {
	return func(c *config) error {
		c.fallbackTransports = append([]Transport(nil), t...)
		return nil
	}
}

// OptionError returns an option that makes New fail with err; option
// constructors that can fail use it.
func OptionError(err error) Option {
	return func(*config) error { return err }
}

// WithConnectionHandler calls fn in a new goroutine for every new connection,
// like net/http calls a handler; it is the simplest way to use the swarm.
// Events are also available through [Swarm.Subscribe].
func WithConnectionHandler(fn func(*Conn)) Option {
	return func(c *config) error { c.handler = fn; return nil }
}

// WithClock replaces the clock that drives requeue and forget timers and
// the connection attempt delay between transports (tests use a fake clock).
func WithClock(clk clockwork.Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return invalid("nil clock")
		}
		c.clock = clk
		return nil
	}
}

// WithLogger sets the structured logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalid("nil logger")
		}
		c.logger = l
		return nil
	}
}

// DefaultUnprovenTimeout is how long an inbound connection may stay silent
// before the swarm closes it (see [WithUnprovenTimeout]).
const DefaultUnprovenTimeout = 10 * time.Second

// WithUnprovenTimeout sets how long an inbound connection may stay
// unproven (default [DefaultUnprovenTimeout]): it is proven once a Read on
// it returned at least one byte, i.e. once the peer sent something and the
// user read it. An inbound connection still unproven after d is closed with
// [ReasonUnproven] (Err wraps [ErrUnproven]), so that idle sockets cannot
// hold the swarm's slots. Handlers should start reading at once, as they do
// for a handshake. The timeout runs on the swarm's clock ([WithClock]).
// 0 never closes a silent connection (silent ones still give way to newer
// inbound connections at the limits, see [WithDialReserve]). d must not be
// negative.
func WithUnprovenTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalid("unproven timeout %v: must be 0 (never) or positive", d)
		}
		c.unprovenTimeout = d
		return nil
	}
}

// Defaults of [DiscoveryLimits]: what the swarm takes from discovery, so
// that its memory stays bounded whatever a discovery reports (a poisoned
// DHT can answer with thousands of values per reply).
const (
	// DefaultPeersPerCycle caps the peers taken from one discovery for one
	// topic per discovery cycle (between two Updated calls of its sink).
	DefaultPeersPerCycle = 1024
	// DefaultPeersPerReferrer caps, within a cycle, the peers taken that
	// one referrer IP (the DHT node that answered) reported: about one
	// honest get_peers reply.
	DefaultPeersPerReferrer = 64
	// DefaultKnownPerTopic caps the never-connected peers known per topic.
	DefaultKnownPerTopic = 256
	// DefaultKnownTotal caps the never-connected peers known in total.
	DefaultKnownTotal = 4096
	// DefaultPortsPerIP caps the ports of one IP (IPv6: one /64) known per
	// topic, and the distinct ports of one IP dialled per DialPortWindow.
	DefaultPortsPerIP = 4
	// DefaultPendingPeers caps the reported peers waiting for validation,
	// all topics together.
	DefaultPendingPeers = 4096
)

// DiscoveryLimits bounds what the swarm takes from its discoveries (see
// [WithDiscoveryLimits]). A zero field takes its default; a negative one
// means unlimited.
type DiscoveryLimits struct {
	// PeersPerCycle: peers taken per (discovery, topic) per cycle; the
	// rest of the cycle's reports are dropped (DefaultPeersPerCycle).
	PeersPerCycle int
	// PeersPerReferrer: of those, peers with the same referrer IP
	// (DefaultPeersPerReferrer). Peers without a referrer only count
	// toward PeersPerCycle.
	PeersPerReferrer int
	// KnownPerTopic and KnownTotal cap the peers that never connected
	// (DefaultKnownPerTopic, DefaultKnownTotal). At a cap a new peer evicts
	// the least useful never-connected one: unresponsive first, then
	// waiting for a retry, then ready; the most failed, then the oldest.
	// Peers being dialled, connected, proven or banned are never evicted;
	// when nothing can be evicted the new peer is dropped.
	KnownPerTopic, KnownTotal int
	// PortsPerIP: ports of one IP address (IPv6: one /64) known per topic
	// (DefaultPortsPerIP); a peer at a further port is dropped.
	PortsPerIP int
	// Pending: reported peers waiting for validation (DefaultPendingPeers).
	Pending int
}

// DefaultDiscoveryLimits returns the default discovery limits.
func DefaultDiscoveryLimits() DiscoveryLimits {
	return DiscoveryLimits{
		PeersPerCycle:    DefaultPeersPerCycle,
		PeersPerReferrer: DefaultPeersPerReferrer,
		KnownPerTopic:    DefaultKnownPerTopic,
		KnownTotal:       DefaultKnownTotal,
		PortsPerIP:       DefaultPortsPerIP,
		Pending:          DefaultPendingPeers,
	}
}

// WithDiscoveryLimits sets the discovery limits (default
// [DefaultDiscoveryLimits]): zero fields keep their default, negative ones
// are unlimited.
func WithDiscoveryLimits(l DiscoveryLimits) Option {
	return func(c *config) error {
		d := DefaultDiscoveryLimits()
		c.discLimits = DiscoveryLimits{
			PeersPerCycle:    limitOr(l.PeersPerCycle, d.PeersPerCycle),
			PeersPerReferrer: limitOr(l.PeersPerReferrer, d.PeersPerReferrer),
			KnownPerTopic:    limitOr(l.KnownPerTopic, d.KnownPerTopic),
			KnownTotal:       limitOr(l.KnownTotal, d.KnownTotal),
			PortsPerIP:       limitOr(l.PortsPerIP, d.PortsPerIP),
			Pending:          limitOr(l.Pending, d.Pending),
		}
		return nil
	}
}

// WithDialReserve sets how many of the maxPeers slots inbound connections
// may never take, so that connections aimed at the swarm cannot stop it
// dialling out: inbound connections are refused once maxPeers - n of them
// are open (limit "inboundShare"). The default, -1, reserves
// max(1, maxPeers/4) slots (6 of the default 24), none when maxPeers is 1
// or the swarm never dials (maxClientSockets -1), and at most
// maxClientSockets. At any inbound limit (inboundShare, maxServerSockets,
// maxPeers) the oldest unproven inbound connection (see
// [WithUnprovenTimeout]) gives way to the new one ([ReasonDisplaced]); the
// new one is refused only when every inbound connection is proven. n must
// be -1 or in 0..maxPeers-1.
func WithDialReserve(n int) Option {
	return func(c *config) error {
		if n < -1 {
			return invalid("dial reserve %d: must be -1 (automatic), 0 or positive", n)
		}
		c.dialReserve = n
		return nil
	}
}

// limitOr maps a limit field: 0 → def, negative → unlimited (MaxInt).
func limitOr(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return math.MaxInt
	}
	return v
}

// Defaults of [DialLimits]. A queue dial tries at most two transports (TCP,
// and uTP for a peer with a referrer) and starts the hole punches of the
// peer's referrer, all counted as one dial.
const (
	// DefaultDialRate and DefaultDialBurst bound the swarm's new dials per
	// second, all destinations together: at most 2 transport attempts each,
	// so a victim spread over any number of addresses receives at most
	// 10 connection attempts per second from one swarm (after a burst of 20).
	DefaultDialRate  = 5.0
	DefaultDialBurst = 10
	// DefaultDialRatePerIP and DefaultDialBurstPerIP bound the new dials
	// per second to one IP address (IPv6: one /64).
	DefaultDialRatePerIP  = 1.0
	DefaultDialBurstPerIP = 2
	// DefaultDialPortWindow is the window of DialLimits.PortsPerIP: a port
	// of an IP counts from its dial until this long after its last dial.
	DefaultDialPortWindow = time.Minute
)

// DialLimits bounds the swarm's own dials (queue dials and the hole punches
// they start; [Swarm.Connect] is the application's and is not limited). A
// dial over a limit waits in the queue until the limit allows it; other
// peers go first. Rates run on the swarm's clock ([WithClock]). See
// [WithDialLimits]: zero fields take their default, negative ones mean
// unlimited.
type DialLimits struct {
	Rate  float64 // new dials per second, all destinations (DefaultDialRate)
	Burst int     // and their burst (DefaultDialBurst)

	PerIPRate  float64 // new dials per second to one IP, IPv6 /64 (DefaultDialRatePerIP)
	PerIPBurst int     // and their burst (DefaultDialBurstPerIP)

	// PortsPerIP caps the distinct ports of one IP (IPv6: /64) dialled in
	// any PortWindow (DefaultPortsPerIP, DefaultDialPortWindow).
	PortsPerIP int
	PortWindow time.Duration
}

// DefaultDialLimits returns the default dial limits.
func DefaultDialLimits() DialLimits {
	return DialLimits{
		Rate: DefaultDialRate, Burst: DefaultDialBurst,
		PerIPRate: DefaultDialRatePerIP, PerIPBurst: DefaultDialBurstPerIP,
		PortsPerIP: DefaultPortsPerIP, PortWindow: DefaultDialPortWindow,
	}
}

// WithDialLimits sets the dial limits (default [DefaultDialLimits]): zero
// fields keep their default, negative ones are unlimited.
func WithDialLimits(l DialLimits) Option {
	return func(c *config) error {
		d := DefaultDialLimits()
		rate := func(v, def float64) float64 {
			switch {
			case v == 0:
				return def
			case v < 0:
				return math.Inf(1)
			}
			return v
		}
		c.dialLimits = DialLimits{
			Rate: rate(l.Rate, d.Rate), Burst: limitOr(l.Burst, d.Burst),
			PerIPRate: rate(l.PerIPRate, d.PerIPRate), PerIPBurst: limitOr(l.PerIPBurst, d.PerIPBurst),
			PortsPerIP: limitOr(l.PortsPerIP, d.PortsPerIP),
			PortWindow: time.Duration(limitOr(int(l.PortWindow), int(d.PortWindow))),
		}
		return nil
	}
}

// reserve is the number of maxPeers slots kept for our own dials.
func (c *config) reserve() int {
	if c.maxClientSockets == -1 {
		return 0
	}
	r := c.dialReserve
	if r < 0 {
		r = 0
		if c.maxPeers >= 2 {
			r = max(1, c.maxPeers/4)
		}
	}
	if c.maxClientSockets > 0 {
		r = min(r, c.maxClientSockets)
	}
	return r
}

// WithAllowPrivatePeers lets the swarm dial discovered peers on any address
// (loopback, private, link-local…), whichever discovery reported them. By
// default a non-global address is dialled only when its discovery vouched
// for it ([Peer.PrivateNet]) or, for a LAN peer, when it is not loopback.
func WithAllowPrivatePeers(on bool) Option {
	return func(c *config) error { c.allowPrivate = on; return nil }
}

// WithPrivatePeerPrefixes allows discovered peers in these non-global
// prefixes (a private deployment's network, "10.42.0.0/16"), whichever
// discovery reported them. IPv4-mapped prefixes are unmapped.
func WithPrivatePeerPrefixes(prefixes ...netip.Prefix) Option {
	return func(c *config) error {
		for _, p := range prefixes {
			if !p.IsValid() {
				return invalid("private peer prefix %v", p)
			}
			a, bits := p.Addr(), p.Bits()
			if a.Is4In6() {
				if bits < 96 {
					return invalid("private peer prefix %v: an IPv4-mapped prefix shorter than /96", p)
				}
				a, bits = a.Unmap(), bits-96
			}
			c.privatePrefixes = append(c.privatePrefixes, netip.PrefixFrom(a.WithZone(""), bits).Masked())
		}
		return nil
	}
}
