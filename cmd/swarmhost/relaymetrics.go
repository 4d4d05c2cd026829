package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// relayCollector exports a relay's counters as Prometheus metrics.
type relayCollector struct {
	srv                                     *relay.Server
	clients, sessions, sessionsTotal, bytes *prometheus.Desc
	announced, limitHits                    *prometheus.Desc
}

func newRelayCollector(srv *relay.Server) *relayCollector {
	return &relayCollector{
		srv:           srv,
		clients:       prometheus.NewDesc("dwebswarm_relay_clients", "Reservations held now.", nil, nil),
		sessions:      prometheus.NewDesc("dwebswarm_relay_sessions", "Relayed connections open now.", nil, nil),
		sessionsTotal: prometheus.NewDesc("dwebswarm_relay_sessions_total", "Relayed connections opened.", nil, nil),
		bytes:         prometheus.NewDesc("dwebswarm_relay_bytes_total", "Bytes relayed (ciphertext), both directions.", nil, nil),
		announced:     prometheus.NewDesc("dwebswarm_relay_announced_infohashes", "Client infohashes announced now.", nil, nil),
		limitHits:     prometheus.NewDesc("dwebswarm_relay_limit_hits_total", "Times a relay limit refused or cut something.", []string{"limit"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *relayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.clients, c.sessions, c.sessionsTotal, c.bytes, c.announced, c.limitHits} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *relayCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(st.Clients))
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(c.sessionsTotal, prometheus.CounterValue, float64(st.SessionsTotal))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(st.BytesRelayed))
	ch <- prometheus.MustNewConstMetric(c.announced, prometheus.GaugeValue, float64(st.Announced))
	for _, l := range []struct {
		name string
		n    uint64
	}{
		{"clients", st.LimitClients}, {"sessions", st.LimitSessions}, {"sessions-per-client", st.LimitSessionsPerClient},
		{"bytes", st.LimitBytes}, {"duration", st.LimitDuration}, {"infohashes", st.LimitInfohashes},
	} {
		ch <- prometheus.MustNewConstMetric(c.limitHits, prometheus.CounterValue, float64(l.n), l.name)
	}
}

// serveRelayMetrics serves /metrics for srv on addr until the returned
// stop is called.
func serveRelayMetrics(log *slog.Logger, srv *relay.Server, addr string) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newRelayCollector(srv))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("relay metrics", "err", err)
		}
	}()
	log.Info("relay metrics listening", "addr", ln.Addr().String())
	return func() { hs.Close(); <-done }, nil
}
