package hostconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// seenKeys remembers where some keys were set, for checks across sections.
type seenKeys struct {
	bootstrap, ephemeral, adaptiveAfter, port, preferredPort *yaml.Node
	// key is the value of node.key (nil: the default path)
	key *yaml.Node
	// relays and relayWhen are the keys of the top-level relays and
	// relayWhen; relayListen is relay.listen's
	relays, relayWhen, relayListen *yaml.Node
}

func (d *decoder) root(n *yaml.Node, c *Config) {
	if n == nil {
		return
	}
	if n = d.resolve(n); n == nil {
		return
	}
	var seen seenKeys
	d.mapping(n, "", fields{
		"node":        func(_, v *yaml.Node) { d.node(v, &c.Node, &seen) },
		"discoveries": func(_, v *yaml.Node) { c.Discoveries = d.plugins(v, kindDiscovery) },
		"transports": func(k, v *yaml.Node) {
			before := len(d.errs)
			c.Transports = d.plugins(v, kindTransport)
			if len(d.errs) == before && len(c.Transports) == 0 {
				d.add(k, framework.ErrNoTransport, "list at least one, e.g. - name: tcp, or drop the section: the default is tcp", "transports: empty")
			}
		},
		"validators": func(_, v *yaml.Node) { c.Validators = d.plugins(v, kindValidator) },
		"topics":     func(_, v *yaml.Node) { c.topics = d.topics(v) },
		"services":   func(_, v *yaml.Node) { c.services = d.services(v) },
		"log":        func(_, v *yaml.Node) { d.log(v, &c.Log) },
		"relay":      func(_, v *yaml.Node) { d.relay(v, &c.Relay, &seen) },
		"relays": func(k, v *yaml.Node) {
			seen.relays = k
			c.Relays = d.relays(v)
		},
		"relayWhen": func(k, v *yaml.Node) {
			seen.relayWhen = k
			s, ok := d.str(v, "relayWhen")
			if !ok {
				return
			}
			if s != "always" && s != "unpunchable" {
				d.add(v, framework.ErrInvalidOption, didYouMean(s, []string{"always", "unpunchable"}, "values")+"; unpunchable (default) reserves only while the DHT reports this daemon not hole-punchable or a dialler that cannot hole punch asks, always from the start", "relayWhen: unknown value %q", clip(s))
				return
			}
			c.RelayWhen = s
		},
		"metrics": func(_, v *yaml.Node) {
			d.mapping(v, "metrics", fields{
				"listen": func(_, v *yaml.Node) {
					if s, ok := d.addr(v, "metrics.listen", hostOptional); ok {
						c.Metrics.Listen = s
					}
				},
			}, nil)
		},
	}, map[string]string{
		"bootstrap":  "bootstrap belongs under node:",
		"ephemeral":  "ephemeral belongs under node:",
		"port":       "port belongs under node:",
		"host":       "host belongs under node:",
		"maxPeers":   "maxPeers belongs under node:",
		"queue":      "queue belongs under node:",
		"discovery":  `did you mean "discoveries"?`,
		"transport":  `did you mean "transports"?`,
		"validator":  `did you mean "validators"?`,
		"topic":      `did you mean "topics"?`,
		"service":    `did you mean "services"?`,
		"plugins":    "list plugins under discoveries:, transports: or validators:",
		"listen":     "the metrics address is metrics.listen",
		"multiplex":  "multiplex belongs under node.queue:",
		"requeue":    "requeue belongs under node.queue:",
		"key":        "key belongs under node:",
		"plaintext":  "plaintext belongs under node:",
		"relay_when": `did you mean "relayWhen"?`,
		"relayAt":    `the relays this daemon reserves at are relays: [KEY@HOST:PORT, ...]`,
	})
	d.crossChecks(c, &seen)
	d.keyFile(c.Node.Key, seen.key)
}

func (d *decoder) node(v *yaml.Node, n *Node, seen *seenKeys) {
	d.mapping(v, "node", fields{
		"host": func(_, v *yaml.Node) {
			if s, ok := d.str(v, "node.host"); ok {
				if msg := checkHost(s); s != "" && msg != "" {
					d.errf(v, "an IP address such as 127.0.0.1 or ::, or a host name; empty listens on all addresses", "node.host: %s", msg)
					return
				}
				n.Host = s
			}
		},
		"port": func(k, v *yaml.Node) {
			seen.port = k
			if p, ok := d.integer(v, "node.port", 0, 65535, "0 to 65535; 0 tries preferredPort, +1, +2, then a random port"); ok {
				n.Port = p
			}
		},
		"preferredPort": func(k, v *yaml.Node) {
			seen.preferredPort = k
			if p, ok := d.integer(v, "node.preferredPort", 0, 65535, "0 to 65535; 0 means a random port"); ok {
				n.PreferredPort = p
			}
		},
		"bootstrap": func(k, v *yaml.Node) {
			seen.bootstrap = k
			items, ok := d.list(v, "node.bootstrap", "[127.0.0.1:6881, 10.0.0.2:6881]")
			if !ok {
				return
			}
			out := []string{}
			for i, it := range items {
				if s, ok := d.addr(it, fmt.Sprintf("node.bootstrap[%d]", i), hostRequired); ok {
					out = append(out, s)
				}
			}
			n.Bootstrap = out
		},
		"ephemeral": func(k, v *yaml.Node) {
			seen.ephemeral = k
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value == "adaptive" {
				n.Ephemeral = nil
				return
			}
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
				b, _ := d.boolean(v, "node.ephemeral")
				n.Ephemeral = &b
				return
			}
			d.errf(v, "true: read-only DHT node; false: full node; adaptive: read-only for adaptiveAfter, then full", "node.ephemeral: want true, false or adaptive, got %s", describe(v))
		},
		"adaptiveAfter": func(k, v *yaml.Node) {
			seen.adaptiveAfter = k
			if x, ok := d.duration(v, "node.adaptiveAfter", positive, false); ok {
				n.AdaptiveAfter = x
			}
		},
		"maxPeers": func(_, v *yaml.Node) {
			if x, ok := d.integer(v, "node.maxPeers", 1, math.MaxInt32, "must be at least 1"); ok {
				n.MaxPeers = x
			}
		},
		"maxClientSockets": func(_, v *yaml.Node) {
			if x, ok := d.integer(v, "node.maxClientSockets", -1, math.MaxInt32, "0 means unlimited, -1 never dials, else a positive cap"); ok {
				n.MaxClientSockets = x
			}
		},
		"maxServerSockets": func(_, v *yaml.Node) {
			if x, ok := d.integer(v, "node.maxServerSockets", -1, math.MaxInt32, "0 means unlimited, -1 refuses inbound connections, else a positive cap"); ok {
				n.MaxServerSockets = x
			}
		},
		"connectTimeout": func(_, v *yaml.Node) {
			if x, ok := d.duration(v, "node.connectTimeout", positive, false); ok {
				n.ConnectTimeout = x
			}
		},
		"queue": func(_, v *yaml.Node) { d.queue(v, &n.Queue) },
		"key": func(_, v *yaml.Node) {
			if s, ok := d.nonEmpty(v, "node.key"); ok {
				seen.key = v
				if !filepath.IsAbs(s) {
					s = filepath.Join(d.dir, s)
				}
				n.Key = s
			}
		},
		"plaintext": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v, "node.plaintext"); ok {
				n.Plaintext = b
			}
		},
	}, map[string]string{
		"keyFile":     `did you mean "key"?`,
		"privateKey":  "node.key is the path of a key file (swarmhost key generate PATH writes one), not the key itself",
		"encrypt":     "encryption is on unless plaintext: true",
		"encrypted":   "encryption is on unless plaintext: true",
		"peers":       "static peers go in the static discovery: discoveries: [{name: static, options: {peers: [...]}}]",
		"multiplex":   "multiplex belongs under node.queue:",
		"requeue":     "requeue belongs under node.queue:",
		"forget":      "forget belongs under node.queue:",
		"listen":      "the listen address is node.host and node.port",
		"max_peers":   `did you mean "maxPeers"?`,
		"transports":  "transports is a top-level section",
		"discoveries": "discoveries is a top-level section",
	})
}

// relay decodes the "relay" section: the limits are those of swarmhost
// relay's --max-* flags.
func (d *decoder) relay(v *yaml.Node, r *Relay, seen *seenKeys) {
	count := func(path string, dst *int) func(_, v *yaml.Node) {
		return func(_, v *yaml.Node) {
			if x, ok := d.integer(v, path, 1, math.MaxInt32, "must be at least 1; omit for the default"); ok {
				*dst = x
			}
		}
	}
	l := &r.Limits
	d.mapping(v, "relay", fields{
		"enabled": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v, "relay.enabled"); ok {
				r.Enabled = b
			}
		},
		"listen": func(_, v *yaml.Node) {
			seen.relayListen = v
			if s, ok := d.addr(v, "relay.listen", hostOptional); ok {
				r.Listen = s
			}
		},
		"maxClients":             count("relay.maxClients", &l.Clients),
		"maxSessions":            count("relay.maxSessions", &l.Sessions),
		"maxSessionsPerClient":   count("relay.maxSessionsPerClient", &l.SessionsPerClient),
		"maxInfohashesPerClient": count("relay.maxInfohashesPerClient", &l.InfohashesPerClient),
		"maxBytesPerClient": func(_, v *yaml.Node) {
			x, ok := d.integer(v, "relay.maxBytesPerClient", -1, math.MaxInt64, "-1 means no limit, else at least 1; omit for the default (1 GiB)")
			if ok && x == 0 {
				d.add(v, framework.ErrInvalidOption, "-1 means no limit, else at least 1; omit for the default (1 GiB)", "relay.maxBytesPerClient: 0")
				return
			}
			if ok {
				l.BytesPerClient = int64(x)
			}
		},
		"maxSessionDuration": func(_, v *yaml.Node) {
			if x, ok := d.duration(v, "relay.maxSessionDuration", positive, false); ok {
				l.SessionDuration = x
			}
		},
	}, map[string]string{
		"enable":      `did you mean "enabled"?`,
		"relays":      "relays is a top-level key: the relays this daemon reserves at",
		"relayWhen":   "relayWhen is a top-level key",
		"max_clients": `did you mean "maxClients"?`,
		"key":         "the relay proves the daemon's key, node.key",
	})
}

// relays decodes the top-level relays list: KEY@HOST:PORT or HOST:PORT.
func (d *decoder) relays(v *yaml.Node) []string {
	items, ok := d.list(v, "relays", "[KEY@203.0.113.7:7000, 203.0.113.8:7000]")
	if !ok {
		return nil
	}
	out := []string{}
	seen := map[string]*yaml.Node{}
	for i, it := range items {
		path := fmt.Sprintf("relays[%d]", i)
		s, ok := d.str(it, path)
		if !ok {
			continue
		}
		addrN := it
		if key, addr, found := strings.Cut(s, "@"); found {
			if _, err := secure.ParsePublicKey(key); err != nil {
				d.add(it, secure.ErrBadKey, "KEY@HOST:PORT takes the relay's public key as swarmhost relay prints it (52 z-base-32 characters or 64 hex), or write HOST:PORT alone", "%s: %s", path, keyErrMsg(err))
				continue
			}
			// the address's own position, for its errors
			at := *it
			at.Value = addr
			at.Column += len(key) + 1
			if it.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				at.Column++
			}
			addrN = &at
		}
		a, ok := d.addr(addrN, path, hostRequired)
		if !ok {
			continue
		}
		if first, dup := seen[a]; dup {
			d.add(it, framework.ErrInvalidPeer, fmt.Sprintf("the first is at line %d; a relay is listed once", first.Line), "%s: duplicate relay %q", path, clip(a))
			continue
		}
		seen[a] = it
		out = append(out, s)
	}
	return out
}

func (d *decoder) queue(v *yaml.Node, q *Queue) {
	d.mapping(v, "node.queue", fields{
		"requeue": func(_, v *yaml.Node) {
			if x, ok := d.durList(v, "node.queue.requeue", positive); ok {
				q.Requeue = x
			}
		},
		"forget": func(_, v *yaml.Node) {
			d.mapping(v, "node.queue.forget", fields{
				"unresponsive": func(_, v *yaml.Node) {
					if x, ok := d.duration(v, "node.queue.forget.unresponsive", positive, true); ok {
						q.ForgetUnresponsive = x
					}
				},
				"banned": func(_, v *yaml.Node) {
					if x, ok := d.duration(v, "node.queue.forget.banned", positive, true); ok {
						q.ForgetBanned = x
					}
				},
			}, nil)
		},
		"multiplex": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v, "node.queue.multiplex"); ok {
				q.Multiplex = b
			}
		},
	}, nil)
}

func (d *decoder) log(v *yaml.Node, l *Log) {
	d.mapping(v, "log", fields{
		"level": func(_, v *yaml.Node) {
			s, ok := d.str(v, "log.level")
			if !ok {
				return
			}
			levels := []string{"debug", "info", "warn", "error"}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(strings.ToUpper(s))); err != nil || !contains(levels, strings.ToLower(s)) {
				d.errf(v, didYouMean(s, levels, "levels"), "log.level: unknown level %q", clip(s))
				return
			}
			l.Level = lv
		},
		"format": func(_, v *yaml.Node) {
			s, ok := d.str(v, "log.format")
			if !ok {
				return
			}
			if s != "text" && s != "json" {
				d.errf(v, didYouMean(s, []string{"text", "json"}, "formats"), "log.format: unknown format %q", clip(s))
				return
			}
			l.Format = s
		},
	}, nil)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// topic decodes a topic with the command line's rule,
// [framework.ParseTopicArg]: 64 hex digits, name:NAME, hex:HEX, or any
// other text that does not look like hex, hashed with SHA-256.
func (d *decoder) topic(v *yaml.Node, path string) (framework.Topic, string, bool) {
	s, ok := d.str(v, path)
	if !ok {
		return framework.Topic{}, "", false
	}
	t, err := framework.ParseTopicArg(s)
	var te *framework.TopicError
	if errors.As(err, &te) {
		d.add(v, framework.ErrInvalidTopic, te.Hint, "%s: %q: %s", path, clip(s), te.Problem)
		return framework.Topic{}, "", false
	}
	return t, s, true
}

func posOf(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

func (d *decoder) topics(v *yaml.Node) []Topic {
	items, ok := d.list(v, "topics", "[{topic: my-topic, announce: true}]")
	if !ok {
		return nil
	}
	var out []Topic
	for i, it := range items {
		path := fmt.Sprintf("topics[%d]", i)
		t := Topic{Lookup: true, Pos: posOf(it)}
		var topicN *yaml.Node
		good := true
		if it.Kind == yaml.ScalarNode && !isNull(it) {
			d.errf(it, fmt.Sprintf("write - topic: %s", clip(it.Value)), "%s: want a mapping with a topic: key, got %s", path, describe(it))
			continue
		}
		good = d.mapping(it, path, fields{
			"topic": func(_, v *yaml.Node) {
				topicN = v
				var ok bool
				t.Topic, t.Text, ok = d.topic(v, path+".topic")
				good = good && ok
			},
			"announce": func(_, v *yaml.Node) {
				b, ok := d.boolean(v, path+".announce")
				t.Announce, good = b, good && ok
			},
			"lookup": func(_, v *yaml.Node) {
				b, ok := d.boolean(v, path+".lookup")
				t.Lookup, good = b, good && ok
			},
		}, map[string]string{"name": `the topic's name or hex goes in "topic:"`}) && good
		if !good {
			continue
		}
		if topicN == nil {
			d.add(it, framework.ErrInvalidTopic, "add topic: NAME-OR-64-HEX", "%s: missing topic", path)
			continue
		}
		if !t.Announce && !t.Lookup {
			d.errf(it, "set announce: true or lookup: true (lookup defaults to true)", "%s: neither announce nor lookup", path)
			continue
		}
		out = append(out, t)
	}
	return out
}

func (d *decoder) services(v *yaml.Node) []Service {
	items, ok := d.list(v, "services", "[{name: web, topic: my-web, serve: 127.0.0.1:8080}]")
	if !ok {
		return nil
	}
	var out []Service
	for i, it := range items {
		path := fmt.Sprintf("services[%d]", i)
		s := Service{Pos: posOf(it)}
		var nameN, topicN, serveN, connectN, accessN, pinN, peerKeyN *yaml.Node
		var allow, fileKeys []secure.PublicKey
		good := d.mapping(it, path, fields{
			"name": func(_, v *yaml.Node) {
				nameN = v
				if x, ok := d.nonEmpty(v, path+".name"); ok {
					if !validName(x) {
						d.errf(v, "letters, digits, '.', '_' and '-', at most 64", "%s.name: bad name %q", path, clip(x))
						return
					}
					s.Name = x
				}
			},
			"topic": func(_, v *yaml.Node) {
				topicN = v
				s.Topic, s.TopicText, _ = d.topic(v, path+".topic")
			},
			"serve": func(_, v *yaml.Node) {
				serveN = v
				s.Serve, _ = d.addr(v, path+".serve", hostOptional)
			},
			"connect": func(_, v *yaml.Node) {
				connectN = v
				s.Connect, _ = d.addr(v, path+".connect", hostOptional)
			},
			"allow": func(k, v *yaml.Node) {
				accessN = k
				s.Restricted = true
				allow, _ = d.allowList(v, path+".allow")
			},
			"allowFile": func(k, v *yaml.Node) {
				if accessN == nil {
					accessN = k
				}
				s.Restricted = true
				s.AllowFile, fileKeys, _ = d.allowFile(v, path+".allowFile")
			},
			"serverKey": func(k, v *yaml.Node) {
				pinN = k
				s.ServerKey, _ = d.publicKey(v, path+".serverKey")
			},
			"peerKey": func(_, v *yaml.Node) {
				peerKeyN = v
				s.PeerKey, _ = d.publicKey(v, path+".peerKey")
			},
		}, map[string]string{
			"allowed":    `did you mean "allow"?`,
			"allow_file": `did you mean "allowFile"?`,
			"server_key": `did you mean "serverKey"?`,
			"peer_key":   `did you mean "peerKey"?`,
			"key":        "serve services take allow: [KEY, ...] (the keys that may use it); connect services take serverKey: KEY (the server's key) or peerKey: KEY (reach the peer with this key)",
			"listen":     `a service either serves, serve: HOST:PORT of a local server peers reach, or connects, connect: HOST:PORT of a local listener`,
			"address":    `a service has serve: HOST:PORT or connect: HOST:PORT`,
		})
		if !good {
			continue
		}
		if nameN == nil {
			d.errf(it, "add name: SOME-NAME; it names the service in logs, status and reloads", "%s: missing name", path)
		}
		if topicN == nil {
			d.add(it, framework.ErrInvalidTopic, "add topic: NAME-OR-64-HEX", "%s: missing topic", path)
		}
		switch {
		case serveN != nil && connectN != nil:
			d.errf(connectN, "serve exposes a local server to peers; connect listens locally and reaches a peer's service: use two services for both", "%s: both serve and connect", path)
		case serveN == nil && connectN == nil:
			d.errf(it, "add serve: HOST:PORT to expose a local server, or connect: HOST:PORT to listen here and reach a peer", "%s: neither serve nor connect", path)
		}
		if peerKeyN != nil && serveN != nil {
			d.errf(peerKeyN, "peerKey names the peer a connect service reaches; a serve service is reached by its topic", "%s: peerKey on a serve service", path)
		}
		if accessN != nil && connectN != nil && serveN == nil {
			d.errf(accessN, "allow and allowFile name the keys that may use a serve service; to check the server's key, use serverKey: KEY", "%s: %s on a connect service", path, accessN.Value)
		}
		if pinN != nil && peerKeyN != nil {
			d.errf(pinN, "peerKey already pins the server's key: drop serverKey", "%s: both serverKey and peerKey", path)
		}
		if pinN != nil && serveN != nil && connectN == nil {
			d.errf(pinN, "serverKey pins the server a connect service reaches; to restrict who uses a serve service, use allow: [KEY, ...]", "%s: serverKey on a serve service", path)
		}
		s.Allow = append(allow, fileKeys...)
		if !s.Restricted {
			s.Allow = nil
		}
		if s.Name == "" || s.TopicText == "" || (s.Serve == "") == (s.Connect == "") {
			continue
		}
		out = append(out, s)
	}
	return out
}

func validName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// crossChecks checks rules that span sections, and folds the node's DHT
// settings into the dht discovery.
func (d *decoder) crossChecks(c *Config, seen *seenKeys) {
	n := &c.Node
	if seen.port != nil && seen.preferredPort != nil && n.Port != 0 {
		d.errf(seen.preferredPort, "port is exact and fails when taken; preferredPort is tried first, then +1, +2, random: set one", "node: both port and preferredPort")
	}
	if seen.adaptiveAfter != nil && n.Ephemeral != nil {
		d.errf(seen.adaptiveAfter, "adaptiveAfter applies only with ephemeral: adaptive", "node.adaptiveAfter: ephemeral is %v", *n.Ephemeral)
	}
	hasDHT := false
	for i := range c.Discoveries {
		p := &c.Discoveries[i]
		if p.Name != "dht" || p.Remote != nil {
			continue
		}
		hasDHT = true
		cfg := p.Options.(dht.Config)
		cfg.Bootstrap = n.Bootstrap
		cfg.Ephemeral = n.Ephemeral
		cfg.AdaptiveAfter = n.AdaptiveAfter
		if _, err := dht.New(cfg); err != nil {
			d.errf(p.node, "", "discoveries[%d] dht: %v", p.index, err)
		}
		p.Options = cfg
	}
	if seen.relayWhen != nil && len(c.Relays) == 0 && seen.relays == nil {
		d.add(seen.relayWhen, framework.ErrInvalidOption, "list the relays to reserve at: relays: [KEY@HOST:PORT]", "relayWhen: no relays")
	}
	if seen.relayListen != nil && c.Relay.Listen != "" && n.Port != 0 {
		host, port, _ := net.SplitHostPort(c.Relay.Listen)
		if port == strconv.Itoa(n.Port) && (host == "" || n.Host == "" || host == n.Host) {
			d.add(seen.relayListen, framework.ErrInvalidOption, "the tcp transport listens on node.port: give the relay another port", "relay.listen: port %s is node.port", port)
		}
	}
	if seen.relayListen != nil && !c.Relay.Enabled {
		d.add(seen.relayListen, framework.ErrInvalidOption, "add enabled: true to run the relay, or remove the relay section", "relay.listen: the relay is not enabled")
	}
	if !hasDHT {
		for _, k := range []*yaml.Node{seen.bootstrap, seen.ephemeral, seen.adaptiveAfter} {
			if k != nil {
				d.errf(k, "add - name: dht to discoveries, or remove this key", "node.%s: only the dht discovery uses it, and it is not listed", k.Value)
			}
		}
	}

	topics := map[framework.Topic]Topic{}
	for _, t := range c.topics {
		if first, ok := topics[t.Topic]; ok {
			d.add(&yaml.Node{Line: t.Pos.Line, Column: t.Pos.Column}, framework.ErrInvalidTopic,
				fmt.Sprintf("the first is at line %d; a topic is listed once", first.Pos.Line), "topics: duplicate topic %q", clip(t.Text))
			continue
		}
		topics[t.Topic] = t
	}
	names := map[string]Service{}
	// a topic per service; connect services that reach different peers by
	// key may share one (the same service on several machines)
	type serviceTopic struct {
		topic framework.Topic
		key   secure.PublicKey
	}
	stopics := map[serviceTopic]Service{}
	for _, s := range c.services {
		at := &yaml.Node{Line: s.Pos.Line, Column: s.Pos.Column}
		if n.Plaintext && (s.Restricted || !s.ServerKey.IsZero()) {
			d.add(at, secure.ErrBadKey, "plaintext connections prove no key, so every one would be refused: remove node.plaintext, or the service's keys", "services: service %q checks keys, but node.plaintext is true", s.Name)
		}
		if first, ok := names[s.Name]; ok {
			d.errf(at, fmt.Sprintf("the first is at line %d; names must be unique", first.Pos.Line), "services: duplicate name %q", s.Name)
		} else {
			names[s.Name] = s
		}
		if first, ok := stopics[serviceTopic{s.Topic, s.PeerKey}]; ok {
			d.add(at, framework.ErrInvalidTopic, fmt.Sprintf("service %q at line %d uses it already; each service needs its own topic", first.Name, first.Pos.Line), "services: service %q: duplicate topic %q", s.Name, clip(s.TopicText))
		} else {
			stopics[serviceTopic{s.Topic, s.PeerKey}] = s
		}
		if !s.PeerKey.IsZero() && n.Plaintext {
			d.add(at, secure.ErrBadKey, "a peer is found and checked by its key only with sessions: remove node.plaintext or the peerKey", "services: service %q: peerKey with node.plaintext", s.Name)
		}
		if t, ok := topics[s.Topic]; ok {
			d.add(at, framework.ErrInvalidTopic, fmt.Sprintf("it is also listed in topics at line %d; a service joins its topic itself: remove it from topics", t.Pos.Line), "services: service %q: topic %q is also a plain topic", s.Name, clip(s.TopicText))
		}
	}
}

// keyFile checks the key file at path when it exists (it is created on
// first run otherwise): a regular file that [secure.ReadKeyFile] accepts,
// its mode included. v is node.key's value, nil for the default path (the
// problem is then reported at 1:1).
func (d *decoder) keyFile(path string, v *yaml.Node) {
	what := "node.key"
	if v == nil {
		what = "node.key (default " + DefaultKeyFile + " beside the config file)"
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return // created on first run
	case err != nil:
		d.errf(v, "", "%s: %v", what, unwrapPathErr(err))
		return
	case !st.Mode().IsRegular():
		d.errf(v, "point at a key file (swarmhost key generate PATH writes one)", "%s: %s is not a regular file", what, clip(path))
		return
	}
	if _, err := secure.ReadKeyFile(path); err != nil {
		hint := "swarmhost key generate PATH writes a new key file"
		if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
			hint = "a key file must be private to its owner"
		}
		d.add(v, secure.ErrBadKey, hint, "%s: %s", what, strings.TrimPrefix(strings.TrimPrefix(err.Error(), secure.ErrBadKey.Error()+": "), "secure: "))
	}
}
