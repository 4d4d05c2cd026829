package dht

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// maxMappingReports bounds the remembered observations.
const maxMappingReports = 32

// mappingLog remembers, per reporting DHT node, the address (ip:port) it saw
// us at (BEP 42 "ip" in its replies). With a NAT that keeps one mapping per
// socket every node sees the same ip:port; a symmetric NAT shows each node
// another port.
type mappingLog struct {
	mu   sync.Mutex
	seen map[string]netip.AddrPort // reporter → observed
}

func (m *mappingLog) observed(reporter string, ap netip.AddrPort) {
	if !ap.IsValid() || ap.Port() == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = make(map[string]netip.AddrPort)
	}
	if _, ok := m.seen[reporter]; !ok && len(m.seen) >= maxMappingReports {
		return
	}
	m.seen[reporter] = ap
}

// Connectivity reports whether the node is bootstrapped and how DHT nodes
// see it. It implements framework.ConnectivityReporter.
func (d *Node) Connectivity() framework.Connectivity {
	c := framework.Connectivity{Bound: true}
	if srv := d.current(); srv != nil {
		c.Bootstrapped = srv.s.NumNodes() > 0
	} else {
		c.Bound = false
	}
	d.mapping.mu.Lock()
	distinct := map[netip.AddrPort]bool{}
	for _, ap := range d.mapping.seen {
		distinct[ap] = true
	}
	c.Reporters = len(d.mapping.seen)
	d.mapping.mu.Unlock()
	for ap := range distinct {
		c.PublicAddrs = append(c.PublicAddrs, ap.String())
	}
	slices.Sort(c.PublicAddrs)
	c.Consistent = c.Reporters >= 2 && len(distinct) == 1
	c.Holepunchable = c.Bootstrapped && c.Consistent
	return c
}

// Connectivity of the running node (zero before the swarm started it).
func (p *Plugin) Connectivity() framework.Connectivity {
	if d := p.Node(); d != nil {
		return d.Connectivity()
	}
	return framework.Connectivity{}
}
