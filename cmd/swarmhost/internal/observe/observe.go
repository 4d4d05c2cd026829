// Package observe exposes a running swarm to operators over HTTP: Prometheus
// metrics on /metrics and a JSON status document on /status, on one
// listener. It is what `swarmhost run --metrics HOST:PORT` serves and what
// `swarmhost status` reads ([Fetch], [Render]).
//
// A [Server] watches a *framework.Swarm through an event subscription
// (connections opened and closed, peers discovered and rejected, topics
// flushed) and reads its snapshots (Stats, Connections, Topics, Status,
// Connectivity) at scrape time. What the swarm cannot tell is fed in by the
// daemon: plugin lifecycle events ([PluginTracker.OnEvent], to be set as
// remote.Config.OnEvent), forwarded bytes ([Server.AddByteCounter]) and the
// DHT routing-table size ([Config.DHTNodes], see [DHTNodes]); components
// with counters of their own add collectors ([Config.Collectors]).
//
// Metrics go to a private prometheus.Registry ([Server.Registry]), never to
// the global one.
package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// DefaultAddr is where `swarmhost status` looks when no --addr is given; a
// daemon's --metrics flag should default to the same address.
const DefaultAddr = "127.0.0.1:9737"

// Paths served by [Server.Handler].
const (
	MetricsPath = "/metrics"
	StatusPath  = "/status"
)

// ByteCounter reports the bytes a component moved: the daemon's forwarders
// (services) implement it. Both methods are called at scrape time from any
// goroutine and must be safe for concurrent use (an atomic counter is
// enough). The values are monotonic totals.
type ByteCounter interface {
	BytesIn() uint64  // bytes received from the swarm side
	BytesOut() uint64 // bytes sent to the swarm side
}

// Config configures a [Server]. The zero value works.
type Config struct {
	// Version is reported in /status and as dwebswarm_build_info.
	Version string
	// Logger receives the server's warnings (default slog.Default()).
	Logger *slog.Logger
	// PublicKey is the swarm's public key, reported in /status (zero: not
	// reported). The daemon passes the key pair it gave the swarm.
	PublicKey secure.PublicKey
	// Plaintext says the swarm runs without encryption (reported in /status).
	Plaintext bool
	// Plugins tracks the swarm's plugins and their lifecycle. Create it
	// before the plugins (so that remote.Config.OnEvent can point at its
	// OnEvent) and pass it here; nil: the server makes an empty one.
	Plugins *PluginTracker
	// DHTNodes returns the DHT routing-table size; a negative value means
	// unknown (not started). nil: the swarm has no DHT and the metric is
	// not exported. [DHTNodes] builds it from the DHT plugin.
	DHTNodes func() int
	// MDNSStats returns the in-process mDNS discovery's counters of
	// dropped records, instances and peers (the dwebswarm_mdns_* metrics).
	// nil: not exported. [MDNSStats] builds it.
	MDNSStats func() mdns.Stats
	// DHTLimits returns what the DHT's hostile-node bounds dropped
	// (dht.LimitStats), false while unknown (not started). nil: not
	// exported. [DHTLimits] builds it from the DHT plugin.
	DHTLimits func() (dht.LimitStats, bool)
	// UTP returns the uTP transport's counters (half-open connections,
	// dropped SYNs); nil: no uTP metrics. Pass (*utp.Transport).Stats.
	UTP func() utp.Stats
	// ServiceRefusals returns the forwarded services' refusals by key
	// (every service and reason, zeros included), exported as
	// dwebswarm_service_refused_total{service, reason} and in /status.
	// nil: not exported.
	ServiceRefusals func() []ServiceRefusal
	// Relay returns the counters of the daemon's relay server (pass
	// (*relay.Server).Stats): exported as the dwebswarm_relay_* metrics
	// ([RelayServerCollector]) and in /status as relay. nil: neither.
	Relay func() relay.Stats
	// Collectors are registered beside the server's own metrics and served
	// on /metrics: the daemon's components that keep their own counters
	// (see [RelayClientCollector]). A collector
	// whose metrics clash with another's makes [New] fail.
	Collectors []prometheus.Collector
	// NoRuntimeMetrics leaves out the Go runtime (go_*) and process
	// (process_*) collectors.
	NoRuntimeMetrics bool
}

// DHTNodes returns a [Config.DHTNodes] hook reading the routing-table size of
// the DHT plugin (-1 until the swarm starts it).
func DHTNodes(p *dht.Plugin) func() int {
	return func() int {
		d := p.Node()
		if d == nil {
			return -1
		}
		return d.Stats().Nodes
	}
}

// DHTLimits returns a [Config.DHTLimits] hook reading the DHT plugin's
// [dht.Discovery.LimitStats] (false until the swarm starts it).
func DHTLimits(p *dht.Plugin) func() (dht.LimitStats, bool) {
	return func() (dht.LimitStats, bool) {
		d := p.Node()
		if d == nil {
			return dht.LimitStats{}, false
		}
		return d.LimitStats(), true
	}
}

type lifeState int

const (
	stateNew lifeState = iota
	stateStarted
	stateDone
)

// Server serves a swarm's metrics and status. Build it with [New], then
// [Server.Start] it on an address, or mount [Server.Handler] yourself and
// call [Server.Watch]; [Server.Shutdown] stops it. All methods are safe for
// concurrent use.
type Server struct {
	sw      *framework.Swarm
	cfg     Config
	log     *slog.Logger
	plugins *PluginTracker
	reg     *prometheus.Registry
	m       *eventMetrics
	created time.Time
	handler http.Handler

	mu       sync.Mutex
	conns    map[*framework.Conn]time.Time // open connections seen, with when they opened
	flushed  map[framework.Topic]bool      // topics seen flushed (FlushedEvent)
	names    map[framework.Topic]string    // topic names given by the daemon
	counters map[string]ByteCounter
	pairs    map[connLabels]bool // (transport, direction) pairs ever seen

	life    sync.Mutex
	state   lifeState
	watched bool
	sub     *framework.Subscription
	srv     *http.Server
	ln      net.Listener
	wg      sync.WaitGroup
}

// New builds a server for sw. It starts nothing: call [Server.Start].
func New(sw *framework.Swarm, cfg Config) (*Server, error) {
	if sw == nil {
		return nil, errors.New("observe: nil swarm")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	plugins := cfg.Plugins
	if plugins == nil {
		plugins = NewPluginTracker()
	}
	s := &Server{
		sw:       sw,
		cfg:      cfg,
		log:      log.With("component", "observe"),
		plugins:  plugins,
		reg:      prometheus.NewRegistry(),
		m:        newEventMetrics(),
		created:  time.Now(),
		conns:    make(map[*framework.Conn]time.Time),
		flushed:  make(map[framework.Topic]bool),
		names:    make(map[framework.Topic]string),
		counters: make(map[string]ByteCounter),
		pairs:    make(map[connLabels]bool),
	}
	cs := []prometheus.Collector{s.m, &snapshotCollector{s: s}}
	if cfg.MDNSStats != nil {
		cs = append(cs, &mdnsCollector{stats: cfg.MDNSStats})
	}
	if cfg.Relay != nil {
		cs = append(cs, RelayServerCollector(cfg.Relay))
	}
	for _, c := range cfg.Collectors {
		if c != nil {
			cs = append(cs, c)
		}
	}
	if !cfg.NoRuntimeMetrics {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := s.reg.Register(c); err != nil {
			return nil, fmt.Errorf("observe: register metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc(StatusPath, s.serveStatus)
	s.mountUI(mux) // the status page on /, see ui.go
	s.handler = mux
	return s, nil
}

// Registry returns the server's private registry, for the daemon's own
// collectors. /metrics serves everything registered there.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Plugins returns the plugin tracker (the one from [Config.Plugins], or the
// server's own).
func (s *Server) Plugins() *PluginTracker { return s.plugins }

// Handler serves /metrics, /status and the status page on /.
func (s *Server) Handler() http.Handler { return s.handler }

// Watch subscribes to the swarm's events, which feed the event counters and
// the connections' ages, without serving HTTP (for a caller that mounts
// [Server.Handler] itself). Start calls it; later calls do nothing.
// Shutdown ends it.
func (s *Server) Watch() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.state == stateDone {
		return http.ErrServerClosed
	}
	s.watchLocked()
	return nil
}

func (s *Server) watchLocked() {
	if s.watched {
		return
	}
	s.watched = true
	sub := s.sw.Subscribe()
	s.sub = sub
	// connections opened before the subscription count as opened now; the
	// seen set drops the ones that also arrive as events
	now := time.Now()
	for _, c := range s.sw.Connections() {
		s.connOpened(c, now)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for ev := range sub.C() {
			s.observe(ev)
		}
	}()
}

// Start listens on addr (HOST:PORT; port 0 picks a free one, see
// [Server.Addr]), watches the swarm and serves in the background. It is
// called once. On a loopback address it answers only requests whose Host
// header is an IP address or localhost (a guard against DNS rebinding: a
// web page could otherwise read /status through the operator's browser);
// [Server.Handler], mounted elsewhere, has no such guard.
func (s *Server) Start(addr string) error {
	s.life.Lock()
	defer s.life.Unlock()
	switch {
	case s.state == stateDone:
		return http.ErrServerClosed
	case s.srv != nil:
		return errors.New("observe: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("observe: listen on %s: %w", addr, err)
	}
	s.watchLocked()
	s.state = stateStarted
	s.ln = ln
	handler := s.handler
	if isLoopbackListener(ln) {
		handler = localHostsOnly(handler)
	}
	s.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv := s.srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.log.Info("serving metrics and status", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.life.Lock()
	defer s.life.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops serving (waiting for requests in progress until ctx is
// done, then closing them), closes the event subscription and waits for the
// server's goroutines. Later calls return nil. It does not close the swarm.
func (s *Server) Shutdown(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.state == stateDone {
		return nil
	}
	s.state = stateDone
	var err error
	if s.srv != nil {
		if err = s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
	}
	if s.sub != nil {
		s.sub.Close()
	}
	s.wg.Wait()
	s.mu.Lock()
	clear(s.conns)
	s.mu.Unlock()
	return err
}

// AddByteCounter registers c under name (a service's name): its totals are
// exported as dwebswarm_bytes_in_total / dwebswarm_bytes_out_total
// {name="..."} and listed in /status. A counter already registered under
// name is replaced.
func (s *Server) AddByteCounter(name string, c ByteCounter) error {
	if name == "" || c == nil {
		return errors.New("observe: a byte counter needs a name and a value")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters[name] = c
	return nil
}

// RemoveByteCounter unregisters the counter named name (a service removed by
// a reload). Removing an unknown name does nothing.
func (s *Server) RemoveByteCounter(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.counters, name)
}

// NameTopic gives topic a readable name in /status (the string a config
// hashed into it); an empty name removes it.
func (s *Server) NameTopic(topic framework.Topic, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		delete(s.names, topic)
		return
	}
	s.names[topic] = name
}
