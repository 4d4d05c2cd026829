package validators

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var _ framework.PeerValidator = (*DHTPrivate)(nil)

// ErrInternalFromDHT is wrapped by the rejections of the dht-private
// validator.
var ErrInternalFromDHT = errors.New("internal address from the DHT")

// DHTPrivateConfig configures the [DHTPrivate] filter.
type DHTPrivateConfig struct {
	// Exempt lists prefixes still accepted from the DHT (for a private
	// network whose DHT runs on internal addresses).
	Exempt []string
}

// DHTPrivate refuses peers that arrive from the DHT (Peer.Referrer != nil)
// at an internal address: loopback (127.0.0.0/8, ::1), private (10/8,
// 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, fe80::/10),
// unspecified and "this network" (0.0.0.0/8, ::), shared address space
// (100.64/10), multicast and broadcast. Anyone can announce any address on
// the DHT, so without it a swarm can be aimed at the internal network of
// whoever runs it. LAN peers (no referrer) and statically configured peers
// pass untouched, and so does anything in Config.Exempt. A DHT peer whose
// host is not an IP address is refused too: the DHT only carries IPs.
type DHTPrivate struct {
	exempt []netip.Prefix
}

var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// NewDHTPrivate returns the filter. An invalid Exempt entry is an error wrapping
// framework.ErrInvalidOption.
func NewDHTPrivate(cfg DHTPrivateConfig) (*DHTPrivate, error) {
	f := &DHTPrivate{}
	for _, s := range cfg.Exempt {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%w: dht-private exempt entry %q: %v", framework.ErrInvalidOption, s, err)
		}
		f.exempt = append(f.exempt, p)
	}
	return f, nil
}

// Name returns "dht-private".
func (f *DHTPrivate) Name() string { return "dht-private" }

// IsInternal reports whether ip is an address the filter refuses from the
// DHT.
func IsInternal(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Validate implements framework.PeerValidator.
func (f *DHTPrivate) Validate(_ context.Context, p framework.Peer) error {
	if p.Referrer == nil {
		return nil // found on the LAN or configured: not from the DHT
	}
	ip, ok := parseHostIP(p.Host)
	if !ok {
		return fmt.Errorf("%w: host %q is not an IP address", ErrInternalFromDHT, p.Host)
	}
	if !IsInternal(ip) {
		return nil
	}
	for _, e := range f.exempt {
		if e.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (referred by %s)", ErrInternalFromDHT, ip, p.Referrer.Host)
}
