package observe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Metric names, all under the dwebswarm_ namespace. Labels in comments.
const (
	MetricConnectionsOpen   = "dwebswarm_connections_open"           // gauge {transport, direction}
	MetricConnectionsOpened = "dwebswarm_connections_opened_total"   // counter {transport, direction}
	MetricConnectionsClosed = "dwebswarm_connections_closed_total"   // counter {transport, direction, reason}
	MetricDialsSucceeded    = "dwebswarm_dials_succeeded_total"      // counter {transport}
	MetricDialsFailed       = "dwebswarm_dials_failed_total"         // counter {kind: queue|manual}
	MetricDialsInFlight     = "dwebswarm_dials_in_flight"            // gauge
	MetricInboundRefused    = "dwebswarm_inbound_refused_total"      // counter {transport, limit}
	MetricPeersDiscovered   = "dwebswarm_peers_discovered_total"     // counter
	MetricPeersRejected     = "dwebswarm_peers_rejected_total"       // counter
	MetricPeersBanned       = "dwebswarm_peers_banned"               // gauge
	MetricBans              = "dwebswarm_bans_total"                 // counter
	MetricPeersKnown        = "dwebswarm_peers_known"                // gauge
	MetricPeersUnresponsive = "dwebswarm_peers_unresponsive"         // gauge
	MetricQueueLength       = "dwebswarm_queue_length"               // gauge
	MetricTopicsJoined      = "dwebswarm_topics_joined"              // gauge
	MetricTopicUpdates      = "dwebswarm_topic_updates_total"        // counter {discovery}
	MetricSubscriptions     = "dwebswarm_event_subscriptions"        // gauge
	MetricBound             = "dwebswarm_connectivity_bound"         // gauge 0/1
	MetricBootstrapped      = "dwebswarm_connectivity_bootstrapped"  // gauge 0/1
	MetricHolepunchable     = "dwebswarm_connectivity_holepunchable" // gauge 0/1
	MetricBytesIn           = "dwebswarm_bytes_in_total"             // counter {name}
	MetricBytesOut          = "dwebswarm_bytes_out_total"            // counter {name}
	MetricDHTRoutingTable   = "dwebswarm_dht_routing_table_nodes"    // gauge
	MetricDHTLimited        = "dwebswarm_dht_limited_total"          // counter {limit}
	MetricDHTRelayRequests  = "dwebswarm_dht_relay_requests_total"   // counter {result}
	MetricPluginUp          = "dwebswarm_plugin_up"                  // gauge {kind, plugin}
	MetricPluginRestarts    = "dwebswarm_plugin_restarts_total"      // counter {kind, plugin}
	MetricPluginEvents      = "dwebswarm_plugin_events_total"        // counter {kind, plugin, event}
	MetricBuildInfo         = "dwebswarm_build_info"                 // gauge 1 {version}
	// MetricServiceRefused counts forwarded connections refused for their
	// key. Keys are not labels (one series per peer would be unbounded):
	// the daemon's log names each refused key.
	MetricServiceRefused = "dwebswarm_service_refused_total" // counter {service, reason}

	MetricInboundUnproven       = "dwebswarm_inbound_unproven"              // gauge
	MetricInboundUnprovenClosed = "dwebswarm_inbound_unproven_closed_total" // counter
	MetricInboundDisplaced      = "dwebswarm_inbound_displaced_total"       // counter
	MetricDialReserve           = "dwebswarm_dial_reserve"                  // gauge
	MetricHandshakesInProgress  = "dwebswarm_handshakes_in_progress"        // gauge
	MetricHandshakes            = "dwebswarm_handshakes_total"              // counter {outcome}
	MetricUTPHalfOpen           = "dwebswarm_utp_half_open"                 // gauge
	MetricUTPSynsDropped        = "dwebswarm_utp_syns_dropped_total"        // counter {reason: rate|half_open_share}
	MetricUTPHalfOpenEnded      = "dwebswarm_utp_half_open_ended_total"     // counter {outcome: answered|expired|evicted|backlog_full}
	// The discovery and dial limits (framework.BoundStats).
	MetricDiscoveryDropped = "dwebswarm_discovery_dropped_total"      // counter {limit: cycle|referrer|pending|ports|known}
	MetricPeersEvicted     = "dwebswarm_peers_evicted_total"          // counter
	MetricPrivateRejected  = "dwebswarm_peers_private_rejected_total" // counter
	MetricDialsHeld        = "dwebswarm_dials_held_total"             // counter {limit: rate|ports}
	MetricNeverConnected   = "dwebswarm_peers_never_connected"        // gauge
)

// Label names and values.
const (
	directionInbound  = "inbound"
	directionOutbound = "outbound"
	labelTransport    = "transport"
	labelDirection    = "direction"
	labelReason       = "reason"
	labelDiscovery    = "discovery"
	labelName         = "name"
	labelKind         = "kind"
	labelPlugin       = "plugin"
	labelEvent        = "event"
	labelVersion      = "version"
	unknownVersion    = "dev"
)

// connLabels is a (transport, direction) pair.
type connLabels struct{ transport, direction string }

func labelsOf(c *framework.Conn) connLabels {
	d := directionInbound
	if c.Client() {
		d = directionOutbound
	}
	return connLabels{c.Type(), d}
}

// eventMetrics are the counters fed by the swarm's events.
type eventMetrics struct {
	opened     *prometheus.CounterVec
	closed     *prometheus.CounterVec
	dials      *prometheus.CounterVec
	discovered prometheus.Counter
	rejected   prometheus.Counter
	dialFails  *prometheus.CounterVec
	bans       prometheus.Counter
	updates    *prometheus.CounterVec
	refused    *prometheus.CounterVec
}

func newEventMetrics() *eventMetrics {
	return &eventMetrics{
		opened:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricConnectionsOpened, Help: "Connections opened, by transport and direction (outbound: this swarm dialled)."}, []string{labelTransport, labelDirection}),
		closed:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricConnectionsClosed, Help: "Connections closed, by transport, direction and reason (closed_locally: by this side; closed_by_peer: the peer ended it first; io_error: a read or write failed; deduplicated, self, banned, swarm_closed: by the swarm)."}, []string{labelTransport, labelDirection, labelReason}),
		dials:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDialsSucceeded, Help: "Dials that produced a connection (queue and manual), by transport."}, []string{labelTransport}),
		discovered: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPeersDiscovered, Help: "Discovered peers that passed the validators and were queued (or gained a topic)."}),
		rejected:   prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPeersRejected, Help: "Discovered peers refused by a validator or as undiallable."}),
		dialFails:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDialsFailed, Help: "Dials that failed on every transport, from the queue or by hand (Swarm.Connect)."}, []string{"kind"}),
		bans:       prometheus.NewCounter(prometheus.CounterOpts{Name: MetricBans, Help: "Connections closed by a ban."}),
		updates:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricTopicUpdates, Help: "Completed discovery cycles, by discovery."}, []string{labelDiscovery}),
		refused:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricInboundRefused, Help: "Inbound connections refused at a connection limit (maxPeers, maxServerSockets, refuseInbound), by transport and limit."}, []string{labelTransport, "limit"}),
	}
}

func (m *eventMetrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.opened, m.closed, m.dials, m.dialFails, m.discovered, m.rejected, m.bans, m.updates, m.refused}
}

// Describe implements prometheus.Collector.
func (m *eventMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *eventMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}

// connOpened counts c once, however many times it is reported.
func (s *Server) connOpened(c *framework.Conn, at time.Time) {
	l := labelsOf(c)
	s.mu.Lock()
	if _, seen := s.conns[c]; seen {
		s.mu.Unlock()
		return
	}
	s.conns[c] = at
	s.pairs[l] = true
	s.mu.Unlock()
	inc(s.m.opened, l.transport, l.direction)
	if c.Client() {
		inc(s.m.dials, l.transport)
	}
}

// observe feeds one event into the counters and the tracked state.
func (s *Server) observe(ev framework.Event) {
	switch e := ev.(type) {
	case *framework.ConnectionEvent:
		s.connOpened(e.Conn, time.Now())
	case *framework.DisconnectionEvent:
		l := labelsOf(e.Conn)
		s.mu.Lock()
		_, seen := s.conns[e.Conn]
		delete(s.conns, e.Conn)
		s.mu.Unlock()
		if !seen {
			// opened and closed before the subscription: never counted as
			// opened, so not as closed either (opened - closed = open)
			return
		}
		inc(s.m.closed, l.transport, l.direction, e.Reason.String())
		if e.Reason == framework.ReasonBanned {
			s.m.bans.Inc()
		}
	case *framework.PeerEvent:
		s.m.discovered.Inc()
	case *framework.PeerRejectedEvent:
		s.m.rejected.Inc()
	case *framework.DialFailedEvent:
		kind := "queue"
		if e.Manual {
			kind = "manual"
		}
		inc(s.m.dialFails, kind)
	case *framework.UpdatedEvent:
		inc(s.m.updates, e.Discovery)
	case *framework.InboundRefusedEvent:
		inc(s.m.refused, e.Transport, e.Limit)
	case *framework.FlushedEvent:
		s.mu.Lock()
		s.flushed[e.Topic] = true
		s.mu.Unlock()
	}
}

// snapshotCollector exports what the swarm, the plugin tracker and the
// daemon's hooks know at scrape time.
type snapshotCollector struct{ s *Server }

var (
	descConnsOpen      = prometheus.NewDesc(MetricConnectionsOpen, "Open connections, by transport and direction (outbound: this swarm dialled).", []string{labelTransport, labelDirection}, nil)
	descDialsInFlight  = prometheus.NewDesc(MetricDialsInFlight, "Dials in flight (queue and manual).", nil, nil)
	descPeersBanned    = prometheus.NewDesc(MetricPeersBanned, "Banned peers the swarm remembers.", nil, nil)
	descPeersKnown     = prometheus.NewDesc(MetricPeersKnown, "Peers known to the connection queue, in any state.", nil, nil)
	descUnresponsive   = prometheus.NewDesc(MetricPeersUnresponsive, "Unresponsive peers the swarm remembers (dials failed until the requeue schedule ran out).", nil, nil)
	descQueueLength    = prometheus.NewDesc(MetricQueueLength, "Peers ready to be dialled, waiting for a free connection slot.", nil, nil)
	descTopicsJoined   = prometheus.NewDesc(MetricTopicsJoined, "Joined topics.", nil, nil)
	descSubscriptions  = prometheus.NewDesc(MetricSubscriptions, "Open event subscriptions (this observer holds one).", nil, nil)
	descBound          = prometheus.NewDesc(MetricBound, "1 when the swarm's listeners are bound.", nil, nil)
	descBootstrapped   = prometheus.NewDesc(MetricBootstrapped, "1 when the DHT routing table holds nodes.", nil, nil)
	descHolepunchable  = prometheus.NewDesc(MetricHolepunchable, "1 when the DHT saw one consistent public address (UDP hole punching can work).", nil, nil)
	descBytesIn        = prometheus.NewDesc(MetricBytesIn, "Bytes received from the swarm by a forwarder (service), by name.", []string{labelName}, nil)
	descBytesOut       = prometheus.NewDesc(MetricBytesOut, "Bytes sent to the swarm by a forwarder (service), by name.", []string{labelName}, nil)
	descDHTNodes       = prometheus.NewDesc(MetricDHTRoutingTable, "Nodes in the DHT routing table.", nil, nil)
	descDHTLimited     = prometheus.NewDesc(MetricDHTLimited, "What the DHT's bounds against hostile nodes dropped or refused, by limit (values_per_reply, values_per_lookup, values_per_source_ip, nodes_per_reply, nodes_per_lookup, node_ports_per_ip: lookup results dropped; lookups_capped: lookups ended by the query cap; punch_not_announced: hole-punch notices from nodes we did not announce to; probes_limited: hole punches whose probes the rate limits refused; store_per_ip: peer-store entries evicted by the per-IP share; store_caps: by the per-infohash or total cap).", []string{"limit"}, nil)
	descDHTRelayReqs   = prometheus.NewDesc(MetricDHTRelayRequests, "Relay requests through the DHT (dws_relayreq), by result: sent, failed and suppressed (ours, as a dialler that cannot hole punch: accepted by the announcer, failed or refused, or not sent within the gap to one target or via one referrer IP for one topic), accepted, active, not_announced, rate_limited and no_relay (others', as the announcer: we reserved at a relay, answered OK while a demand for the infohash ran, or refused: not announced to them, beyond the per-source or global rate, no relay client).", []string{"result"}, nil)
	descPluginUp       = prometheus.NewDesc(MetricPluginUp, "1 while a plugin runs (an out-of-process one has a live instance).", []string{labelKind, labelPlugin}, nil)
	descPluginRestarts = prometheus.NewDesc(MetricPluginRestarts, "Restarts of an out-of-process plugin after a crash.", []string{labelKind, labelPlugin}, nil)
	descPluginEvents   = prometheus.NewDesc(MetricPluginEvents, "Lifecycle events of out-of-process plugins (started, crashed, restarted, restart-failed, gave-up, hung).", []string{labelKind, labelPlugin, labelEvent}, nil)
	descBuildInfo      = prometheus.NewDesc(MetricBuildInfo, "Always 1; the version label says which swarmhost runs.", []string{labelVersion}, nil)

	descUnproven       = prometheus.NewDesc(MetricInboundUnproven, "Open inbound connections that have not proven themselves yet (no byte read from them).", nil, nil)
	descUnprovenClosed = prometheus.NewDesc(MetricInboundUnprovenClosed, "Inbound connections closed because no byte was read from them within the unproven timeout.", nil, nil)
	descDisplaced      = prometheus.NewDesc(MetricInboundDisplaced, "Unproven inbound connections that gave way to a newer inbound connection at a connection limit.", nil, nil)
	descHSInProgress   = prometheus.NewDesc(MetricHandshakesInProgress, "Inbound session handshakes in progress (they hold no maxPeers slot; bounded per source IP and in total).", nil, nil)
	descHandshakes     = prometheus.NewDesc(MetricHandshakes, "Session handshakes ended, by outcome (completed; timed_out: the handshake timeout; refused: a banned key, the firewall, a key validator, ourselves; failed: malformed, wrong topic, refused by the remote; overflow: closed at once at the handshake limits; evicted: abandoned at the total cap for a newer one from a less busy IP; deduplicated: another session with the same key was kept).", []string{"outcome"}, nil)
	descDialReserve    = prometheus.NewDesc(MetricDialReserve, "Slots of maxPeers that inbound connections cannot take (kept for our dials).", nil, nil)
	descServiceRefused = prometheus.NewDesc(MetricServiceRefused, "Forwarded connections refused for their key, by service and reason (key_not_allowed: not in a serve service's allow list; no_key: a plaintext connection to a service with an allow list; server_key_mismatch: a connect service's peer is not its pinned server).", []string{"service", labelReason}, nil)
	descUTPHalfOpen    = prometheus.NewDesc(MetricUTPHalfOpen, "uTP half-open connections: SYN-ACK sent, no answer from the peer yet (not counted toward maxPeers).", nil, nil)
	descUTPSynsDropped = prometheus.NewDesc(MetricUTPSynsDropped, "uTP SYNs dropped unanswered, by reason (rate: over the source's SYN rate; half_open_share: the source has its share of half-open connections).", []string{labelReason}, nil)
	descUTPHalfOpenEnd = prometheus.NewDesc(MetricUTPHalfOpenEnded, "uTP half-open connections ended, by outcome (answered: the peer answered and the connection went to Accept; expired: no answer; evicted: gave way at the half-open bound; backlog_full: answered but reset).", []string{"outcome"}, nil)
	descDiscDropped    = prometheus.NewDesc(MetricDiscoveryDropped, "Discovered peers dropped by a discovery limit: cycle (PeersPerCycle), referrer (PeersPerReferrer), pending (Pending), ports (PortsPerIP per topic), known (known-peer cap, nothing evictable).", []string{"limit"}, nil)
	descEvicted        = prometheus.NewDesc(MetricPeersEvicted, "Never-connected peers evicted for a new one at a known-peer cap (KnownPerTopic, KnownTotal).", nil, nil)
	descPrivate        = prometheus.NewDesc(MetricPrivateRejected, "Discovered peers at a non-global address not dialled (no PrivateNet marker, no operator opt-in).", nil, nil)
	descDialsHeld      = prometheus.NewDesc(MetricDialsHeld, "Queue dials postponed by a dial limit: rate (global or per-IP rate), ports (distinct ports per IP per window).", []string{"limit"}, nil)
	descNeverConnected = prometheus.NewDesc(MetricNeverConnected, "Known peers that never connected (capped by KnownTotal).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnsOpen, descDialsInFlight, descPeersBanned, descPeersKnown, descUnresponsive, descQueueLength, descTopicsJoined, descSubscriptions, descBound, descBootstrapped, descHolepunchable, descBytesIn, descBytesOut, descDHTNodes, descDHTLimited, descDHTRelayReqs, descPluginUp, descPluginRestarts, descPluginEvents, descBuildInfo, descUnproven, descUnprovenClosed, descDisplaced, descDialReserve, descHSInProgress, descHandshakes, descUTPHalfOpen, descUTPSynsDropped, descUTPHalfOpenEnd,
		descServiceRefused, descDiscDropped, descEvicted, descPrivate, descDialsHeld, descNeverConnected} {
		ch <- d
	}
}

// constMetric sends one metric; a label value Prometheus refuses (a plugin
// name that is not UTF-8) fails that metric alone, never the scrape.
func constMetric(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	constMetric(ch, d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	constMetric(ch, d, prometheus.CounterValue, v, labels...)
}

// inc increments a counter of vec; label values it refuses (not UTF-8, from
// a plugin's name) are dropped rather than panicking in the event loop.
func inc(vec *prometheus.CounterVec, labels ...string) {
	if c, err := vec.GetMetricWithLabelValues(labels...); err == nil {
		c.Inc()
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	version := s.cfg.Version
	if version == "" {
		version = unknownVersion
	}
	gauge(ch, descBuildInfo, 1, version)

	// open connections from the swarm itself; every pair ever seen is
	// exported, at 0 when none is open, so that alerts see the drop
	open := map[connLabels]int{}
	for _, conn := range s.sw.Connections() {
		open[labelsOf(conn)]++
	}
	s.mu.Lock()
	for l := range open {
		s.pairs[l] = true
	}
	for l := range s.pairs {
		if _, ok := open[l]; !ok {
			open[l] = 0
		}
	}
	counters := make(map[string]ByteCounter, len(s.counters))
	for n, bc := range s.counters {
		counters[n] = bc
	}
	s.mu.Unlock()
	for l, n := range open {
		gauge(ch, descConnsOpen, float64(n), l.transport, l.direction)
	}

	st := s.sw.Stats()
	gauge(ch, descDialsInFlight, float64(st.Dialing))
	gauge(ch, descPeersBanned, float64(st.Banned))
	gauge(ch, descPeersKnown, float64(st.Known))
	gauge(ch, descUnresponsive, float64(st.Unresponsive))
	gauge(ch, descQueueLength, float64(st.Queued))
	gauge(ch, descTopicsJoined, float64(st.Topics))
	gauge(ch, descSubscriptions, float64(st.Subscriptions))
	gauge(ch, descUnproven, float64(st.Unproven))
	counter(ch, descUnprovenClosed, float64(st.UnprovenClosed))
	counter(ch, descDisplaced, float64(st.Displaced))
	gauge(ch, descDialReserve, float64(st.DialReserve))
	hs := st.Handshakes
	gauge(ch, descHSInProgress, float64(hs.InProgress))
	for outcome, v := range map[string]uint64{"completed": hs.Completed, "timed_out": hs.TimedOut, "refused": hs.Refused, "failed": hs.Failed, "overflow": hs.Overflow, "evicted": hs.Evicted, "deduplicated": hs.Deduplicated} {
		counter(ch, descHandshakes, float64(v), outcome)
	}
	if f := s.cfg.ServiceRefusals; f != nil {
		for _, r := range f() {
			counter(ch, descServiceRefused, float64(r.Count), r.Service, r.Reason)
		}
	}
	if f := s.cfg.UTP; f != nil {
		u := f()
		gauge(ch, descUTPHalfOpen, float64(u.HalfOpen))
		counter(ch, descUTPSynsDropped, float64(u.SynsRateLimited), "rate")
		counter(ch, descUTPSynsDropped, float64(u.SynsOverCap), "half_open_share")
		counter(ch, descUTPHalfOpenEnd, float64(u.SynsAnswered), "answered")
		counter(ch, descUTPHalfOpenEnd, float64(u.HalfOpenExpired), "expired")
		counter(ch, descUTPHalfOpenEnd, float64(u.HalfOpenEvicted), "evicted")
		counter(ch, descUTPHalfOpenEnd, float64(u.BacklogFull), "backlog_full")
	}
	bs := st.Bounds
	for limit, v := range map[string]uint64{"cycle": bs.DroppedCycle, "referrer": bs.DroppedReferrer, "pending": bs.DroppedPending, "ports": bs.DroppedPorts, "known": bs.DroppedKnown} {
		counter(ch, descDiscDropped, float64(v), limit)
	}
	counter(ch, descEvicted, float64(bs.Evicted))
	counter(ch, descPrivate, float64(bs.RejectedPrivate))
	counter(ch, descDialsHeld, float64(bs.HeldRate), "rate")
	counter(ch, descDialsHeld, float64(bs.HeldPorts), "ports")
	gauge(ch, descNeverConnected, float64(bs.NeverConnected))

	cy := s.sw.Connectivity()
	gauge(ch, descBound, bit(cy.Bound))
	gauge(ch, descBootstrapped, bit(cy.Bootstrapped))
	gauge(ch, descHolepunchable, bit(cy.Holepunchable))

	for n, bc := range counters {
		counter(ch, descBytesIn, float64(bc.BytesIn()), n)
		counter(ch, descBytesOut, float64(bc.BytesOut()), n)
	}
	if f := s.cfg.DHTNodes; f != nil {
		if n := f(); n >= 0 {
			gauge(ch, descDHTNodes, float64(n))
		}
	}
	if f := s.cfg.DHTLimits; f != nil {
		if ls, ok := f(); ok {
			for _, c := range []struct {
				limit string
				n     uint64
			}{
				{"values_per_reply", ls.ValuesPerReply}, {"values_per_lookup", ls.ValuesPerLookup},
				{"values_per_source_ip", ls.ValuesPerSourceIP}, {"nodes_per_reply", ls.NodesPerReply},
				{"nodes_per_lookup", ls.LookupNodes}, {"node_ports_per_ip", ls.NodePortsPerIP},
				{"lookups_capped", ls.LookupsCapped}, {"punch_not_announced", ls.PunchNotAnnounced},
				{"probes_limited", ls.ProbesLimited}, {"store_per_ip", ls.StorePerIPEvicted},
				{"store_caps", ls.StoreLimitsEvicted},
			} {
				counter(ch, descDHTLimited, float64(c.n), c.limit)
			}
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsSent), "sent")
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsFailed), "failed")
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsAccepted), "accepted")
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsActive), "active")
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsNotAnnounced), "not_announced")
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsRateLimited), "rate_limited")
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsNoRelay), "no_relay")
			counter(ch, descDHTRelayReqs, float64(ls.RelayRequestsSuppressed), "suppressed")
		}
	}
	for _, p := range s.plugins.snapshot() {
		gauge(ch, descPluginUp, bit(p.up()), p.Kind, p.Name)
		if !p.External {
			continue
		}
		counter(ch, descPluginRestarts, float64(p.Restarts), p.Kind, p.Name)
		for ev, n := range p.events {
			counter(ch, descPluginEvents, float64(n), p.Kind, p.Name, ev)
		}
	}
}
