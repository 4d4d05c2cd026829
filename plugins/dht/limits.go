package dht

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/types"
)

// Bounds against hostile DHT nodes.
//
// Any mainline node may lie. A get_peers reply can carry thousands of
// "values" (one UDP packet holds ~8 000 compact peers) and "nodes" with
// invented ids ever closer to the target, all on one host, so that a lookup
// never ends and reports an unbounded number of peers (aimed at a victim,
// or merely filling memory). Every lookup (one round of a topic) therefore
// takes at most:
//
//   - Limits.ValuesPerReply values from one reply (the first ones; BEP 5
//     replies carry at most ~100 in practice), and Limits.ValuesPerLookup
//     distinct values in all (duplicates are reported once), of which at
//     most Limits.ValuesPerSourceIP from the nodes of one IP address;
//   - Limits.NodesPerReply entries of "nodes" and of "nodes6" from one reply
//     (BEP 5: K = 8);
//   - Limits.LookupQueries get_peers queries; the lookup ends when it has
//     sent them;
//   - Limits.LookupNodes distinct node addresses in its candidate set, of
//     which at most Limits.NodePortsPerIP ports of one IP address: one host
//     cannot pose as the whole neighbourhood of a target and eclipse the
//     real nodes.
//
// Per-IP caps (ValuesPerSourceIP, NodePortsPerIP and the peer store's
// PeerStoreConfig.MaxPerIP) do not apply to the addresses in Limits.Exempt,
// by default the IP literals of Config.Bootstrap: a testnet or private
// deployment whose nodes share one host keeps working with no flag.
//
// Hole punching: the target leg of a hole punch is accepted only from a
// node we sent announce_peer to for that infohash, within
// Limits.AnnouncedTTL of that announce (at most 64 nodes per topic are
// remembered); any other is refused and counted. Probes (ours and the
// target's) go to one destination IP at most Limits.ProbeNoticesPerIP times
// a second (burst Limits.ProbeBurstPerIP), each time PunchProbes packets,
// and to all destinations at most ProbeRate times a second.
//
// Every bound counts what it dropped: [Discovery.LimitStats].

// Defaults of Limits.
const (
	DefaultValuesPerReply    = 100
	DefaultValuesPerLookup   = 500
	DefaultValuesPerSourceIP = 200
	DefaultNodesPerReply     = 8
	DefaultLookupQueries     = 128
	DefaultLookupNodes       = 1024
	DefaultNodePortsPerIP    = 4
	DefaultAnnouncedTTL      = 30 * time.Minute
	DefaultProbeNoticesPerIP = 1.0
	DefaultProbeBurstPerIP   = 4
)

// Limits bounds what hostile DHT nodes can make a Discovery hold or send
// (see the comment at the top of limits.go). Zero values take the defaults;
// a negative value removes a bound.
type Limits struct {
	// ValuesPerReply caps the values taken from one get_peers reply
	// (DefaultValuesPerReply); the rest are dropped.
	ValuesPerReply int
	// ValuesPerLookup caps the distinct values one lookup reports
	// (DefaultValuesPerLookup).
	ValuesPerLookup int
	// ValuesPerSourceIP caps the values one lookup takes from the nodes of
	// one IP address (DefaultValuesPerSourceIP).
	ValuesPerSourceIP int
	// NodesPerReply caps the entries taken from a reply's "nodes", and
	// from its "nodes6" (DefaultNodesPerReply).
	NodesPerReply int
	// LookupQueries caps the get_peers queries of one lookup
	// (DefaultLookupQueries).
	LookupQueries int
	// LookupNodes caps the distinct node addresses a lookup considers
	// (DefaultLookupNodes).
	LookupNodes int
	// NodePortsPerIP caps the ports of one IP address among a lookup's
	// candidate nodes (DefaultNodePortsPerIP).
	NodePortsPerIP int
	// Exempt lists the prefixes exempt from per-IP caps. Nil: the IP
	// literals of Config.Bootstrap (host names are not resolved for this);
	// empty non-nil: none.
	Exempt []netip.Prefix
	// AnnouncedTTL is how long a node we announced to may relay hole
	// punches to us (DefaultAnnouncedTTL, our peer store's record TTL).
	AnnouncedTTL time.Duration
	// ProbeNoticesPerIP is how many hole punches a second may send probes
	// to one destination IP (DefaultProbeNoticesPerIP); ProbeBurstPerIP is
	// the burst (DefaultProbeBurstPerIP).
	ProbeNoticesPerIP float64
	ProbeBurstPerIP   int
}

func defInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

// setDefaults fills in the defaults; bootstrap is Config.Bootstrap.
func (l *Limits) setDefaults(bootstrap []string) {
	defInt(&l.ValuesPerReply, DefaultValuesPerReply)
	defInt(&l.ValuesPerLookup, DefaultValuesPerLookup)
	defInt(&l.ValuesPerSourceIP, DefaultValuesPerSourceIP)
	defInt(&l.NodesPerReply, DefaultNodesPerReply)
	defInt(&l.LookupQueries, DefaultLookupQueries)
	defInt(&l.LookupNodes, DefaultLookupNodes)
	defInt(&l.NodePortsPerIP, DefaultNodePortsPerIP)
	defInt(&l.ProbeBurstPerIP, DefaultProbeBurstPerIP)
	if l.AnnouncedTTL <= 0 {
		l.AnnouncedTTL = DefaultAnnouncedTTL
	}
	if l.ProbeNoticesPerIP == 0 {
		l.ProbeNoticesPerIP = DefaultProbeNoticesPerIP
	}
	if l.Exempt == nil {
		l.Exempt = []netip.Prefix{}
		for _, b := range bootstrap {
			host, _, err := parseHostPort(b)
			if err != nil {
				continue
			}
			if ip, err := netip.ParseAddr(host); err == nil {
				ip = ip.Unmap()
				l.Exempt = append(l.Exempt, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
}

// bounded reports whether n is within a cap (a negative cap is no bound).
func bounded(n, limit int) bool { return limit < 0 || n < limit }

// exempt reports whether ip is in one of the prefixes.
func exempt(prefixes []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// LimitStats counts what the bounds of [Limits] and [PeerStoreConfig]
// dropped or refused, since the Discovery started.
type LimitStats struct {
	ValuesPerReply        uint64 // values beyond ValuesPerReply in a reply
	ValuesPerLookup       uint64 // distinct values beyond ValuesPerLookup
	ValuesPerSourceIP     uint64 // values beyond one source IP's share
	NodesPerReply         uint64 // nodes beyond NodesPerReply in a reply
	LookupsCapped         uint64 // lookups ended by LookupQueries
	LookupNodes           uint64 // candidate nodes beyond LookupNodes
	NodePortsPerIP        uint64 // candidate nodes beyond NodePortsPerIP
	PunchNotAnnounced     uint64 // hole-punch target legs from nodes we did not announce to
	ProbesSent            uint64 // hole punches that sent probes (PunchProbes packets each)
	ProbesLimited         uint64 // hole punches whose probes the rate limits refused
	RelayRequestsSent     uint64 // relay requests we sent that the target accepted
	RelayRequestsFailed   uint64 // relay requests we sent that failed or were refused
	RelayRequestsAccepted uint64 // relay requests we accepted as the target
	RelayRequestsActive   uint64 // relay requests we answered OK as the target without a new demand (one runs for the infohash)
	// relay requests we refused as the target: from a node we did not
	// announce the infohash to, beyond the rate limits, with no relay client
	RelayRequestsNotAnnounced uint64
	RelayRequestsRateLimited  uint64
	RelayRequestsNoRelay      uint64
	RelayRefreshSchedules     uint64 // lookup schedules (RelayRefreshes) started after accepted relay requests
	RelayRequestsSuppressed   uint64 // relay requests we did not send (RelayRequestGap, to one target or via one referrer IP and topic)
	StorePerIPEvicted         uint64 // peer-store entries evicted by the per-IP share
	StoreLimitsEvicted        uint64 // peer-store entries evicted by MaxPerInfohash or MaxTotal
}

// limitCounters are the atomic counters behind LimitStats (zero value ready).
type limitCounters struct {
	valuesPerReply, valuesPerLookup, valuesPerSourceIP, nodesPerReply atomic.Uint64
	lookupsCapped, lookupNodes, nodePortsPerIP                        atomic.Uint64
	punchNotAnnounced, probesSent, probesLimited                      atomic.Uint64
	relayReqSent, relayReqFailed, relayReqAccepted, relayReqActive    atomic.Uint64
	relayReqNotAnnounced, relayReqRateLimited, relayReqNoRelay        atomic.Uint64
	relayReqSuppressed, relayRefreshSchedules                         atomic.Uint64
}

// LimitStats returns what the hostile-node bounds dropped so far.
func (d *Node) LimitStats() LimitStats {
	c := &d.limits
	perIP, caps := d.store.Evictions()
	return LimitStats{
		ValuesPerReply:            c.valuesPerReply.Load(),
		ValuesPerLookup:           c.valuesPerLookup.Load(),
		ValuesPerSourceIP:         c.valuesPerSourceIP.Load(),
		NodesPerReply:             c.nodesPerReply.Load(),
		LookupsCapped:             c.lookupsCapped.Load(),
		LookupNodes:               c.lookupNodes.Load(),
		NodePortsPerIP:            c.nodePortsPerIP.Load(),
		PunchNotAnnounced:         c.punchNotAnnounced.Load(),
		ProbesSent:                c.probesSent.Load(),
		ProbesLimited:             c.probesLimited.Load(),
		RelayRequestsSent:         c.relayReqSent.Load(),
		RelayRequestsFailed:       c.relayReqFailed.Load(),
		RelayRequestsAccepted:     c.relayReqAccepted.Load(),
		RelayRequestsActive:       c.relayReqActive.Load(),
		RelayRequestsNotAnnounced: c.relayReqNotAnnounced.Load(),
		RelayRequestsRateLimited:  c.relayReqRateLimited.Load(),
		RelayRequestsNoRelay:      c.relayReqNoRelay.Load(),
		RelayRefreshSchedules:     c.relayRefreshSchedules.Load(),
		RelayRequestsSuppressed:   c.relayReqSuppressed.Load(),
		StorePerIPEvicted:         perIP,
		StoreLimitsEvicted:        caps,
	}
}

// lookup is the bounded state of one get_peers traversal.
type lookup struct {
	lim *Limits
	c   *limitCounters

	mu       sync.Mutex
	queries  int
	capped   chan struct{} // closed when LookupQueries queries were sent
	values   map[netip.AddrPort]struct{}
	perSrc   map[netip.Addr]int
	nodes    map[netip.AddrPort]struct{}
	nodePort map[netip.Addr]int
}

func newLookup(lim *Limits, c *limitCounters) *lookup {
	return &lookup{
		lim: lim, c: c,
		capped:   make(chan struct{}),
		values:   make(map[netip.AddrPort]struct{}),
		perSrc:   make(map[netip.Addr]int),
		nodes:    make(map[netip.AddrPort]struct{}),
		nodePort: make(map[netip.Addr]int),
	}
}

// admitQuery reports whether one more query may be sent.
func (l *lookup) admitQuery() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !bounded(l.queries, l.lim.LookupQueries) {
		return false
	}
	l.queries++
	if !bounded(l.queries, l.lim.LookupQueries) {
		close(l.capped)
		l.c.lookupsCapped.Add(1)
	}
	return true
}

// replyValues returns the values of a reply that the per-reply cap keeps.
func (l *lookup) replyValues(vs []krpc.NodeAddr) []krpc.NodeAddr {
	if n := l.lim.ValuesPerReply; n >= 0 && len(vs) > n {
		l.c.valuesPerReply.Add(uint64(len(vs) - n))
		return vs[:n]
	}
	return vs
}

// replyNodes returns the nodes of a reply that the per-reply cap keeps.
func (l *lookup) replyNodes(ns []krpc.NodeInfo) []krpc.NodeInfo {
	if n := l.lim.NodesPerReply; n >= 0 && len(ns) > n {
		l.c.nodesPerReply.Add(uint64(len(ns) - n))
		return ns[:n]
	}
	return ns
}

// takeValue reports whether the value v, returned by a node at src, is new
// and within the lookup's caps; it records it if so.
func (l *lookup) takeValue(v netip.AddrPort, src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.values[v]; dup {
		return false
	}
	if !bounded(len(l.values), l.lim.ValuesPerLookup) {
		l.c.valuesPerLookup.Add(1)
		return false
	}
	if !exempt(l.lim.Exempt, src) {
		if !bounded(l.perSrc[src], l.lim.ValuesPerSourceIP) {
			l.c.valuesPerSourceIP.Add(1)
			return false
		}
		l.perSrc[src]++
	}
	l.values[v] = struct{}{}
	return true
}

// admitNode is the lookup's node filter: distinct candidates and ports per
// IP are capped.
func (l *lookup) admitNode(n types.AddrMaybeId) bool {
	ap := n.Addr.AddrPort
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.nodes[ap]; ok {
		return true
	}
	if !bounded(len(l.nodes), l.lim.LookupNodes) {
		l.c.lookupNodes.Add(1)
		return false
	}
	ip := ap.Addr()
	if !exempt(l.lim.Exempt, ip) {
		if !bounded(l.nodePort[ip], l.lim.NodePortsPerIP) {
			l.c.nodePortsPerIP.Add(1)
			return false
		}
		l.nodePort[ip]++
	}
	l.nodes[ap] = struct{}{}
	return true
}
