package validators

import (
	"net/netip"
	"strings"
)

// parseHostIP parses a peer host as an IP address: IPv4-mapped IPv6 is
// unmapped and an IPv6 zone is dropped. ok is false for host names.
func parseHostIP(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// parsePrefix parses "10.0.0.0/8" or a bare address ("1.2.3.4" = /32,
// "::1" = /128), masked and unmapped.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a := p.Addr()
		bits := p.Bits()
		if a.Is4In6() {
			if bits < 96 {
				return netip.Prefix{}, errMappedShort
			}
			a, bits = a.Unmap(), bits-96
		}
		return netip.PrefixFrom(a, bits).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errZone
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

type addrError string

func (e addrError) Error() string { return string(e) }

const (
	errMappedShort = addrError("an IPv4-mapped IPv6 prefix shorter than /96")
	errZone        = addrError("an IPv6 zone is not allowed")
)
