package framework

import (
	"fmt"
	"log/slog"
	"math"
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
	unprovenTimeout    time.Duration // 0: never close silent inbound connections
	dialReserve        int           // -1: automatic (see WithDialReserve)
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
