package hostconfig

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Flags are swarmhost's plugin flags, read by the built-ins' fromFlags.
// [PluginFlags] declares them; [RegisterFlags] adds them to a command.
type Flags struct {
	Peers        []string      // --peer, static
	Bootstrap    []string      // --bootstrap, dht (nil: the public routers)
	MDNSIfaces   []string      // --mdns-iface
	MDNSInterval time.Duration // --mdns-interval (0: 30-60 s)
	Allow, Deny  []string      // --allow, --deny, cidr
}

// PluginFlag is a swarmhost flag that a built-in plugin reads. Every
// command that builds plugins from flags (pipe, demo, plugin serve)
// registers all of them with [RegisterFlags], and the docs' flags column
// lists them by plugin.
type PluginFlag struct {
	// Name is the flag's name, without dashes.
	Name string
	// Plugin is the built-in that reads it.
	Plugin string
	// Usage is the flag's help text (a `WORD` in backquotes names its
	// value, as package flag reads it).
	Usage string
	// Strict flags are an error when Plugin is not listed: the setting
	// would be silently ignored. Others are allowed without it (--bootstrap
	// may be meant for an out-of-process DHT).
	Strict bool

	set   func(*Flags, string) error
	given func(*Flags) bool
}

// listFlag is a flag that takes a list: repeated, comma-separated, or both.
// more is added to the usage's parenthesis.
func listFlag(name, plugin, usage, more string, strict bool, field func(*Flags) *[]string) PluginFlag {
	return PluginFlag{
		Name: name, Plugin: plugin, Strict: strict,
		Usage: usage + " (repeatable, or comma-separated" + more + ")",
		set: func(f *Flags, v string) error {
			p := field(f)
			for _, x := range SplitList(v) {
				if !slices.Contains(*p, x) {
					*p = append(*p, x)
				}
			}
			return nil
		},
		given: func(f *Flags) bool { return len(*field(f)) > 0 },
	}
}

// pluginFlags are every plugin flag, in the order of the docs.
var pluginFlags = []PluginFlag{
	listFlag("bootstrap", "dht", "a DHT bootstrap node `HOST:PORT`", "; default: the public routers", false,
		func(f *Flags) *[]string { return &f.Bootstrap }),
	listFlag("mdns-iface", "mdns", "network interface `NAME` for mDNS", "; default: every multicast-capable non-loopback interface", true,
		func(f *Flags) *[]string { return &f.MDNSIfaces }),
	{
		Name: "mdns-interval", Plugin: "mdns", Usage: "mDNS query interval `DURATION` after the first burst (default: 30-60 s at random)",
		set: func(f *Flags, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q: want a duration such as 30s", v)
			}
			if d < 0 {
				return fmt.Errorf("%q is negative", v)
			}
			f.MDNSInterval = d
			return nil
		},
		given: func(f *Flags) bool { return f.MDNSInterval != 0 },
	},
	listFlag("peer", "static", "a peer's `HOST:PORT` for the static discovery", "", true,
		func(f *Flags) *[]string { return &f.Peers }),
	listFlag("allow", "cidr", "a `CIDR` prefix the cidr validator allows", "", true,
		func(f *Flags) *[]string { return &f.Allow }),
	listFlag("deny", "cidr", "a `CIDR` prefix the cidr validator denies", "", true,
		func(f *Flags) *[]string { return &f.Deny }),
}

// PluginFlags returns every plugin flag.
func PluginFlags() []PluginFlag { return slices.Clone(pluginFlags) }

// RegisterFlags adds every plugin flag to fs, storing into f.
func RegisterFlags(fs *flag.FlagSet, f *Flags) {
	for _, pf := range pluginFlags {
		fs.Func(pf.Name, pf.Usage, func(v string) error { return pf.set(f, v) })
	}
}

// Given reports whether the flag was set in f.
func (pf PluginFlag) Given(f Flags) bool { return pf.given(&f) }

// CheckFlags reports strict plugin flags given in f whose plugin is not in
// listed (the built-in names of the plugin lists): their settings would be
// ignored.
func CheckFlags(f Flags, listed []string) error {
	for _, pf := range pluginFlags {
		if !pf.Strict || !pf.Given(f) || slices.Contains(listed, pf.Plugin) {
			continue
		}
		var strict []string
		for _, o := range pluginFlags {
			if o.Strict && o.Plugin == pf.Plugin {
				strict = append(strict, "--"+o.Name)
			}
		}
		verb := "needs"
		if len(strict) > 1 {
			verb = "need"
		}
		b, _ := LookupBuiltin(pf.Plugin)
		return fmt.Errorf("%w: %s %s the %s %s (--%s %s,...)", framework.ErrInvalidOption, strings.Join(strict, "/"), verb, pf.Plugin, b.Kind, b.Kind, pf.Plugin)
	}
	return nil
}

// flagsOf lists the plugin flags a built-in reads, as the docs show them.
func flagsOf(name string) []string {
	var out []string
	for _, pf := range pluginFlags {
		if pf.Plugin == name {
			out = append(out, "--"+pf.Name)
		}
	}
	return out
}

// Usage lists the built-ins of a kind for help texts, each with what it
// reads: "static (--peer), dht (--bootstrap)", "banlist:PATH, ratelimit".
func Usage(k Kind) string {
	var out []string
	for _, b := range Builtins() {
		if b.Kind != k {
			continue
		}
		s := b.Name
		if b.Arg != "" {
			s = b.Arg
		}
		if fl := flagsOf(b.Name); len(fl) > 0 {
			s += " (" + strings.Join(fl, ", ") + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}
