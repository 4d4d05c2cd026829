package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

const relayHelp = `usage: swarmhost relay --listen HOST:PORT [flags]

Runs a blind relay for swarms behind NATs that cannot be hole punched
(symmetric NATs): a client reserves over a Noise session, gets a port on
this host, and this relay announces the client's infohashes on the DHT
with that port; connections made to it are forwarded, unread, inside the
client's session. The relay sees the infohashes and both addresses, never
topics, plaintext or (Noise XX) the peers' keys. Prints KEY@HOST:PORT (what
clients pass to --relay) on the first stdout line, then runs until
interrupted. Without --bootstrap nothing is announced: clients must be
told the relay, and diallers must be told the allocations.

example:
  swarmhost relay --listen 203.0.113.7:7000 --bootstrap 203.0.113.1:6881 --key relay.key
  swarmhost pipe --discovery dht --bootstrap 203.0.113.1:6881 --relay KEY@203.0.113.7:7000 --announce my-topic

flags:
`

func runRelay(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, relayHelp); fs.PrintDefaults() }
	listen := fs.String("listen", "", "`HOST:PORT` clients reserve at (TCP); allocations are bound on the same host")
	dhtListen := fs.String("dht-listen", "", "`HOST:PORT` of the relay's DHT node (UDP; default: --listen's host and port)")
	var bootstrap []string
	fs.Func("bootstrap", "DHT bootstrap node `HOST:PORT` (repeatable, or comma-separated)", func(v string) error {
		bootstrap = append(bootstrap, strings.Split(v, ",")...)
		return nil
	})
	keyFile := fs.String("key", "", "the relay's key pair `FILE` (created if missing; default: a new key for this run)")
	d := relay.DefaultLimits()
	var lim relay.Limits
	fs.IntVar(&lim.Clients, "max-clients", d.Clients, "reservations held at once")
	fs.IntVar(&lim.Sessions, "max-sessions", d.Sessions, "relayed connections open at once, all clients")
	fs.IntVar(&lim.SessionsPerClient, "max-sessions-per-client", d.SessionsPerClient, "relayed connections open at once to one client")
	fs.Int64Var(&lim.BytesPerClient, "max-bytes-per-client", d.BytesPerClient, "bytes relayed for one reservation (-1: no limit)")
	fs.DurationVar(&lim.SessionDuration, "max-session-duration", d.SessionDuration, "a relayed connection is cut after this `DURATION`")
	fs.IntVar(&lim.InfohashesPerClient, "max-infohashes-per-client", d.InfohashesPerClient, "infohashes one client may announce")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on `HOST:PORT` at /metrics (sessions, bytes relayed, limits hit)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *listen == "" || fs.NArg() != 0 {
		fmt.Fprintln(s.err, "swarmhost relay: --listen HOST:PORT is required")
		fs.Usage()
		return 2
	}
	if _, _, err := splitHostPort(*listen); err != nil {
		fmt.Fprintln(s.err, "swarmhost relay: --listen:", err)
		return 2
	}
	log, err := newLogger(s.err, *logLevel)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost relay:", err)
		return 2
	}
	kp, err := identityFlags{key: *keyFile}.keyPair(s)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost relay:", err)
		return 2
	}
	srv, node, err := startRelay(log, kp, *listen, *dhtListen, bootstrap, lim)
	if err != nil {
		return exitCode(ctx, "relay", err, s)
	}
	defer func() {
		srv.Close()
		if node != nil {
			node.Close()
		}
	}()
	if *metrics != "" {
		stop, err := serveRelayMetrics(log, srv, *metrics)
		if err != nil {
			return exitCode(ctx, "relay", fmt.Errorf("--metrics: %w", err), s)
		}
		defer stop()
	}
	fmt.Fprintf(s.out, "%s@%s\n", kp.Public, srv.Addr())
	log.Info("relay listening", "addr", srv.Addr().String(), "public_key", kp.Public.String(), "dht", node != nil)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			st := srv.Stats()
			log.Info("relay stopped", "sessions_total", st.SessionsTotal, "bytes_relayed", st.BytesRelayed)
			return 0
		case <-tick.C:
			st := srv.Stats()
			log.Info("relay stats", "clients", st.Clients, "sessions", st.Sessions, "sessions_total", st.SessionsTotal,
				"bytes_relayed", st.BytesRelayed, "announced", st.Announced)
		}
	}
}

// startRelay starts the relay's DHT node (when bootstrap is given) and the
// relay server announcing on it.
func startRelay(log *slog.Logger, kp secure.KeyPair, listen, dhtListen string, bootstrap []string, lim relay.Limits) (*relay.Server, *dht.Node, error) {
	var node *dht.Node
	if len(bootstrap) > 0 {
		if dhtListen == "" {
			dhtListen = listen
		}
		var err error
		node, err = dht.ListenNode(dht.Config{ListenAddr: dhtListen, Bootstrap: bootstrap, Ephemeral: dht.Bool(false)})
		if err != nil {
			return nil, nil, fmt.Errorf("relay dht: %w", err)
		}
	}
	srv, err := newRelayServer(log, kp, listen, lim, node)
	if err != nil {
		if node != nil {
			node.Close()
		}
		return nil, nil, err
	}
	return srv, node, nil
}

// newRelayServer starts a relay server on listen with the limits lim,
// logging the limits it hits; it announces on node when node is not nil
// (swarmhost relay's own node, or a daemon's DHT discovery's).
func newRelayServer(log *slog.Logger, kp secure.KeyPair, listen string, lim relay.Limits, node *dht.Node) (*relay.Server, error) {
	cfg := relay.ServerConfig{KeyPair: kp, Listen: listen, Limits: lim, Logger: log,
		OnLimit: func(kind string, client secure.PublicKey) {
			log.Info("relay limit", "limit", kind, "client", client.Short())
		}}
	if node != nil {
		cfg.Announcer = relay.DHTAnnouncer(node)
		cfg.OnAnnounced = func(ih [20]byte, port int) {
			log.Debug("relay announced", "infohash", fmt.Sprintf("%x", ih), "port", port)
		}
	}
	return relay.NewServer(cfg)
}

// relayOnDemand makes rc reserve when a dialler that cannot hole punch asks
// for a relay through the DHT (a dht plugin among discoveries; see
// dht.RelayRequestMethod), and reports whether there was one to ask. rc
// may be nil.
func relayOnDemand(rc *relay.Client, discoveries []framework.Discovery) bool {
	found := false
	for _, d := range discoveries {
		if dp, ok := d.(*dht.Plugin); ok {
			found = true
			if rc != nil {
				dp.SetOnRelayRequest(func([20]byte) { rc.Demand() })
			}
		}
	}
	return found
}

// relayClient builds the relay client of a swarm from --relay and
// --relay-when (or a daemon's relays and relayWhen): nil when relays is
// empty. find, when not nil, finds more relays, tried after relays (see
// relay.DHTFinder). connectivity is asked, for "unpunchable", whether the
// swarm needs a relay, and the diallers' relay requests reach the client
// through the in-process DHT plugin among discoveries (relayOnDemand).
// With no such plugin (no DHT, or one out of process) nothing could ask,
// and no connectivity report would say "not hole-punchable": the policy in
// effect is then "always". It is logged at info.
func relayClient(log *slog.Logger, kp secure.KeyPair, relays []string, when string, find func(context.Context) ([]string, error), connectivity func() framework.Connectivity, discoveries []framework.Discovery) (*relay.Client, error) {
	if len(relays) == 0 {
		return nil, nil
	}
	cfg := relay.ClientConfig{KeyPair: kp, Relays: relays, Find: find, Logger: log}
	hasDHT := relayOnDemand(nil, discoveries)
	effective := when
	switch when {
	case "always":
	case "", "unpunchable":
		effective = "unpunchable"
		if !hasDHT {
			effective = "always"
			break
		}
		cfg.Need = relay.Unpunchable(connectivity)
	default:
		return nil, fmt.Errorf("%w: --relay-when %q: want always or unpunchable", framework.ErrInvalidOption, when)
	}
	rc, err := relay.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if effective == "always" && when != "always" {
		log.Info("relay policy", "relay_when", effective, "configured", "unpunchable", "reason", "no in-process DHT plugin: no connectivity report nor relay requests")
	} else {
		log.Info("relay policy", "relay_when", effective)
	}
	relayOnDemand(rc, discoveries)
	return rc, nil
}
