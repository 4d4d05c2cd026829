package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// Relay metric names: the relay server's (a daemon with relay.enabled,
// `swarmhost relay --metrics`) and the relay client's (a daemon with
// relays). Labels in comments.
const (
	MetricRelayClients         = "dwebswarm_relay_clients"                         // gauge
	MetricRelaySessions        = "dwebswarm_relay_sessions"                        // gauge
	MetricRelaySessionsTotal   = "dwebswarm_relay_sessions_total"                  // counter
	MetricRelayBytes           = "dwebswarm_relay_bytes_total"                     // counter
	MetricRelayAnnounced       = "dwebswarm_relay_announced_infohashes"            // gauge
	MetricRelayLimitHits       = "dwebswarm_relay_limit_hits_total"                // counter {limit}
	MetricRelayReserved        = "dwebswarm_relay_client_reserved"                 // gauge 0/1
	MetricRelayReservations    = "dwebswarm_relay_client_reservations_total"       // counter
	MetricRelayClientRelayed   = "dwebswarm_relay_client_connections_total"        // counter
	MetricRelayConnectBackLost = "dwebswarm_relay_client_connect_backs_lost_total" // counter
)

// RelayServerCollector exports a relay server's counters (pass
// (*relay.Server).Stats) as the dwebswarm_relay_* metrics; give it to
// [Config.Collectors].
func RelayServerCollector(stats func() relay.Stats) prometheus.Collector {
	return &relayServerCollector{stats: stats}
}

type relayServerCollector struct{ stats func() relay.Stats }

var (
	descRelayClients       = prometheus.NewDesc(MetricRelayClients, "Relay: reservations held now.", nil, nil)
	descRelaySessions      = prometheus.NewDesc(MetricRelaySessions, "Relay: relayed connections open now.", nil, nil)
	descRelaySessionsTotal = prometheus.NewDesc(MetricRelaySessionsTotal, "Relay: relayed connections opened (spliced to a client's connect-back).", nil, nil)
	descRelayBytes         = prometheus.NewDesc(MetricRelayBytes, "Relay: bytes relayed (ciphertext), both directions; counted per splice chunk (up to 1 MiB, or a direction's end).", nil, nil)
	descRelayAnnounced     = prometheus.NewDesc(MetricRelayAnnounced, "Relay: client infohashes announced now.", nil, nil)
	descRelayLimitHits     = prometheus.NewDesc(MetricRelayLimitHits, "Relay: times a limit refused or cut something, by limit (clients, sessions, sessions-per-client, bytes, duration, infohashes).", []string{"limit"}, nil)

	descRelayReserved     = prometheus.NewDesc(MetricRelayReserved, "Relay client: 1 while a reservation at a relay is held.", nil, nil)
	descRelayReservations = prometheus.NewDesc(MetricRelayReservations, "Relay client: reservations made (at any relay).", nil, nil)
	descRelayCliRelayed   = prometheus.NewDesc(MetricRelayClientRelayed, "Relay client: connections a relay forwarded and the client connected back for (handed to the swarm).", nil, nil)
	descRelayBackLost     = prometheus.NewDesc(MetricRelayConnectBackLost, "Relay client: forwarded connections lost before the swarm got them (connect-back failed, listener closed or full).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *relayServerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRelayClients, descRelaySessions, descRelaySessionsTotal, descRelayBytes, descRelayAnnounced, descRelayLimitHits} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *relayServerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge(ch, descRelayClients, float64(st.Clients))
	gauge(ch, descRelaySessions, float64(st.Sessions))
	counter(ch, descRelaySessionsTotal, float64(st.SessionsTotal))
	counter(ch, descRelayBytes, float64(st.BytesRelayed))
	gauge(ch, descRelayAnnounced, float64(st.Announced))
	for _, l := range []struct {
		name string
		n    uint64
	}{
		{"clients", st.LimitClients}, {"sessions", st.LimitSessions}, {"sessions-per-client", st.LimitSessionsPerClient},
		{"bytes", st.LimitBytes}, {"duration", st.LimitDuration}, {"infohashes", st.LimitInfohashes},
	} {
		counter(ch, descRelayLimitHits, float64(l.n), l.name)
	}
}

// RelayClientCollector exports a relay client's counters (pass
// (*relay.Client).Stats) as the dwebswarm_relay_client_* metrics; give it
// to [Config.Collectors].
func RelayClientCollector(stats func() relay.ClientStats) prometheus.Collector {
	return &relayClientCollector{stats: stats}
}

type relayClientCollector struct{ stats func() relay.ClientStats }

// Describe implements prometheus.Collector.
func (c *relayClientCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRelayReserved, descRelayReservations, descRelayCliRelayed, descRelayBackLost} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *relayClientCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge(ch, descRelayReserved, bit(st.Reserved))
	counter(ch, descRelayReservations, float64(st.Reservations))
	counter(ch, descRelayCliRelayed, float64(st.Relayed))
	counter(ch, descRelayBackLost, float64(st.ConnectBackFailed))
}
