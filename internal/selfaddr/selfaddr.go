// Package selfaddr tells whether an address is one of this machine's: a
// discovery uses it to never report its own swarm.
package selfaddr

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// refresh is how long the interface address list is cached.
const refresh = 30 * time.Second

var (
	mu      sync.Mutex
	local   map[netip.Addr]bool
	fetched time.Time
)

// IsLocal reports whether host (an IP literal) is loopback, unspecified or
// an address of one of this machine's network interfaces (in the caller's
// network namespace). Host names are not resolved: they report false.
func IsLocal(host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	mu.Lock()
	defer mu.Unlock()
	if local == nil || time.Since(fetched) > refresh {
		local = make(map[netip.Addr]bool)
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					local[p.Addr().Unmap()] = true
				}
			}
		}
		fetched = time.Now()
	}
	return local[ip]
}
