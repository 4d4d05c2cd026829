package framework

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrPrivateAddress is wrapped by the rejection of a discovered peer whose
// address is not global (loopback, private, link-local, shared, reserved…)
// from a discovery that did not vouch for it; see [Peer.PrivateNet] and
// [WithAllowPrivatePeers].
var ErrPrivateAddress = errors.New("dwebswarm: non-global peer address")

// nonGlobal lists the IPv4 and IPv6 ranges, beyond those netip.Addr
// classifies itself (loopback, private, link-local, multicast,
// unspecified), that are not reachable on the public internet (IANA
// special-purpose registries).
var nonGlobal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),       // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),    // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),     // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, and broadcast
	netip.MustParsePrefix("::/96"),              // IPv4-compatible (deprecated), ::, ::1
	netip.MustParsePrefix("100::/64"),           // discard-only
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use IPv4/IPv6 translation
	netip.MustParsePrefix("2001:2::/48"),        // benchmarking
	netip.MustParsePrefix("3fff::/20"),          // documentation
	netip.MustParsePrefix("5f00::/16"),          // segment routing SIDs
	netip.MustParsePrefix("2001:10::/28"),       // ORCHID (deprecated)
	netip.MustParsePrefix("2001:20::/28"),       // ORCHIDv2
	netip.MustParsePrefix("ff00::/8"),           // multicast (also IsMulticast)
	netip.MustParsePrefix("255.255.255.255/32"), // limited broadcast
}

// IsGlobalAddr reports whether ip is a global unicast address: reachable
// on the public internet, not loopback, private (RFC 1918, ULA fc00::/7),
// link-local, shared (CGNAT 100.64/10), unspecified, multicast,
// documentation, benchmarking or reserved. IPv4-mapped IPv6 is judged as
// IPv4; a zone is ignored.
func IsGlobalAddr(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonGlobal {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// hostIP parses a peer host as an IP address (brackets and zone allowed,
// IPv4-mapped IPv6 unmapped). ok is false for host names.
func hostIP(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// checkScope applies the private-address rule (README "Security and
// limits", semantics D5) to a discovered peer: nil when it may be dialled.
//
//   - A global IP address may always be dialled.
//   - An address in the operator's allow-list ([WithPrivatePeerPrefixes]),
//     or any address with [WithAllowPrivatePeers], may be dialled.
//   - A peer the discovery vouched for (Peer.PrivateNet: a DHT whose
//     bootstrap nodes are all non-global, the operator's static list) may
//     be on any address but unspecified or multicast, and may be a host name.
//   - Otherwise a LAN peer (Peer.Local: mDNS) may be on a private or
//     link-local address, never on loopback, unspecified or multicast.
//   - Anything else (a non-global address, or a host name, from a discovery
//     that did not vouch for it) is rejected with [ErrPrivateAddress].
func (s *Swarm) checkScope(p Peer) error {
	if s.cfg.allowPrivate {
		return nil
	}
	ip, isIP := hostIP(p.Host)
	if !isIP {
		if p.PrivateNet {
			return nil
		}
		return fmt.Errorf("%w: host %q is not an IP address", ErrPrivateAddress, abbrev(p.Host))
	}
	if IsGlobalAddr(ip) {
		return nil
	}
	for _, pr := range s.cfg.privatePrefixes {
		if pr.Contains(ip) {
			return nil
		}
	}
	never := ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})
	switch {
	case never:
	case p.PrivateNet:
		return nil
	case p.Local && !ip.IsLoopback():
		return nil
	}
	return fmt.Errorf("%w: %s", ErrPrivateAddress, ip)
}
