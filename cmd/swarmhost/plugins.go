package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// nodeFlags are the plugin settings shared by the commands that run a swarm.
type nodeFlags struct {
	discovery      string
	transport      string
	validator      string
	host           string
	port           int
	connectTimeout time.Duration
	// relays and relayWhen are pipe's --relay and --relay-when.
	relays, relayWhen string
	// plugin are the flags the built-ins read, declared by the registry
	// (hostconfig.PluginFlags).
	plugin hostconfig.Flags
}

// pluginPrefix names an out-of-process plugin binary in a plugin list:
// "plugin:/path/to/binary ARGS...".
const pluginPrefix = "plugin:"

// onPluginEvent, when set (by tests), receives the lifecycle events of the
// out-of-process plugins the flags start.
var onPluginEvent func(remote.Event)

// names lists the built-ins of a kind from the registry.
func names(k hostconfig.Kind) string { return strings.Join(hostconfig.BuiltinNames(k), ", ") }

// specs turns the plugin lists of the flags into plugin specs: discoveries,
// transports, then validators in the order given.
func (f nodeFlags) specs() ([]hostconfig.Plugin, error) {
	ds, ts, vs := hostconfig.SplitList(f.discovery), hostconfig.SplitList(f.transport), hostconfig.SplitList(f.validator)
	if len(ts) == 0 {
		return nil, fmt.Errorf("%w: --transport names none", framework.ErrNoTransport)
	}
	var builtins []string
	for _, list := range [][]string{ds, ts, vs} {
		for _, item := range list {
			if !strings.HasPrefix(item, pluginPrefix) {
				name, _, _ := strings.Cut(item, ":")
				builtins = append(builtins, name)
			}
		}
	}
	if err := hostconfig.CheckFlags(f.plugin, builtins); err != nil {
		return nil, err
	}
	for _, b := range f.plugin.Bootstrap {
		if _, err := framework.ParsePeerAddr(b, framework.Topic{}); err != nil {
			return nil, fmt.Errorf("--bootstrap: %w", err)
		}
	}
	var specs []hostconfig.Plugin
	for _, l := range []struct {
		kind  hostconfig.Kind
		items []string
	}{{hostconfig.KindDiscovery, ds}, {hostconfig.KindTransport, ts}, {hostconfig.KindValidator, vs}} {
		for _, item := range l.items {
			p, err := hostconfig.FlagPlugin(l.kind, item, f.plugin)
			if err != nil {
				return nil, err
			}
			specs = append(specs, p)
		}
	}
	return specs, nil
}

// options turns the flags into swarm options, with a clear error for an
// unknown plugin name. The plugins are returned too: close them if no
// swarm is built from the options (Swarm.Close closes them otherwise). On
// error, every plugin is closed.
func (f nodeFlags) options() ([]framework.Option, *hostconfig.Plugins, error) {
	specs, err := f.specs()
	if err != nil {
		return nil, nil, err
	}
	ps, err := hostconfig.Build(specs, hostconfig.BuildOptions{OnPluginEvent: onPluginEvent})
	if err != nil {
		return nil, nil, err
	}
	opts := append(ps.Options(), framework.WithListenHost(f.host))
	if f.port != 0 {
		opts = append(opts, framework.WithPort(f.port))
	}
	if f.connectTimeout != 0 {
		opts = append(opts, framework.WithConnectTimeout(f.connectTimeout))
	}
	return opts, ps, nil
}
