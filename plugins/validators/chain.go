package validators

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Default positions in the chain (Config.Order zero means the default).
const (
	DefaultBanListOrder    = 10
	DefaultCIDROrder       = 20
	DefaultDHTPrivateOrder = 30
	DefaultRateLimitOrder  = 100
)

var (
	_ framework.PeerValidator = (*ChainValidator)(nil)
	_ framework.Ordered       = (*ChainValidator)(nil)
)

// ChainValidator consults validators in order; the first rejection wins and
// its error, prefixed with the validator's name, is the reason.
type ChainValidator struct {
	vs    []framework.PeerValidator
	order int
}

// Chain combines validators into one, consulted in the order given (their
// own Order is ignored inside the chain). Nil entries are skipped.
func Chain(vs ...framework.PeerValidator) *ChainValidator {
	c := &ChainValidator{}
	for _, v := range vs {
		if v != nil {
			c.vs = append(c.vs, v)
		}
	}
	return c
}

// WithOrder sets the chain's own position among the swarm's validators.
func (c *ChainValidator) WithOrder(n int) *ChainValidator { c.order = n; return c }

// Name returns "chain".
func (c *ChainValidator) Name() string { return "chain" }

// Order implements framework.Ordered.
func (c *ChainValidator) Order() int { return c.order }

// Validators returns the chained validators in order.
func (c *ChainValidator) Validators() []framework.PeerValidator { return slices.Clone(c.vs) }

// String lists the chain, e.g. "chain(banlist, cidr)".
func (c *ChainValidator) String() string {
	names := make([]string, len(c.vs))
	for i, v := range c.vs {
		names[i] = v.Name()
	}
	return "chain(" + strings.Join(names, ", ") + ")"
}

// Validate implements framework.PeerValidator.
func (c *ChainValidator) Validate(ctx context.Context, p framework.Peer) error {
	for _, v := range c.vs {
		if err := v.Validate(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", v.Name(), err)
		}
	}
	return nil
}

func orderOr(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}
