package mdns

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Defaults of [Limits].
const (
	DefaultMaxInstancesPerSource    = 32
	DefaultMaxInstancesPerInterface = 2048
	DefaultMaxInstances             = 4096
	DefaultMaxPeersPerSource        = 16
	DefaultMaxPeersPerTopic         = 256
)

// Limits bound what hosts on the LAN can make a [Discovery] remember and
// report (package doc, "Hostile networks"). A zero field takes its default;
// negative values are invalid.
//
// The source of an instance is the IP address (and arrival interface) of
// the packet that first brought it into the cache; it stays its owner for
// the accounting below until the instance leaves the cache.
type Limits struct {
	// MaxInstancesPerSource is how many instances of one service type (one
	// topic) a single source may have in the cache; further ones are
	// dropped. A host runs one instance per swarm and topic. Default 32.
	MaxInstancesPerSource int
	// MaxInstancesPerInterface bounds the cached instances heard on one
	// interface, so that a flood on one link cannot push out the peers of
	// another. Default 2048.
	MaxInstancesPerInterface int
	// MaxInstances bounds the whole cache. Default 4096.
	MaxInstances int
	// MaxPeersPerSource is how many distinct peers (remote ids) of one
	// topic whose instance came from one source are reported; further
	// ones are dropped, so one host cannot fill the swarm's LAN-priority
	// queue. Default 16.
	MaxPeersPerSource int
	// MaxPeersPerTopic bounds the peers one joined topic remembers (and
	// re-reports every cycle). Default 256.
	MaxPeersPerTopic int
}

// withDefaults returns l with zero fields set to their defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxInstancesPerSource, DefaultMaxInstancesPerSource)
	def(&l.MaxInstancesPerInterface, DefaultMaxInstancesPerInterface)
	def(&l.MaxInstances, DefaultMaxInstances)
	def(&l.MaxPeersPerSource, DefaultMaxPeersPerSource)
	def(&l.MaxPeersPerTopic, DefaultMaxPeersPerTopic)
	return l
}

// validate fails for a negative limit.
func (l Limits) validate() error {
	for name, v := range map[string]int{
		"MaxInstancesPerSource":    l.MaxInstancesPerSource,
		"MaxInstancesPerInterface": l.MaxInstancesPerInterface,
		"MaxInstances":             l.MaxInstances,
		"MaxPeersPerSource":        l.MaxPeersPerSource,
		"MaxPeersPerTopic":         l.MaxPeersPerTopic,
	} {
		if v < 0 {
			return fmt.Errorf("%w: mdns: Limits.%s %d is negative", framework.ErrInvalidOption, name, v)
		}
	}
	return nil
}

// Stats counts what a [Discovery] refused from the LAN since it was
// created. Counters only grow; CachedInstances is the cache size now.
type Stats struct {
	// A/AAAA records dropped, by reason.
	AddrsLoopback    uint64 // loopback address heard on a non-loopback interface
	AddrsInvalid     uint64 // unspecified, multicast or broadcast address
	AddrsOtherSubnet uint64 // non-public address outside the arrival interface's prefixes (or link-local from an unknown interface), not the packet's source
	AddrsPublic      uint64 // public address outside the arrival interface's prefixes

	// Instances refused or pushed out of the cache, by reason.
	InstancesSourceCap    uint64 // MaxInstancesPerSource reached
	InstancesInterfaceCap uint64 // MaxInstancesPerInterface reached and nothing to evict
	InstancesCacheFull    uint64 // MaxInstances reached and nothing to evict
	InstancesEvicted      uint64 // evicted to make room (always from the source with the most)

	// Peers not reported, or forgotten to make room, by reason.
	PeersSourceCap uint64 // MaxPeersPerSource reached
	PeersTopicCap  uint64 // MaxPeersPerTopic reached and nothing to evict
	PeersEvicted   uint64 // forgotten to make room (always from the source with the most)

	// CachedInstances is the number of instances in the cache.
	CachedInstances int
}

// counters are the atomic counterparts of Stats.
type counters struct {
	addrsLoopback, addrsInvalid, addrsOtherSubnet, addrsPublic                      atomic.Uint64
	instancesSourceCap, instancesInterfaceCap, instancesCacheFull, instancesEvicted atomic.Uint64
	peersSourceCap, peersTopicCap, peersEvicted                                     atomic.Uint64
}

// Stats returns the counts of records, instances and peers dropped so far.
// It is safe to call at any time, from any goroutine.
func (d *Discovery) Stats() Stats {
	c := &d.stats
	st := Stats{
		AddrsLoopback:         c.addrsLoopback.Load(),
		AddrsInvalid:          c.addrsInvalid.Load(),
		AddrsOtherSubnet:      c.addrsOtherSubnet.Load(),
		AddrsPublic:           c.addrsPublic.Load(),
		InstancesSourceCap:    c.instancesSourceCap.Load(),
		InstancesInterfaceCap: c.instancesInterfaceCap.Load(),
		InstancesCacheFull:    c.instancesCacheFull.Load(),
		InstancesEvicted:      c.instancesEvicted.Load(),
		PeersSourceCap:        c.peersSourceCap.Load(),
		PeersTopicCap:         c.peersTopicCap.Load(),
		PeersEvicted:          c.peersEvicted.Load(),
	}
	d.mu.Lock()
	st.CachedInstances = len(d.cache.entries)
	d.mu.Unlock()
	return st
}

// origin is where a packet came from.
type origin struct {
	src netip.Addr // source IP, unmapped, without zone; invalid when unknown
	in  *iface     // arrival interface; nil when unknown
}

// srcKey identifies a source for the quotas: its address on one interface
// (link-local addresses repeat across links).
type srcKey struct {
	ifIndex int // -1: unknown
	addr    netip.Addr
}

func (o origin) key() srcKey {
	k := srcKey{ifIndex: -1, addr: o.src}
	if o.in != nil {
		k.ifIndex = o.in.ifc.Index
	}
	return k
}

// addrVerdict is why an address record is (not) used.
type addrVerdict int

const (
	addrOK addrVerdict = iota
	addrInvalid
	addrLoopback
	addrOtherSubnet
	addrPublic
)

var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// usable applies the address rules of the package doc ("Hostile
// networks") to an A/AAAA record that arrived from o. It returns the
// address to dial (a link-local IPv6 address gets the arrival interface as
// its zone) and addrOK, or the reason it is dropped.
func (o origin) usable(a netip.Addr) (netip.Addr, addrVerdict) {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a == broadcast4:
		return netip.Addr{}, addrInvalid
	case a.IsLoopback():
		// Only local processes can send on a loopback interface (which mDNS
		// uses only with IncludeLoopback or an explicit "lo").
		if o.in != nil && o.in.ifc.Flags&net.FlagLoopback != 0 {
			return a, addrOK
		}
		return netip.Addr{}, addrLoopback
	case a.Is6() && a.IsLinkLocalUnicast():
		// fe80::/10 is on-link on every IPv6 link: usable with the zone of
		// the link it was heard on, never without one.
		if o.in == nil {
			return netip.Addr{}, addrOtherSubnet
		}
		return a.WithZone(o.in.ifc.Name), addrOK
	}
	if o.in != nil && o.in.onLink(a) {
		return a, addrOK
	}
	public := isPublic(a)
	if a == o.src && !public {
		return a, addrOK
	}
	if public {
		return netip.Addr{}, addrPublic
	}
	return netip.Addr{}, addrOtherSubnet
}

// count adds one to the counter of a drop verdict.
func (c *counters) countAddr(v addrVerdict) {
	switch v {
	case addrInvalid:
		c.addrsInvalid.Add(1)
	case addrLoopback:
		c.addrsLoopback.Add(1)
	case addrOtherSubnet:
		c.addrsOtherSubnet.Add(1)
	case addrPublic:
		c.addrsPublic.Add(1)
	}
}

// notPublic lists non-global ranges netip has no predicate for.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // RFC 6598 shared address space (CGNAT)
	netip.MustParsePrefix("198.18.0.0/15"), // RFC 2544 benchmarking
	netip.MustParsePrefix("192.0.0.0/24"),  // RFC 6890 IETF protocol assignments
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved
}

// isPublic reports whether a is a global unicast address reachable from
// the internet: not private (RFC 1918, ULA), link-local, loopback or one of
// the special ranges above.
func isPublic(a netip.Addr) bool {
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// onLink reports whether a lies inside one of the interface's prefixes.
func (it *iface) onLink(a netip.Addr) bool {
	for _, p := range it.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ifacePrefix returns the prefix (masked) of an interface address as
// net.Interface.Addrs returns it; ok is false for an address without a
// mask.
func ifacePrefix(a net.Addr) (netip.Prefix, bool) {
	n, isNet := a.(*net.IPNet)
	if !isNet {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	if ip.Is4() && bits == 128 {
		ones -= 96
	}
	p, err := ip.Prefix(ones)
	return p, err == nil
}
