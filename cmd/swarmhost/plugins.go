package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// nodeFlags are the plugin settings shared by the commands that run a swarm.
type nodeFlags struct {
	peers          []string
	discovery      string
	transport      string
	bootstrap      string
	host           string
	port           int
	mdnsIfaces     []string
	connectTimeout time.Duration
	validator      string
	allow, deny    []string
	mdnsInterval   time.Duration // mDNS query (and announce-only re-announce) interval; 0: 30-60 s
}

// discoveryFactories builds the built-in discoveries by name.
var discoveryFactories = map[string]func(nodeFlags) (framework.Discovery, error){
	"static": func(f nodeFlags) (framework.Discovery, error) { return static.FromAddrs(f.peers...) },
	"dht": func(f nodeFlags) (framework.Discovery, error) {
		cfg := dht.Config{}
		if b := splitList(f.bootstrap); len(b) > 0 {
			cfg.Bootstrap = b // else the public mainline routers
		}
		return dht.NewPlugin(cfg)
	},
	"mdns": func(f nodeFlags) (framework.Discovery, error) {
		cfg := mdns.Config{Interfaces: f.mdnsIfaces}
		if f.mdnsInterval > 0 {
			cfg.QueryIntervalMin, cfg.QueryIntervalMax = f.mdnsInterval, f.mdnsInterval
		}
		return mdns.New(cfg)
	},
}

// transportFactories builds the built-in transports by name.
var transportFactories = map[string]func(nodeFlags) (framework.Transport, error){
	"tcp": func(nodeFlags) (framework.Transport, error) { return tcp.New(), nil },
	"utp": func(nodeFlags) (framework.Transport, error) { return utp.New(), nil },
}

func names[V any](m map[string]V) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// splitList splits a comma-separated list, dropping empty items and repeats.
func splitList(s string) []string {
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

// options turns the flags into swarm options, with a clear error for an
// unknown plugin name.
func (f nodeFlags) options() ([]framework.Option, error) {
	var opts []framework.Option
	ds := splitList(f.discovery)
	for _, name := range ds {
		if path, ok := strings.CutPrefix(name, pluginPrefix); ok {
			d, err := remote.NewDiscovery(pluginConfig(path))
			if err != nil {
				return nil, fmt.Errorf("discovery %s: %w", name, err)
			}
			opts = append(opts, framework.WithDiscovery(d))
			continue
		}
		mk, ok := discoveryFactories[name]
		if !ok {
			return nil, fmt.Errorf("%w: discovery %q (known: %s)", framework.ErrUnknownPlugin, name, names(discoveryFactories))
		}
		d, err := mk(f)
		if err != nil {
			return nil, fmt.Errorf("discovery %s: %w", name, err)
		}
		opts = append(opts, framework.WithDiscovery(d))
	}
	ts := splitList(f.transport)
	if len(ts) == 0 {
		return nil, fmt.Errorf("%w: --transport names none", framework.ErrNoTransport)
	}
	for _, name := range ts {
		if path, ok := strings.CutPrefix(name, pluginPrefix); ok {
			t, err := remote.NewTransport(pluginConfig(path))
			if err != nil {
				return nil, fmt.Errorf("transport %s: %w", name, err)
			}
			opts = append(opts, framework.WithTransport(t))
			continue
		}
		mk, ok := transportFactories[name]
		if !ok {
			return nil, fmt.Errorf("%w: transport %q (known: %s)", framework.ErrUnknownPlugin, name, names(transportFactories))
		}
		t, err := mk(f)
		if err != nil {
			return nil, fmt.Errorf("transport %s: %w", name, err)
		}
		opts = append(opts, framework.WithTransport(t))
	}
	if len(f.mdnsIfaces) > 0 && !contains(ds, "mdns") {
		return nil, fmt.Errorf("%w: --mdns-iface needs the mdns discovery (--discovery mdns,...)", framework.ErrInvalidOption)
	}
	if len(f.peers) > 0 && !contains(ds, "static") {
		return nil, fmt.Errorf("%w: --peer needs the static discovery (--discovery static,...)", framework.ErrInvalidOption)
	}
	for _, b := range splitList(f.bootstrap) {
		if _, err := framework.ParsePeerAddr(b, framework.Topic{}); err != nil {
			return nil, fmt.Errorf("--bootstrap: %w", err)
		}
	}
	vopts, err := f.validatorOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, vopts...)
	opts = append(opts, framework.WithListenHost(f.host))
	if f.port != 0 {
		opts = append(opts, framework.WithPort(f.port))
	}
	if f.connectTimeout != 0 {
		opts = append(opts, framework.WithConnectTimeout(f.connectTimeout))
	}
	return opts, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
