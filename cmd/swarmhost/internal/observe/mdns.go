package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
)

// mDNS metric names (exported when [Config.MDNSStats] is set). Labels in
// comments; the reasons are those of mdns.Stats.
const (
	MetricMDNSAddrsDropped     = "dwebswarm_mdns_addresses_dropped_total" // counter {reason: loopback|invalid|other_subnet|public}
	MetricMDNSInstancesDropped = "dwebswarm_mdns_instances_dropped_total" // counter {reason: source_cap|interface_cap|cache_full|evicted}
	MetricMDNSPeersDropped     = "dwebswarm_mdns_peers_dropped_total"     // counter {reason: source_cap|topic_cap|evicted}
	MetricMDNSCachedInstances  = "dwebswarm_mdns_cached_instances"        // gauge
)

var (
	descMDNSAddrs     = prometheus.NewDesc(MetricMDNSAddrsDropped, "mDNS A/AAAA records dropped, by reason (loopback: a loopback address off the loopback interface; invalid: unspecified, multicast or broadcast; other_subnet, public: outside the arrival interface's prefixes and not the packet's source).", []string{labelReason}, nil)
	descMDNSInstances = prometheus.NewDesc(MetricMDNSInstancesDropped, "mDNS instances refused or pushed out of the cache, by reason (source_cap, interface_cap, cache_full: a limit reached; evicted: made room, taken from the source holding the most).", []string{labelReason}, nil)
	descMDNSPeers     = prometheus.NewDesc(MetricMDNSPeersDropped, "mDNS peers not reported (source_cap, topic_cap) or forgotten to make room (evicted).", []string{labelReason}, nil)
	descMDNSCached    = prometheus.NewDesc(MetricMDNSCachedInstances, "mDNS instances in the cache.", nil, nil)
)

// MDNSStats returns a [Config.MDNSStats] hook reading d's counters.
func MDNSStats(d *mdns.Discovery) func() mdns.Stats { return d.Stats }

// mdnsCollector exports mdns.Stats at scrape time.
type mdnsCollector struct{ stats func() mdns.Stats }

// Describe implements prometheus.Collector.
func (c *mdnsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMDNSAddrs, descMDNSInstances, descMDNSPeers, descMDNSCached} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *mdnsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for reason, v := range map[string]uint64{"loopback": st.AddrsLoopback, "invalid": st.AddrsInvalid, "other_subnet": st.AddrsOtherSubnet, "public": st.AddrsPublic} {
		counter(ch, descMDNSAddrs, float64(v), reason)
	}
	for reason, v := range map[string]uint64{"source_cap": st.InstancesSourceCap, "interface_cap": st.InstancesInterfaceCap, "cache_full": st.InstancesCacheFull, "evicted": st.InstancesEvicted} {
		counter(ch, descMDNSInstances, float64(v), reason)
	}
	for reason, v := range map[string]uint64{"source_cap": st.PeersSourceCap, "topic_cap": st.PeersTopicCap, "evicted": st.PeersEvicted} {
		counter(ch, descMDNSPeers, float64(v), reason)
	}
	gauge(ch, descMDNSCached, float64(st.CachedInstances))
}
