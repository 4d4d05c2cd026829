package hostconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// Config is a parsed and validated daemon configuration. Every field holds
// its effective value: what the file says, else the library's default.
type Config struct {
	// File is the name given to Parse (the path given to Load).
	File string

	Node Node
	// Discoveries, Transports and Validators are the plugins in the order
	// listed. Transports is [tcp] when the file has no transports section.
	Discoveries []Plugin
	Transports  []Plugin
	Validators  []Plugin
	Log         Log
	Metrics     Metrics
	// Relay is the "relay" section: this daemon relays for others.
	Relay Relay
	// Relays are the relays this daemon reserves at ("relays", each
	// "KEY@HOST:PORT" or "HOST:PORT"), tried in order before relays found
	// on the DHT; empty: the daemon reserves at none.
	Relays []string
	// RelayWhen is "unpunchable" (default: reserve only while the DHT
	// reports this daemon not hole-punchable, or while a dialler that
	// cannot hole punch asked for a relay) or "always".
	RelayWhen string

	topics   []Topic
	services []Service
}

// Node holds the swarm settings of the "node" section.
type Node struct {
	// Host is the address listeners bind ("": all).
	Host string
	// Port is the exact port (0: none, PreferredPort and on are tried).
	Port int
	// PreferredPort is the first port tried (framework.DefaultPreferredPort;
	// 0: a random port).
	PreferredPort int
	// Bootstrap is the DHT bootstrap list. Nil: dht.DefaultBootstrap (the
	// public routers); empty: none.
	Bootstrap []string
	// Ephemeral: nil = adaptive, else a read-only (true) or full (false)
	// DHT node.
	Ephemeral *bool
	// AdaptiveAfter is the read-only period of an adaptive DHT node
	// (dht.DefaultAdaptiveAfter).
	AdaptiveAfter time.Duration
	// MaxPeers (framework.DefaultMaxPeers), MaxClientSockets and
	// MaxServerSockets (0: unlimited, -1: never dial / refuse inbound).
	MaxPeers, MaxClientSockets, MaxServerSockets int
	// ConnectTimeout bounds each dial (framework.DefaultConnectTimeout).
	ConnectTimeout time.Duration
	Queue          Queue
	// Key is the path of the swarm's key file (its static key pair, see
	// framework/secure): node.key, relative to the config file's
	// directory, by default [DefaultKeyFile] beside the config file. The
	// daemon creates it (mode 0600) on first run; see [Config.LoadKey].
	Key string
	// Plaintext turns encryption off: raw sockets, as hyperswarm v2
	// (node.plaintext; false).
	Plaintext bool
}

// DefaultKeyFile is the key file's name when node.key is not set: it is
// looked for (and created) in the config file's directory.
const DefaultKeyFile = "node.key"

// Queue holds node.queue.
type Queue struct {
	// Requeue is the retry schedule (framework.DefaultRequeue()).
	Requeue []time.Duration
	// ForgetUnresponsive (framework.DefaultForgetUnresponsive) and
	// ForgetBanned (framework.Forever) say how long peers are remembered.
	ForgetUnresponsive, ForgetBanned time.Duration
	// Multiplex reuses one connection per peer across topics.
	Multiplex bool
}

// Log holds the "log" section.
type Log struct {
	Level  slog.Level // default info
	Format string     // "text" (default) or "json"
}

// Metrics holds the "metrics" section.
type Metrics struct {
	Listen string // HOST:PORT; "" = no metrics listener
}

// Relay holds the "relay" section: a blind relay (plugins/relay) run
// beside the swarm, as swarmhost relay runs one.
type Relay struct {
	// Enabled turns the relay on (false).
	Enabled bool
	// Listen is the HOST:PORT clients reserve at (TCP); "": node.host
	// with a random port. Allocations are bound on the same host.
	Listen string
	// Limits are the relay's limits, relay.DefaultLimits() where not set
	// (BytesPerClient -1: no limit).
	Limits relay.Limits
}

// Pos is a position in the config file.
type Pos struct{ Line, Column int }

// Topic is one entry of the "topics" section.
type Topic struct {
	Topic    framework.Topic
	Text     string // as written: 64 hex characters or a name hashed with SHA-256
	Announce bool
	Lookup   bool
	Pos      Pos
}

// Service is one entry of the "services" section: exactly one of Serve and
// Connect is set.
type Service struct {
	Name      string
	Topic     framework.Topic
	TopicText string
	// Serve is the local HOST:PORT that peers of the topic reach: every
	// swarm connection of the topic is piped to a new connection to it.
	// The daemon announces the topic.
	Serve string
	// Connect is the local HOST:PORT the daemon listens on: every accepted
	// connection is piped to a peer of the topic. The daemon looks it up.
	Connect string
	// Restricted: a serve service with allow or allowFile; only the keys
	// of Allow may use it (none when Allow is empty).
	Restricted bool
	// Allow is the keys of allow: followed by those of the allow file, as
	// read when the config was loaded (a reload re-reads it).
	Allow []secure.PublicKey
	// AllowFile is the allow file's path (relative paths are resolved
	// against the config file's directory); empty when none.
	AllowFile string
	// ServerKey, for a connect service, pins the key the serving peer must
	// prove (zero: any peer of the topic).
	ServerKey secure.PublicKey
	// PeerKey (connect services; zero: any peer of the topic) is the key
	// of the one peer the service reaches: the daemon finds it by its key
	// (Swarm.JoinPeer) and refuses a peer that proves another key; the
	// topic still picks the service on that peer.
	PeerKey secure.PublicKey
	Pos     Pos
}

// JoinOptions are the join options of the service's topic. A connect
// service with a PeerKey needs no join of its topic: its peer is looked
// up by key (see JoinsTopic).
func (s Service) JoinOptions() []framework.JoinOption {
	if s.Serve != "" {
		return []framework.JoinOption{framework.Announce(true), framework.Lookup(false)}
	}
	return []framework.JoinOption{framework.Announce(false), framework.Lookup(true)}
}

// JoinsTopic reports whether the daemon joins the service's topic: every
// service but a connect service with a PeerKey, which joins its peer
// (Swarm.JoinPeer) instead.
func (s Service) JoinsTopic() bool { return s.Serve != "" || s.PeerKey.IsZero() }

// JoinOptions are the topic's join options.
func (t Topic) JoinOptions() []framework.JoinOption {
	return []framework.JoinOption{framework.Announce(t.Announce), framework.Lookup(t.Lookup)}
}

// Topics returns the "topics" entries, in file order.
func (c *Config) Topics() []Topic { return append([]Topic(nil), c.topics...) }

// Services returns the "services" entries, in file order.
func (c *Config) Services() []Service { return append([]Service(nil), c.services...) }

// Default returns the configuration of an empty file: the library's
// defaults and the tcp transport.
func Default() *Config {
	return &Config{
		Node: Node{
			PreferredPort:  framework.DefaultPreferredPort,
			AdaptiveAfter:  dht.DefaultAdaptiveAfter,
			MaxPeers:       framework.DefaultMaxPeers,
			ConnectTimeout: framework.DefaultConnectTimeout,
			Queue: Queue{
				Requeue:            framework.DefaultRequeue(),
				ForgetUnresponsive: framework.DefaultForgetUnresponsive,
				ForgetBanned:       framework.Forever,
			},
			Key: DefaultKeyFile,
		},
		Transports: []Plugin{defaultTransport()},
		Log:        Log{Level: slog.LevelInfo, Format: "text"},
		Relay:      Relay{Limits: relay.DefaultLimits()},
		RelayWhen:  "unpunchable",
	}
}

// Load reads and parses the config file at path. Relative paths in it
// (plugin binaries, ban lists) are relative to the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates a config; name is the file name used in error
// positions, and its directory is the base of relative paths. On failure
// the error joins every problem found (see [Errors]), each formatted
// "name:line:col: message (hint)".
func Parse(name string, data []byte) (cfg *Config, err error) {
	d := &decoder{file: name, dir: filepath.Dir(name)}
	root, perr := parseYAML(name, data)
	if perr != nil {
		return nil, joinErrors([]*Error{perr})
	}
	cfg = Default()
	cfg.File = name
	cfg.Node.Key = filepath.Join(d.dir, DefaultKeyFile)
	func() {
		defer func() {
			if r := recover(); r != nil { // never expected: report, never crash
				d.errf(root, "please report this config", "internal error while checking: %v", r)
			}
		}()
		d.root(root, cfg)
	}()
	if err := joinErrors(d.errs); err != nil {
		return nil, err
	}
	return cfg, nil
}

var (
	yamlLine   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// yamlErrorPos finds where a YAML parser error is: the parser's line when
// its message has one, else the offending byte or alias; the column of
// the offending character when the message names it. 0 means unknown.
func yamlErrorPos(data []byte, msg string, line int) (int, int) {
	at := -1 // byte offset of the problem
	switch {
	case strings.HasPrefix(msg, "control characters are not allowed"):
		at = bytes.IndexFunc(data, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f })
	case strings.Contains(msg, "UTF-8"):
		for i := 0; i < len(data); {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				at = i
				break
			}
			i += n
		}
	case yamlAnchor.MatchString(msg):
		at = bytes.Index(data, []byte("*"+yamlAnchor.FindStringSubmatch(msg)[1]))
	case line > 0 && strings.Contains(msg, "cannot start any token"):
		lines := bytes.SplitAfter(data, []byte("\n"))
		if line <= len(lines) {
			l := lines[line-1]
			if i := bytes.IndexAny(bytes.TrimLeft(l, " "), "\t@`%"); i >= 0 {
				return line, len(l) - len(bytes.TrimLeft(l, " ")) + i + 1
			}
		}
	}
	if at < 0 {
		return line, 0
	}
	l := bytes.Count(data[:at], []byte("\n")) + 1
	return l, at - (bytes.LastIndexByte(data[:at], '\n') + 1) + 1
}

// parseYAML parses one YAML document into its root node (nil for an empty
// document).
func parseYAML(name string, data []byte) (root *yaml.Node, perr *Error) {
	defer func() {
		if r := recover(); r != nil {
			root, perr = nil, &Error{File: name, Line: 1, Column: 1, Msg: fmt.Sprintf("YAML parser failed: %v", r), Hint: "check the file is valid YAML"}
		}
	}()
	toErr := func(err error) *Error {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line, col := 0, 0
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		line, col = yamlErrorPos(data, msg, line)
		return &Error{File: name, Line: max(line, 1), Column: max(col, 1), Msg: "invalid YAML: " + msg, Hint: "check indentation and quoting"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, toErr(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, toErr(err)
	default:
		return nil, &Error{File: name, Line: max(extra.Line, 1), Column: max(extra.Column, 1), Msg: "a second YAML document", Hint: "a config is one document: remove the \"---\" line and what follows"}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}
