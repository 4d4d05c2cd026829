package validators

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var _ framework.PeerValidator = (*RateLimit)(nil)

// ErrRateLimited is wrapped by the rejections of the ratelimit validator.
var ErrRateLimited = errors.New("host over its dial rate")

// Defaults of RateLimitConfig.
const (
	DefaultRateEvery    = time.Second
	DefaultRateBurst    = 8
	DefaultRateMaxHosts = 65536
)

// RateLimitConfig configures a [RateLimit].
type RateLimitConfig struct {
	// Every is the time that earns one more admission for a host (default
	// DefaultRateEvery: one per second).
	Every time.Duration
	// Burst is how many peers of one host may be admitted at once
	// (DefaultRateBurst).
	Burst int
	// MaxHosts bounds the hosts tracked at once (DefaultRateMaxHosts). A
	// host whose bucket is full again is forgotten first; when every
	// tracked host is still limited, peers of new hosts are refused until
	// one refills (fail closed: a flood of addresses cannot reset a
	// limited host's bucket).
	MaxHosts int
	// Now is the clock (default time.Now); tests inject a fake one.
	Now func() time.Time
}

// RateLimit limits how fast peers of one host (IP address, or host name
// lower-cased; the port does not count) are admitted for dialling: a token
// bucket per host of Burst tokens earning one every Every. The swarm
// consults validators once per discovered peer before queueing it for a
// dial, so this bounds the dials a discovery can make the swarm send to one
// host — many ports of one victim announced on the DHT, say.
type RateLimit struct {
	every    time.Duration
	burst    int
	maxHosts int
	now      func() time.Time

	mu        sync.Mutex
	hosts     map[string]*hostBucket
	lastPrune time.Time
}

type hostBucket struct {
	lim  *rate.Limiter
	last time.Time // last admission attempt
}

// NewRateLimit returns the limiter; a negative field is an error wrapping
// framework.ErrInvalidOption.
func NewRateLimit(cfg RateLimitConfig) (*RateLimit, error) {
	if cfg.Every < 0 || cfg.Burst < 0 || cfg.MaxHosts < 0 {
		return nil, fmt.Errorf("%w: ratelimit: Every, Burst and MaxHosts must not be negative", framework.ErrInvalidOption)
	}
	r := &RateLimit{
		every:    cfg.Every,
		burst:    cfg.Burst,
		maxHosts: cfg.MaxHosts,
		now:      cfg.Now,
		hosts:    map[string]*hostBucket{},
	}
	if r.every == 0 {
		r.every = DefaultRateEvery
	}
	if r.burst == 0 {
		r.burst = DefaultRateBurst
	}
	if r.maxHosts == 0 {
		r.maxHosts = DefaultRateMaxHosts
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Name returns "ratelimit".
func (r *RateLimit) Name() string { return "ratelimit" }

// refill is how long an idle bucket takes to become full.
func (r *RateLimit) refill() time.Duration { return time.Duration(r.burst) * r.every }

func hostKey(host string) string {
	if ip, ok := parseHostIP(host); ok {
		return ip.String()
	}
	return strings.ToLower(host)
}

// Validate implements framework.PeerValidator: it admits the peer when its
// host has a token left and spends it.
func (r *RateLimit) Validate(_ context.Context, p framework.Peer) error {
	key := hostKey(p.Host)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now() // under the lock: buckets see time move forward
	b := r.hosts[key]
	if b == nil {
		if len(r.hosts) >= r.maxHosts && now.Sub(r.lastPrune) >= r.every {
			r.pruneLocked(now) // at most once per Every: a scan of the table
		}
		if len(r.hosts) >= r.maxHosts {
			return fmt.Errorf("%w: %d hosts are being limited already; %s must wait", ErrRateLimited, len(r.hosts), key)
		}
		b = &hostBucket{lim: rate.NewLimiter(rate.Every(r.every), r.burst)}
		r.hosts[key] = b
	}
	b.last = now
	if !b.lim.AllowN(now, 1) {
		return fmt.Errorf("%w: %s: more than %d peers at once, or more than one per %v", ErrRateLimited, key, r.burst, r.every)
	}
	return nil
}

// pruneLocked forgets hosts whose bucket has refilled: they behave exactly
// like hosts never seen.
func (r *RateLimit) pruneLocked(now time.Time) {
	r.lastPrune = now
	for k, b := range r.hosts {
		if now.Sub(b.last) >= r.refill() {
			delete(r.hosts, k)
		}
	}
}

// Hosts returns how many hosts are tracked.
func (r *RateLimit) Hosts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hosts)
}
