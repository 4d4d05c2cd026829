package hostconfig

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

// Builtin is one entry of the registry of built-in plugins: the one list
// that the YAML config, swarmhost's flags, `swarmhost plugin serve NAME`,
// `swarmhost conformance builtin:NAME` and the README's plugin list derive
// from. The registry lives here, beside the YAML decoder its entries use;
// it imports the plugins, which import only the framework.
//
// Adding a built-in plugin is one entry in [registry] plus its package.
type Builtin struct {
	Kind Kind
	Name string
	// Summary is the one line the docs show.
	Summary string
	// Arg describes, for the docs, what the plugin reads after NAME: in a
	// plugin list ("" if nothing). The flags it reads are those of
	// [PluginFlags] that name it.
	Arg string
	// OptionsType is the type of the plugin's typed options: what its YAML
	// decoder and its flag parser return, and what New takes.
	OptionsType reflect.Type
	// NeedsLab is set when the plugin cannot be exercised on loopback alone
	// (it needs network namespaces: internal/netlab).
	NeedsLab bool
	// Conformance is the plugin's conformance factory: a
	// conformance.TransportFactory, DiscoveryFactory or ValidatorFactory.
	// The factories live in package conformance/builtin (beside the
	// loopback environments they need, and importable by the plugins'
	// own tests, which cannot import cmd/); the entry is what names them:
	// conformance/builtin keeps no list of plugins.
	Conformance any
	// NoConformance says why Conformance is nil; one of the two is set.
	NoConformance string

	// required, when set, is the hint for a missing YAML options section.
	required string
	// decode reads the YAML options into the plugin's typed options.
	decode func(d *decoder, v *yaml.Node, path string) any
	// fromFlags builds the typed options from swarmhost's flags; arg is
	// what follows NAME: in a plugin list.
	fromFlags func(arg string, f Flags) (any, error)
	// build constructs the plugin from its typed options (no socket or
	// file is opened before the swarm starts it, except where the package
	// says so: the ban list reads its file).
	build func(opts any, bo BuildOptions) (any, error)
}

// def makes a registry entry from typed functions: O is the plugin's
// options type, P what it builds. Two may be nil, and then take the
// defaults that make a plain plugin one short entry:
//
//   - decode nil: O's fields are its YAML options ([structOptions]), and
//     build checks them when the file is read. Write a decoder when the
//     options need more (cross-field rules, files, hints for keys that
//     belong elsewhere).
//   - fromFlags nil: the flags give the zero O (the plugin reads no flag
//     and no argument after NAME:).
//
// A transport whose Conformance and NoConformance are both unset gets the
// default loopback factory, [builtin.Transport] of build on the options
// fromFlags gives for no flags: right for a transport that needs nothing
// but loopback (a UDP one is handed a shared loopback socket). Discoveries
// and validators need environments or cases of their own: they name a
// factory or say why they have none (TestEveryBuiltinHasConformanceOrAReason).
func def[O, P any](b Builtin, decode func(*decoder, *yaml.Node, string) O, fromFlags func(string, Flags) (O, error), build func(O, BuildOptions) (P, error)) Builtin {
	if decode == nil {
		decode = structOptions(build)
	}
	if fromFlags == nil {
		fromFlags = noArg(*new(O))
	}
	b.OptionsType = reflect.TypeFor[O]()
	b.decode = func(d *decoder, v *yaml.Node, path string) any { return decode(d, v, path) }
	b.fromFlags = func(arg string, f Flags) (any, error) { return fromFlags(arg, f) }
	b.build = func(o any, bo BuildOptions) (any, error) {
		opts, ok := o.(O)
		if !ok {
			return nil, fmt.Errorf("%w: %s %s: options of type %T, want %T", framework.ErrInvalidOption, b.Kind, b.Name, o, opts)
		}
		p, err := build(opts, bo)
		if err != nil {
			return nil, err
		}
		if !b.Kind.implementedBy(p) {
			return nil, fmt.Errorf("%w: %s %s built a %T, not a %s", framework.ErrInvalidOption, b.Kind, b.Name, p, b.Kind)
		}
		return p, nil
	}
	if b.Kind == KindTransport && b.Conformance == nil && b.NoConformance == "" {
		b.Conformance = builtin.Transport(func() (framework.Transport, error) {
			o, err := b.fromFlags("", Flags{})
			if err != nil {
				return nil, err
			}
			p, err := b.build(o, BuildOptions{})
			if err != nil {
				return nil, err
			}
			return p.(framework.Transport), nil
		})
	}
	return b
}

func noArg[O any](o O) func(string, Flags) (O, error) {
	return func(string, Flags) (O, error) { return o, nil }
}

func infallible[O, P any](f func(O) P) func(O, BuildOptions) (P, error) {
	return func(o O, _ BuildOptions) (P, error) { return f(o), nil }
}

func plain[O, P any](f func(O) (P, error)) func(O, BuildOptions) (P, error) {
	return func(o O, _ BuildOptions) (P, error) { return f(o) }
}

// registry is every built-in plugin.
var registry = []Builtin{
	def(Builtin{Kind: KindDiscovery, Name: "dht", Summary: "the mainline DHT (BEP 5) on the swarm's shared UDP socket, with hole punching",
		Conformance: builtin.DHT()},
		(*decoder).dhtOptions,
		func(_ string, f Flags) (dht.Config, error) { return dht.Config{Bootstrap: f.Bootstrap}, nil },
		plain(dht.New)),
	def(Builtin{Kind: KindDiscovery, Name: "mdns", Summary: "LAN discovery with DNS-SD over mDNS",
		NeedsLab: true, NoConformance: "multicast needs network namespaces: its suite runs in the lab (plugins/mdns/conformance_test.go, cmd/swarmhost/mdns_lab_test.go)"},
		(*decoder).mdnsOptions,
		func(_ string, f Flags) (mdns.Config, error) {
			c := mdns.Config{Interfaces: f.MDNSIfaces}
			if f.MDNSInterval > 0 {
				c.QueryIntervalMin, c.QueryIntervalMax = f.MDNSInterval, f.MDNSInterval
			}
			return c, nil
		},
		func(c mdns.Config, bo BuildOptions) (*mdns.Discovery, error) {
			if bo.Logger != nil {
				c.Logger = bo.Logger
			}
			return mdns.New(c)
		}),
	def(Builtin{Kind: KindDiscovery, Name: "static", Summary: "a fixed list of peers, per topic or for all",
		Conformance: builtin.Static(), required: "add options: {peers: [HOST:PORT, ...]}"},
		(*decoder).staticOptions,
		func(_ string, f Flags) (static.Config, error) {
			c := static.Config{}
			for _, a := range f.Peers {
				c.Peers = append(c.Peers, static.Entry{Addr: a})
			}
			return c, nil
		},
		plain(static.New)),
	def(Builtin{Kind: KindTransport, Name: "tcp", Summary: "TCP, dialled first"},
		nil, nil,
		infallible(func(o TCPOptions) framework.Transport {
			t := tcp.New()
			t.KeepAlive = o.KeepAlive
			return t
		})),
	def(Builtin{Kind: KindTransport, Name: "utp", Summary: "uTP (BEP 29) on the swarm's shared UDP socket"},
		nil, nil, plain(utp.New)),
	def(Builtin{Kind: KindValidator, Name: "cidr", Summary: "allow/deny lists of IP prefixes",
		Conformance: builtin.CIDR(), required: "add options: {allow: [PREFIX, ...]} and/or {deny: [...]}"},
		(*decoder).cidrOptions,
		func(_ string, f Flags) (validators.CIDRConfig, error) {
			if len(f.Allow)+len(f.Deny) == 0 {
				return validators.CIDRConfig{}, fmt.Errorf("%w: cidr needs --allow or --deny prefixes", framework.ErrInvalidOption)
			}
			return validators.CIDRConfig{Allow: f.Allow, Deny: f.Deny}, nil
		},
		plain(validators.NewCIDR)),
	def(Builtin{Kind: KindValidator, Name: "dht-private", Summary: "refuses internal addresses that arrive from the DHT", Arg: "dht-private[:EXEMPT;...]",
		Conformance: builtin.DHTPrivate()},
		(*decoder).dhtPrivateOptions,
		func(arg string, _ Flags) (validators.DHTPrivateConfig, error) {
			return validators.DHTPrivateConfig{Exempt: SplitList(strings.ReplaceAll(arg, ";", ","))}, nil
		},
		plain(validators.NewDHTPrivate)),
	def(Builtin{Kind: KindValidator, Name: "ratelimit", Summary: "a per-host token bucket on admissions", Conformance: builtin.RateLimit()},
		nil, nil, plain(validators.NewRateLimit)),
	def(Builtin{Kind: KindValidator, Name: "banlist", Summary: "bans kept in a file, so that they survive restarts", Arg: "banlist:PATH",
		Conformance: builtin.BanList(), required: "add options: {path: FILE}"},
		(*decoder).banListOptions,
		func(arg string, _ Flags) (validators.BanListConfig, error) {
			if arg == "" {
				return validators.BanListConfig{}, fmt.Errorf("%w: banlist needs a file: banlist:PATH", framework.ErrInvalidOption)
			}
			return validators.BanListConfig{Path: arg}, nil
		},
		plain(validators.OpenBanList)),
}

// Builtins returns the registry, sorted by kind and name.
func Builtins() []Builtin {
	out := slices.Clone(registry)
	slices.SortFunc(out, func(a, b Builtin) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// LookupBuiltin finds a built-in plugin by name (names are unique across
// kinds).
func LookupBuiltin(name string) (Builtin, bool) {
	for _, b := range registry {
		if b.Name == name {
			return b, true
		}
	}
	return Builtin{}, false
}

// BuiltinNames lists the built-in plugins of a kind, sorted.
func BuiltinNames(k Kind) []string {
	var out []string
	for _, b := range registry {
		if b.Kind == k {
			out = append(out, b.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Options builds the plugin's typed options from swarmhost's flags; arg is
// what follows NAME: in a plugin list.
func (b Builtin) Options(arg string, f Flags) (any, error) { return b.fromFlags(arg, f) }

// New constructs the plugin from typed options (as Options or the YAML
// decoder returns them): a framework.Transport, Discovery or
// PeerValidator by Kind.
func (b Builtin) New(opts any, bo BuildOptions) (any, error) { return b.build(opts, bo) }

// Checks returns the plugin's conformance checks, or an error saying why
// it has none.
func (b Builtin) Checks() ([]conformance.Check, error) {
	switch f := b.Conformance.(type) {
	case conformance.TransportFactory:
		return conformance.TransportChecks(f), nil
	case conformance.DiscoveryFactory:
		return conformance.DiscoveryChecks(f), nil
	case conformance.ValidatorFactory:
		return conformance.ValidatorChecks(f), nil
	}
	return nil, fmt.Errorf("%w: %s %s has no loopback conformance suite: %s", framework.ErrUnknownPlugin, b.Kind, b.Name, b.NoConformance)
}

// FlagPlugin turns one item of a swarmhost plugin list into a plugin spec:
// "NAME[:ARG]" for a built-in of kind k, or "plugin:PATH ARGS..." for an
// external binary.
func FlagPlugin(k Kind, item string, f Flags) (Plugin, error) {
	if spec, ok := strings.CutPrefix(item, "plugin:"); ok {
		fields := strings.Fields(spec)
		if len(fields) == 0 {
			return Plugin{}, fmt.Errorf("%w: %s %q names no binary", framework.ErrInvalidOption, k, item)
		}
		return Plugin{Kind: k, Remote: &remote.Config{Path: fields[0], Args: fields[1:]}}, nil
	}
	name, arg, _ := strings.Cut(item, ":")
	b, ok := LookupBuiltin(name)
	if !ok || b.Kind != k {
		return Plugin{}, fmt.Errorf("%w: %s %q (known: %s, or plugin:PATH)", framework.ErrUnknownPlugin, k, name, strings.Join(BuiltinNames(k), ", "))
	}
	opts, err := b.fromFlags(arg, f)
	if err != nil {
		return Plugin{}, fmt.Errorf("%s %s: %w", k, name, err)
	}
	return Plugin{Kind: k, Name: name, Options: opts}, nil
}

// SplitList splits a comma-separated list (swarmhost's plugin and
// bootstrap flags), dropping empty items and repeats.
func SplitList(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range strings.Split(s, ",") {
		x = strings.TrimSpace(x)
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Markdown is the README's table of built-in plugins, from the registry.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| kind | name | what | flags | conformance |\n|---|---|---|---|---|\n")
	for _, e := range Builtins() {
		conf := "loopback suite"
		if e.Conformance == nil {
			conf = "lab only"
		}
		flags := flagsOf(e.Name)
		if e.Arg != "" {
			flags = append(flags, e.Arg)
		}
		for i, f := range flags {
			flags[i] = "`" + f + "`"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", e.Kind, e.Name, e.Summary, strings.Join(flags, ", "), conf)
	}
	return b.String()
}
