package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// serveRelayMetrics serves /metrics for srv on addr until the returned
// stop is called.
func serveRelayMetrics(log *slog.Logger, srv *relay.Server, addr string) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(observe.RelayServerCollector(srv.Stats))
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
