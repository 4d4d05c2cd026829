package dht

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// selfFilter recognises our own announce among lookup results.
//
// A peer is ourselves when its port is the port we announce and its IP is
// one of ours: a loopback or unspecified address, an address of a local
// network interface (refreshed every 30 s), Config.PublicIP, or an address
// that DHT nodes reported seeing us at (the BEP 42 "ip" field of their
// replies: our address behind NAT). Two swarms on one host therefore never
// see each other when they listen on the same port number of different
// local IPs — they cannot do that on a single-address host anyway.
type selfFilter struct {
	mu        sync.Mutex
	local     map[netip.Addr]struct{}
	refreshed time.Time
	seen      map[netip.Addr]struct{} // reported by remote nodes
	public    netip.Addr
}

const maxSeenSelfIPs = 16

func newSelfFilter(public net.IP) *selfFilter {
	f := &selfFilter{seen: make(map[netip.Addr]struct{})}
	if ip, ok := netip.AddrFromSlice(public); ok {
		f.public = ip.Unmap()
	}
	return f
}

// observed records an address a remote node saw us at.
func (f *selfFilter) observed(ip netip.Addr) {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[ip]; ok || len(f.seen) >= maxSeenSelfIPs {
		return
	}
	f.seen[ip] = struct{}{}
}

func (f *selfFilter) isSelf(peer netip.AddrPort, ourPort int) bool {
	if int(peer.Port()) != ourPort {
		return false
	}
	ip := peer.Addr().Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() || ip == f.public {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[ip]; ok {
		return true
	}
	if f.local == nil || time.Since(f.refreshed) > 30*time.Second {
		f.local = make(map[netip.Addr]struct{})
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if pfx, err := netip.ParsePrefix(a.String()); err == nil {
					f.local[pfx.Addr().Unmap()] = struct{}{}
				}
			}
		}
		f.refreshed = time.Now()
	}
	_, ok := f.local[ip]
	return ok
}
