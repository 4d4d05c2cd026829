package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/forward"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

const runHelp = `usage: swarmhost run --config FILE [--metrics HOST:PORT]

Runs the daemon the config describes: its plugins, its topics and its
services (TCP port forwarding over topics). SIGINT/SIGTERM shut it down
gracefully (un-announce, close connections, stop plugins) within 10 s;
SIGHUP reloads the config (not on Windows, which has no SIGHUP: restart
instead): topics and services added or removed, others untouched. Sections that need a restart (node, plugins, log, metrics, relay) are
reported, not applied.

The swarm's identity is the key file node.key (default: node.key beside the
config file), created with mode 0600 on first run; the public key is logged
at start and reported by "swarmhost status" and "swarmhost key --config".

In daemon mode the swarm's own queue never dials: connections are made by
"connect" services, one per forwarded TCP connection.

examples:
  swarmhost config check swarmhost.yaml
  swarmhost run --config swarmhost.yaml --metrics 127.0.0.1:9737
  swarmhost status --addr 127.0.0.1:9737

flags:
`

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 10 * time.Second

func runRun(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, runHelp); fs.PrintDefaults() }
	path := fs.String("config", "", "the daemon's YAML config `FILE` (required)")
	metrics := fs.String("metrics", "", "serve Prometheus /metrics and JSON /status on `HOST:PORT` (overrides metrics.listen)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *path == "" || fs.NArg() != 0 {
		fmt.Fprintln(s.err, "swarmhost run: --config FILE is required")
		fs.Usage()
		return 2
	}
	hup := make(chan os.Signal, 1)
	notifyReload(hup)
	defer signal.Stop(hup)
	d, err := startDaemon(ctx, *path, *metrics, s)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost run:", err)
		return 1
	}
	d.serve(ctx, hup)
	if err := d.shutdown(); err != nil {
		fmt.Fprintln(s.err, "swarmhost run: shutdown:", err)
		return 1
	}
	return 0
}

// daemon is a running swarmhost: a swarm, its services and its observer.
type daemon struct {
	path string
	log  *slog.Logger
	cfg  *hostconfig.Config
	sw   *framework.Swarm
	fwd  *forward.Manager
	obs  *observe.Server
	// refusals logs inbound connections refused at the connection limit
	refusals *observe.RefusalLog
	// plugins built from the config (the swarm owns and closes them)
	plugins *hostconfig.Plugins
	// publicKey is the swarm's identity, loaded from node.key at start
	publicKey secure.PublicKey
	// relay is the relay server (config relay.enabled), nil when off
	relay *relay.Server
	// relayClient reserves at the config's relays, nil when none
	relayClient *relay.Client
}

// startDaemon loads the config, starts the swarm, the observer (when a
// metrics address is set) and every topic and service.
func startDaemon(ctx context.Context, path, metricsAddr string, s stdio) (*daemon, error) {
	cfg, err := hostconfig.Load(path)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger(s.err)
	kp, created, err := cfg.LoadKey()
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created key file", "path", cfg.Node.Key, "mode", "0600", "public_key", kp.Public.String())
	}
	tracker := observe.NewPluginTracker()
	onEvent := tracker.OnEvent
	if hook := onPluginEvent; hook != nil {
		onEvent = func(e remote.Event) { tracker.OnEvent(e); hook(e) }
	}
	opts, plugins, err := cfg.SwarmOptions(hostconfig.BuildOptions{Logger: log, OnPluginEvent: onEvent})
	if err != nil {
		return nil, err
	}
	opts = append(opts, identityOptions(kp, cfg.Node.Plaintext)...)
	// services make the connections: the queue never dials on its own
	opts = append(opts, framework.WithMaxClientSockets(-1))
	var dhtPlugin *dht.Plugin
	for _, p := range plugins.Discoveries {
		if dp, ok := p.(*dht.Plugin); ok {
			dhtPlugin = dp
		}
	}
	var sw *framework.Swarm
	var findRelays func(context.Context) ([]string, error)
	if dhtPlugin != nil {
		findRelays = relay.DHTFinder(dhtPlugin.Node)
	}
	rc, err := relayClient(log, kp, cfg.Relays, cfg.RelayWhen, findRelays, func() framework.Connectivity { return sw.Connectivity() }, plugins.Discoveries)
	if err != nil {
		plugins.Close()
		return nil, err
	}
	if rc != nil {
		opts = append(opts, rc.Options()...)
	}
	sw, err = framework.New(opts...)
	if err != nil {
		plugins.Close()
		return nil, err
	}
	// subscribed before Start: a refusal right after the listeners open counts
	refusals := observe.NewRefusalLog(sw, log, 0, nil)
	if err := sw.Start(ctx); err != nil {
		sw.Close()
		refusals.Close()
		return nil, err
	}
	d := &daemon{path: path, log: log, cfg: cfg, sw: sw, plugins: plugins, refusals: refusals, publicKey: kp.Public, relayClient: rc}
	d.fwd = forward.New(sw, forward.Options{Logger: log})
	if cfg.Relay.Enabled {
		if d.relay, err = startDaemonRelay(log, kp, cfg, dhtPlugin); err != nil {
			d.shutdown()
			return nil, err
		}
	}
	var mdnsDisc *mdns.Discovery
	for _, p := range plugins.Discoveries {
		tracker.Add("discovery", p.Name(), "")
		if md, ok := p.(*mdns.Discovery); ok {
			mdnsDisc = md
		}
	}
	var utpTransport *utp.Transport
	for _, p := range plugins.Transports {
		tracker.Add("transport", p.Name(), "")
		if ut, ok := p.(*utp.Transport); ok {
			utpTransport = ut
		}
	}
	for _, p := range plugins.Validators {
		tracker.Add("validator", p.Name(), "")
	}
	if metricsAddr == "" {
		metricsAddr = cfg.Metrics.Listen
	}
	if metricsAddr != "" {
		oc := observe.Config{Version: strings.TrimPrefix(versionString(), "swarmhost "), Logger: log, Plugins: tracker,
			PublicKey: kp.Public, Plaintext: cfg.Node.Plaintext, ServiceRefusals: serviceRefusals(d.fwd)}
		if dhtPlugin != nil {
			oc.DHTNodes = observe.DHTNodes(dhtPlugin)
			oc.DHTLimits = observe.DHTLimits(dhtPlugin)
		}
		if mdnsDisc != nil {
			oc.MDNSStats = observe.MDNSStats(mdnsDisc)
		}
		if utpTransport != nil {
			oc.UTP = utpTransport.Stats
		}
		if d.relay != nil {
			oc.Relay = d.relay.Stats
		}
		if rc != nil {
			oc.Collectors = append(oc.Collectors, observe.RelayClientCollector(rc.Stats))
		}
		obs, err := observe.New(sw, oc)
		if err == nil {
			err = obs.Start(metricsAddr)
		}
		if err != nil {
			d.shutdown() // the relay too
			return nil, fmt.Errorf("metrics on %s: %w", metricsAddr, err)
		}
		d.obs = obs
	}
	if err := d.apply(ctx, hostconfig.Diff(nil, cfg)); err != nil {
		d.shutdown()
		return nil, err
	}
	log.Info("running", "config", path, "public_key", kp.Public.String(), "mode", mode(cfg.Node.Plaintext), "port", sw.Port(), "topics", len(cfg.Topics()), "services", len(cfg.Services()), "metrics", metricsAddr)
	return d, nil
}

// startDaemonRelay starts the relay of the config's relay section: on
// relay.listen (default node.host, a random port), announcing on the dht
// discovery's node when there is one.
func startDaemonRelay(log *slog.Logger, kp secure.KeyPair, cfg *hostconfig.Config, dhtPlugin *dht.Plugin) (*relay.Server, error) {
	listen := cfg.Relay.Listen
	if listen == "" {
		listen = net.JoinHostPort(cfg.Node.Host, "0")
	}
	var node *dht.Node
	if dhtPlugin != nil {
		node = dhtPlugin.Node()
	}
	srv, err := newRelayServer(log, kp, listen, cfg.Relay.Limits, node)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	log.Info("relay listening", "addr", srv.Addr().String(), "relay", kp.Public.String()+"@"+srv.Addr().String(), "dht", node != nil)
	return srv, nil
}

// serve runs until ctx ends, reloading the config on every signal of hup.
func (d *daemon) serve(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := d.reload(ctx); err != nil {
				d.log.Error("reload failed; keeping the running config", "err", err)
			}
		}
	}
}

// reload applies the config file's changes to topics and services.
func (d *daemon) reload(ctx context.Context) error {
	cfg, err := hostconfig.Load(d.path)
	if err != nil {
		return err
	}
	ch := hostconfig.Diff(d.cfg, cfg)
	if len(ch.Restart) > 0 {
		d.log.Warn("config sections changed that take effect on restart only", "sections", ch.Restart)
	}
	if cfg.Node.Key != d.cfg.Node.Key {
		d.log.Warn("node.key changed: the new identity takes effect on restart only", "running_key", d.publicKey.String(), "old", d.cfg.Node.Key, "new", cfg.Node.Key)
	}
	if cfg.Node.Plaintext != d.cfg.Node.Plaintext {
		d.log.Warn("node.plaintext changed: takes effect on restart only", "running", mode(d.cfg.Node.Plaintext), "new", mode(cfg.Node.Plaintext))
	}
	err = d.apply(ctx, ch)
	d.cfg = cfg
	d.log.Info("reloaded", "topics_added", len(ch.TopicsAdded), "topics_removed", len(ch.TopicsRemoved),
		"services_added", len(ch.ServicesAdded), "services_removed", len(ch.ServicesRemoved), "allow_lists_changed", len(ch.AccessChanged))
	return err
}

// apply leaves and joins topics and stops and starts services. Services
// first leave, then topics; joins come after.
func (d *daemon) apply(ctx context.Context, ch hostconfig.Changes) error {
	var errs []error
	for _, s := range ch.ServicesRemoved {
		if err := d.fwd.Remove(s.Name); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Name, err))
		}
		if d.obs != nil {
			d.obs.RemoveByteCounter(s.Name)
		}
		switch {
		case !s.JoinsTopic():
			d.leavePeer(ctx, s.PeerKey, ch, s.Name)
		case !d.topicStillUsed(s.Topic, ch, s.Name):
			d.leave(ctx, s.Topic)
		}
	}
	for _, t := range ch.TopicsRemoved {
		d.leave(ctx, t.Topic)
		if d.obs != nil {
			d.obs.NameTopic(t.Topic, "")
		}
	}
	for _, t := range append(append([]hostconfig.Topic(nil), ch.TopicsAdded...), ch.TopicsChanged...) {
		if err := d.sw.Join(ctx, t.Topic, t.JoinOptions()...); err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.Text, err))
			continue
		}
		if d.obs != nil {
			d.obs.NameTopic(t.Topic, t.Text)
		}
	}
	for _, s := range ch.ServicesAdded {
		if err := d.joinService(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Name, err))
			continue
		}
		if err := d.fwd.Add(ctx, forward.Service{Name: s.Name, Topic: s.Topic, Serve: s.Serve, Connect: s.Connect, Allow: allowlist(s), ServerKey: s.ServerKey, PeerKey: s.PeerKey}); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Name, err))
			continue
		}
		if d.obs != nil {
			d.obs.NameTopic(s.Topic, s.Name)
			if !s.PeerKey.IsZero() {
				d.obs.NameTopic(framework.PeerTopic(s.PeerKey), s.Name+" (peer "+s.PeerKey.Short()+")")
			}
			d.obs.AddByteCounter(s.Name, serviceBytes{d.fwd, s.Name})
		}
		attrs := []any{"name", s.Name, "serve", s.Serve, "connect", s.Connect, "addr", addrString(d.fwd, s.Name)}
		if s.Restricted {
			attrs = append(attrs, "allowed_keys", len(s.Allow))
		}
		if !s.ServerKey.IsZero() {
			attrs = append(attrs, "server_key", s.ServerKey.String())
		}
		d.log.Info("service up", attrs...)
	}
	for _, s := range ch.AccessChanged {
		if err := d.fwd.SetAllow(s.Name, allowlist(s)); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// allowlist is the forward allow list of a configured service: nil (any
// key) unless it sets allow or allowFile.
func allowlist(s hostconfig.Service) *forward.Allowlist {
	if !s.Restricted {
		return nil
	}
	return forward.NewAllowlist(s.Allow...)
}

// joinService joins what service s needs: its topic, or for a connect
// service with a peer key that peer, found by its key (the topic still
// picks the service on the peer, in the handshake).
func (d *daemon) joinService(ctx context.Context, s hostconfig.Service) error {
	if !s.JoinsTopic() {
		if err := d.sw.JoinPeer(ctx, s.PeerKey); err != nil {
			return fmt.Errorf("peer key: %w", err)
		}
		return nil
	}
	if err := d.sw.Join(ctx, s.Topic, s.JoinOptions()...); err != nil {
		return fmt.Errorf("topic: %w", err)
	}
	return nil
}

// topicStillUsed reports whether the new config keeps topic joined for
// another reason than service name.
func (d *daemon) topicStillUsed(t framework.Topic, ch hostconfig.Changes, name string) bool {
	for _, x := range ch.ServicesAdded {
		if x.Topic == t && x.JoinsTopic() {
			return true
		}
	}
	for _, x := range d.cfg.Topics() {
		if x.Topic == t {
			return true
		}
	}
	for _, x := range d.cfg.Services() {
		if x.Topic == t && x.JoinsTopic() && x.Name != name {
			return true
		}
	}
	return false
}

// leavePeer leaves the peer key of the removed service name unless
// another service still reaches that peer: one added, or one of the
// running config that stays. A service re-added under the same name joins
// the key again.
func (d *daemon) leavePeer(ctx context.Context, key secure.PublicKey, ch hostconfig.Changes, name string) {
	for _, x := range ch.ServicesAdded {
		if x.PeerKey == key && x.Name != name {
			return
		}
	}
	for _, x := range d.cfg.Services() {
		if x.PeerKey == key && x.Name != name && !slices.ContainsFunc(ch.ServicesRemoved, func(r hostconfig.Service) bool { return r.Name == x.Name }) {
			return
		}
	}
	if err := d.sw.LeavePeer(ctx, key); err != nil && !errors.Is(err, framework.ErrNotJoined) {
		d.log.Warn("leave peer", "key", key.Short(), "err", err)
	}
}

func (d *daemon) leave(ctx context.Context, t framework.Topic) {
	if err := d.sw.Leave(ctx, t); err != nil && !errors.Is(err, framework.ErrNotJoined) {
		d.log.Warn("leave", "topic", t.Short(), "err", err)
	}
}

// shutdown closes the services, the observer and the swarm (which
// un-announces, closes every connection and stops the plugins), bounded by
// shutdownTimeout.
func (d *daemon) shutdown() error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		d.fwd.Close()
		if d.obs != nil {
			errs = append(errs, d.obs.Shutdown(ctx))
		}
		if d.relay != nil {
			d.relay.Close()
		}
		if err := d.sw.Close(); err != nil && !errors.Is(err, framework.ErrClosed) {
			errs = append(errs, err)
		}
		d.refusals.Close()
		done <- errors.Join(errs...)
	}()
	select {
	case err := <-done:
		d.log.Info("stopped")
		return err
	case <-time.After(shutdownTimeout + time.Second):
		return fmt.Errorf("not stopped within %v", shutdownTimeout)
	}
}

// serviceBytes exports a service's byte counters to the observer.
type serviceBytes struct {
	m    *forward.Manager
	name string
}

func (b serviceBytes) BytesIn() uint64 {
	if m := b.m.Metrics(b.name); m != nil {
		return m.BytesIn.Load()
	}
	return 0
}

func (b serviceBytes) BytesOut() uint64 {
	if m := b.m.Metrics(b.name); m != nil {
		return m.BytesOut.Load()
	}
	return 0
}

func addrString(m *forward.Manager, name string) string {
	if a := m.Addr(name); a != nil {
		return a.String()
	}
	return ""
}

// serviceRefusals exports the services' refusals by key to the observer.
func serviceRefusals(m *forward.Manager) func() []observe.ServiceRefusal {
	return func() []observe.ServiceRefusal {
		var out []observe.ServiceRefusal
		for name, met := range m.AllMetrics() {
			for reason, n := range met.Refusals() {
				out = append(out, observe.ServiceRefusal{Service: name, Reason: reason, Count: n})
			}
		}
		return out
	}
}
