package dht

import (
	"fmt"
	"net"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// DefaultBootstrap lists the public BitTorrent mainline DHT routers. It is
// used when Config.Bootstrap is nil — by real users only: tests, benchmarks
// and demos always pass their own (loopback) bootstrap nodes.
var DefaultBootstrap = []string{
	"router.bittorrent.com:6881",
	"router.utorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"dht.libtorrent.org:25401",
	"dht.anacrolix.link:42069",
}

// Defaults of Config.
const (
	// DefaultSendRate is the per-node send limit in packets per second. A
	// lookup on the public DHT sends 50–150 queries; 100/s with an equal
	// burst keeps a join's first round unthrottled while bounding what one
	// node can send.
	DefaultSendRate = 100
	// DefaultAdaptiveAfter is the uptime after which an adaptive node
	// (Ephemeral == nil) stops being read-only and becomes a full node.
	DefaultAdaptiveAfter = 30 * time.Minute
	// DefaultQueryTimeout is how long a query waits for its reply after
	// each send.
	DefaultQueryTimeout = 2 * time.Second
	// DefaultQueryTries is how many times a query is sent (QueryTimeout
	// apart) before it fails. A reply to any send completes the query, so
	// a reply that is merely late (a lossy path, a starved CPU) still
	// counts within QueryTries × QueryTimeout.
	DefaultQueryTries = 2
	// DefaultRoundMin and DefaultRoundMax bound the random interval between
	// two regular rounds of a joined topic.
	DefaultRoundMin = 5 * time.Minute
	DefaultRoundMax = 10 * time.Minute
)

// DefaultFastRelookups are the delays of the extra rounds after a topic's
// first round (each measured from the end of the previous round): ≈1 s and
// ≈5 s after the join, so that two peers joining at the same moment, whose
// first lookups ran before either announce landed, find each other.
var DefaultFastRelookups = []time.Duration{time.Second, 4 * time.Second}

// Config configures a [Node]. The zero value is a node on a fresh UDP
// socket, adaptive (read-only for its first 30 minutes), on the public DHT.
type Config struct {
	// PacketConn is the UDP socket to use, shared with uTP through
	// internal/udpmux. The DHT reads every packet from it (it must be the
	// only reader), may set its read deadline while stopping, and never
	// closes it: the caller does, after Close. Nil: the DHT listens on
	// ListenAddr and owns that socket.
	PacketConn net.PacketConn
	// ListenAddr is used when PacketConn is nil (default ":0").
	ListenAddr string

	// Bootstrap lists host:port of the nodes used to enter the DHT when the
	// routing table is empty. Nil means DefaultBootstrap; an empty non-nil
	// slice means none (the node only knows who contacts it).
	Bootstrap []string

	// Ephemeral: true = read-only node (BEP 43 "ro": 1, answers no query,
	// is kept out of other nodes' routing tables, stores nothing); false =
	// full node; nil = adaptive: read-only for AdaptiveAfter, then full.
	Ephemeral *bool
	// AdaptiveAfter is the read-only period of an adaptive node
	// (DefaultAdaptiveAfter).
	AdaptiveAfter time.Duration

	// SendRate limits the packets this node sends per second (0:
	// DefaultSendRate; negative: unlimited). SendBurst is the limiter's
	// burst (default: max(SendRate, 1)).
	SendRate  float64
	SendBurst int
	// QueryTimeout is how long each query waits for its reply after each
	// send. 0: adaptive, like TCP's retransmission timer: the smoothed
	// round-trip time of this node's replies plus four deviations, at least
	// MinQueryTimeout and at most DefaultQueryTimeout (1 s until the first
	// reply), so that a dead node holds a lookup up for a few
	// round trips rather than QueryTries × 2 s. A value set is fixed.
	QueryTimeout time.Duration
	// MinQueryTimeout is the floor of the adaptive QueryTimeout
	// (DefaultMinQueryTimeout).
	MinQueryTimeout time.Duration
	// QueryTries is how many times each query is sent before it fails
	// (DefaultQueryTries).
	QueryTries int

	// RoundMin and RoundMax bound the uniformly random interval between
	// regular rounds (DefaultRoundMin, DefaultRoundMax).
	RoundMin, RoundMax time.Duration
	// FastRelookups are the delays of the extra rounds after the first one
	// (nil: DefaultFastRelookups; empty non-nil: none).
	FastRelookups []time.Duration

	// PeerStore configures the store of peers announced to this node.
	PeerStore PeerStoreConfig

	// Limits bounds what hostile nodes can make this node hold or send
	// (see limits.go); the zero value takes the defaults.
	Limits Limits

	// PublicIP, when known, is one more address of this host: a peer at
	// PublicIP:port (our own port) is never reported.
	PublicIP net.IP

	// NoMaintenance disables routing-table maintenance (periodic
	// bootstrap, pings of questionable nodes, bucket refresh) until
	// StartMaintenance is called. For testnets that fill tables by hand.
	NoMaintenance bool

	// NodeID fixes the DHT node id (default: random).
	NodeID *[20]byte

	// Clock is the time source for rounds, the adaptive switch and the peer
	// store (default: the real clock).
	Clock clockwork.Clock

	adaptiveTimeout bool // QueryTimeout was 0
}

func (c *Config) setDefaults() error {
	if c.ListenAddr == "" {
		c.ListenAddr = ":0"
	}
	if c.Bootstrap == nil {
		c.Bootstrap = DefaultBootstrap
	}
	for _, b := range c.Bootstrap {
		if _, _, err := parseHostPort(b); err != nil {
			return fmt.Errorf("%w: dht bootstrap %q: %v", framework.ErrInvalidOption, b, err)
		}
	}
	if c.AdaptiveAfter <= 0 {
		c.AdaptiveAfter = DefaultAdaptiveAfter
	}
	if c.SendRate == 0 {
		c.SendRate = DefaultSendRate
	}
	if c.SendBurst <= 0 {
		c.SendBurst = max(int(c.SendRate), 1)
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = DefaultQueryTimeout
		c.adaptiveTimeout = true
	}
	if c.MinQueryTimeout <= 0 {
		c.MinQueryTimeout = DefaultMinQueryTimeout
	}
	if c.QueryTries <= 0 {
		c.QueryTries = DefaultQueryTries
	}
	if c.RoundMin <= 0 {
		c.RoundMin = DefaultRoundMin
	}
	if c.RoundMax <= 0 {
		c.RoundMax = DefaultRoundMax
	}
	if c.RoundMax < c.RoundMin {
		return fmt.Errorf("%w: dht RoundMax %v < RoundMin %v", framework.ErrInvalidOption, c.RoundMax, c.RoundMin)
	}
	if c.FastRelookups == nil {
		c.FastRelookups = DefaultFastRelookups
	}
	for _, d := range c.FastRelookups {
		if d < 0 {
			return fmt.Errorf("%w: dht FastRelookups has a negative delay", framework.ErrInvalidOption)
		}
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.PeerStore.Clock == nil {
		c.PeerStore.Clock = c.Clock
	}
	c.Limits.setDefaults(c.Bootstrap)
	if c.PeerStore.Exempt == nil {
		c.PeerStore.Exempt = c.Limits.Exempt
	}
	return nil
}

// Bool returns a pointer to b, for Config.Ephemeral.
func Bool(b bool) *bool { return &b }
