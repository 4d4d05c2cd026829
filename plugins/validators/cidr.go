package validators

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var _ framework.PeerValidator = (*CIDR)(nil)

// ErrNotAllowed is wrapped by the rejections of the cidr validator.
var ErrNotAllowed = errors.New("address not allowed")

// CIDRConfig configures a [CIDR] validator. Entries are prefixes
// ("10.0.0.0/8", "2001:db8::/32") or single addresses ("192.0.2.7").
type CIDRConfig struct {
	// Allow, when non-empty, lists the only prefixes peers may be in; a
	// peer given by host name (not an IP) is then refused, since it cannot
	// be matched. Empty: every address not denied is allowed.
	Allow []string
	// Deny lists prefixes refused even when allowed: deny wins.
	Deny []string
}

// CIDR accepts peers by IP prefix: denied prefixes first, then, when an
// allow list is given, only allowed prefixes.
type CIDR struct {
	allow, deny []netip.Prefix
}

// NewCIDR parses cfg; an invalid entry is an error wrapping
// framework.ErrInvalidOption that names it.
func NewCIDR(cfg CIDRConfig) (*CIDR, error) {
	c := &CIDR{}
	for _, l := range []struct {
		name string
		in   []string
		out  *[]netip.Prefix
	}{{"allow", cfg.Allow, &c.allow}, {"deny", cfg.Deny, &c.deny}} {
		for _, s := range l.in {
			p, err := parsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%w: cidr %s entry %q: %v", framework.ErrInvalidOption, l.name, s, err)
			}
			*l.out = append(*l.out, p)
		}
	}
	return c, nil
}

// Name returns "cidr".
func (c *CIDR) Name() string { return "cidr" }

// Validate implements framework.PeerValidator.
func (c *CIDR) Validate(_ context.Context, p framework.Peer) error {
	ip, ok := parseHostIP(p.Host)
	if !ok {
		if len(c.allow) > 0 {
			return fmt.Errorf("%w: host %q is not an IP address and an allow list is set", ErrNotAllowed, p.Host)
		}
		return nil
	}
	for _, d := range c.deny {
		if d.Contains(ip) {
			return fmt.Errorf("%w: %s is in denied %s", ErrNotAllowed, ip, d)
		}
	}
	if len(c.allow) == 0 {
		return nil
	}
	for _, a := range c.allow {
		if a.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is in no allowed prefix", ErrNotAllowed, ip)
}
