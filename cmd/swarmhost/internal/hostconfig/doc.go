// Package hostconfig is the configuration layer of the swarmhost daemon: a
// YAML schema, strict validation with file:line:column positions and hints,
// and builders that turn a config into swarm options and plugins.
//
//	cfg, err := hostconfig.Load("/etc/swarmhost.yaml")
//	if err != nil {
//		for _, e := range hostconfig.Errors(err) { fmt.Println(e) } // file:line:col: message (hint)
//	}
//	sw, err := cfg.NewSwarm(hostconfig.BuildOptions{Logger: cfg.Logger(os.Stderr)})
//	for _, t := range cfg.Topics() { sw.Join(ctx, t.Topic, t.JoinOptions()...) }
//
// A commented example with every key is testdata/example.yaml (also
// examples/swarmhost.yaml at the repository root).
//
// # Validation
//
// Parse walks the yaml.Node tree itself, so every problem has a line and a
// column, and reports every problem at once (errors.Join of *Error, sorted
// by position, each "file:line:col: message (hint)"): unknown keys (with a
// "did you mean" suggestion, or where the key belongs), repeated keys, wrong
// types (a quoted number, a bare number where a duration is needed, a
// scalar where a list is needed ...), bad durations, bad topics, bad
// addresses, out-of-range limits, services with both or neither of serve
// and connect, duplicate service names, topics and plugins, missing or
// non-executable plugin binaries, key files that are not key files or
// that others may read, sha256 pins that are not 64 hex
// characters or do not match the binary, missing ban-list directories and
// unknown mDNS interfaces, relay keys, addresses and limits. YAML syntax errors carry the parser's line
// (column 1). Anchors and aliases work (merge keys "<<" do not); at most
// 1000 alias references are followed. Each *Error wraps a sentinel
// (framework.ErrInvalidOption, ErrInvalidTopic, ErrInvalidPeer,
// ErrUnknownPlugin, ErrNoTransport, remote.ErrBinaryMissing,
// remote.ErrChecksum, secure.ErrBadKey). An empty file is valid: all defaults.
//
// Defaults are the library's, read from its constants
// (framework.DefaultMaxPeers, DefaultPreferredPort, DefaultConnectTimeout,
// DefaultRequeue, DefaultForgetUnresponsive, Forever;
// dht.DefaultAdaptiveAfter, dht.DefaultBootstrap); plugin options left out
// are zero in the package's Config, which the package replaces by its own
// default.
//
// Durations are Go durations ("500ms", "10s", "1h30m"); a bare number is an
// error (the seed's milliseconds would be silently wrong otherwise).
// Addresses are HOST:PORT with a port from 1 to 65535 (IPv6 in brackets).
// Relative paths are relative to the config file's directory; a plugin
// path without a slash is looked up on $PATH.
//
// # Schema
//
// node — the swarm (all optional):
//
//	host              string   listen address ("" = all)
//	port              int      exact port, 0-65535; fails if taken (default: none)
//	preferredPort     int      first port tried, then +1, +2, random; 0 = random (49737).
//	                           Not together with a non-zero port.
//	bootstrap         [addr]   DHT bootstrap nodes (omitted: the public routers;
//	                           []: none). Needs the dht discovery.
//	ephemeral         true | false | adaptive   read-only, full or adaptive DHT node
//	                           (adaptive). Needs the dht discovery.
//	adaptiveAfter     duration read-only period when adaptive (30m). Needs the dht
//	                           discovery and ephemeral: adaptive.
//	maxPeers          int ≥ 1  connections including dials in flight (24)
//	maxClientSockets  int ≥ -1 dialled connections; 0 unlimited, -1 never dial (0)
//	maxServerSockets  int ≥ -1 inbound connections; 0 unlimited, -1 refuse (0)
//	connectTimeout    duration > 0, per dial (10s)
//	queue:
//	  requeue         [duration > 0]  retry schedule ([1s, 5s, 15s]; [] never retries)
//	  forget:
//	    unresponsive  duration > 0 | never  (7500ms)
//	    banned        duration > 0 | never  (never)
//	  multiplex       bool     one connection per peer across topics (false)
//	key               path     the swarm's key file (node.key beside the config
//	                           file); created with mode 0600 on first run; when it
//	                           exists it must be a key file that only its owner
//	                           may read (config check says so)
//	plaintext         bool     no encryption: raw sockets, as hyperswarm v2 (false)
//
// discoveries, transports, validators — ordered lists; each item is either
// a built-in, {name: NAME, options: {...}}, or an external plugin binary,
// {plugin: {...}}. transports defaults to [tcp] and may not be empty;
// discoveries and validators default to none. A discovery or transport may
// be listed once; validators chain in list order (first rejection wins).
// The options of tcp, utp and ratelimit (and of any registry entry with no
// decoder of its own) are the exported fields of the plugin's options
// struct, keyed in lowerCamel case (see structOptions).
//
//	discoveries:
//	  dht          options: sendRate (number; negative = unlimited), sendBurst (int),
//	               queryTimeout, roundMin, roundMax (durations), fastRelookups
//	               ([duration ≥ 0]), publicIP (IP), peerStore: {ttl (duration),
//	               maxPerInfohash, maxTotal, maxReturned (ints)}. Bootstrap,
//	               ephemeral and adaptiveAfter come from node.
//	  mdns         options: interfaces ([name], must exist on this host),
//	               includeLoopback (bool), queryBurst, announceBurst ([duration ≥ 0]),
//	               queryIntervalMin, queryIntervalMax, responseWindow, forgetAfter,
//	               ttl (durations), noRereport (bool), limits: {maxInstancesPerSource,
//	               maxInstancesPerInterface, maxInstances, maxPeersPerSource,
//	               maxPeersPerTopic (ints ≥ 1; see plugins/mdns Limits)}.
//	  static       options (required): peers ([addr | {addr, topics: [topic]}]),
//	               interval (duration).
//	transports:
//	  tcp          options: keepAlive (duration | off).
//	  utp          options: dialTimeout, idleTimeout, keepAlive, linger,
//	               halfOpenTimeout (durations), readBuffer, writeBuffer, packetSize,
//	               loopbackPacketSize, backlog, maxHalfOpen, maxHalfOpenPerIP,
//	               synBurst, maxSynSources (ints ≥ 1), synRate (number); checked
//	               by plugins/utp.
//	validators:
//	  cidr         options (required): allow, deny ([prefix or address]); one needed.
//	  dht-private  options: exempt ([prefix]).
//	  ratelimit    options: every (duration), burst, maxHosts (ints ≥ 1).
//	  banlist      options (required): path (file; its directory must exist).
//	plugin:        path (required; must exist and be executable), args ([string]),
//	               sha256 (64 hex, checked against the binary), name (string),
//	               env ([KEY=VALUE]), callTimeout, startTimeout (durations),
//	               restart: {maxRestarts, minBackoff, maxBackoff, stableAfter, hungAfter}.
//
// topics — topics joined at start:
//
//	topics:
//	- topic     string (required): 64 hex characters are the topic itself; any
//	            other string is hashed with SHA-256. An all-hex string of 32 or
//	            more digits that is not 64 long is refused (a truncated topic).
//	  announce  bool (false)
//	  lookup    bool (true); announce and lookup may not both be false.
//
// A topic may be listed once, and not also be a service's topic.
//
// services — TCP port forwarding over topics:
//
//	services:
//	- name     string (required, unique; letters, digits, . _ -)
//	  topic    as in topics (required; unique among services)
//	  serve    addr: expose this local server; every swarm connection of the
//	           topic is piped to a new connection to it (announces the topic)
//	  connect  addr: listen here; every accepted connection is piped to a
//	           peer of the topic (looks it up)
//	  allow     list of public keys (serve only): only sessions proving one
//	            of them may use the service; others are refused before the
//	            local server is dialled. allow: [] admits nobody.
//	  allowFile path (serve only; relative to the config file): more keys,
//	            one per line, # comments; re-read on every reload (SIGHUP).
//	            A service with neither allow nor allowFile admits any peer
//	            of its topic.
//	  serverKey public key (connect only): the key the serving peer must
//	            prove; a session to any other key is closed before the
//	            local client's bytes are sent.
//	  peerKey  key (connect only; 52 z-base-32 characters or 64 hex): reach
//	           only the peer with this public key. The daemon finds it by
//	           its key (Swarm.JoinPeer: the lookup of framework.PeerTopic of
//	           the key, not of the topic) and refuses, in the handshake, a
//	           peer that proves another key; the topic still picks the
//	           service on that peer. Connect services with different
//	           peerKeys may share a topic. Not with node.plaintext.
//	Exactly one of serve and connect. Keys are z-base-32 (52 characters,
//	as swarmhost key prints them) or 64 hex digits; a key is listed once
//	per list. Keys need encrypted sessions: not with node.plaintext.
//
// log: level (debug | info | warn | error; info), format (text | json; text).
//
// metrics: listen (addr; omitted: no metrics listener).
//
// relay — a blind relay (plugins/relay) beside the swarm, as swarmhost
// relay runs one; it proves node.key and announces itself on the dht
// discovery's node when one is listed:
//
//	relay:
//	  enabled                 bool (false)
//	  listen                  addr clients reserve at, TCP (node.host, a
//	                          random port); only with enabled: true
//	  maxClients              int ≥ 1 (256): reservations held at once
//	  maxSessions             int ≥ 1 (1024): relayed connections, all clients
//	  maxSessionsPerClient    int ≥ 1 (32)
//	  maxBytesPerClient       int ≥ 1 or -1, no limit (1 GiB): bytes relayed
//	                          for one reservation
//	  maxSessionDuration      duration (1h): a relayed connection is cut after it
//	  maxInfohashesPerClient  int ≥ 1 (32)
//
// The defaults are relay.DefaultLimits(), those of swarmhost relay's
// --max-* flags.
//
// relays: list of KEY@HOST:PORT (KEY: the relay's public key, as swarmhost
// relay prints it) or HOST:PORT, each once: the relays this daemon reserves
// at, in order, then (with a dht discovery) relays found on the DHT;
// omitted: none. relayWhen: unpunchable (default: reserve only while the
// DHT reports the daemon not hole-punchable, or for two minutes after a
// dialler that cannot hole punch asked for a relay through the DHT; with no
// in-process dht discovery it acts as always, and the policy in effect is
// logged at start) | always; only with relays.
// Changing relay, relays or relayWhen takes a restart.
//
// # Building
//
// [Config.NodeOptions] turns the node section into framework options;
// [Config.BuildPlugins] constructs the plugins through their packages
// (framework/remote for binaries, which starts them); [Config.SwarmOptions]
// returns both; [Config.NewSwarm] builds the swarm. [Diff] compares two
// configs for a SIGHUP reload. cmd/swarmhost's pipe flags still build
// plugins with their own factories; they should later call this package.
package hostconfig
