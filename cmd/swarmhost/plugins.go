package main

import (
	"fmt"
	"io"
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

// built are the plugins the flags construct. Until a swarm owns them
// (Swarm.Close closes them), close them with close.
type built struct {
	discoveries []framework.Discovery
	transports  []framework.Transport
	validators  []framework.PeerValidator
}

// close closes every plugin (out-of-process ones stop their processes).
func (b *built) close() {
	for _, d := range b.discoveries {
		d.Close()
	}
	for _, t := range b.transports {
		if c, ok := t.(io.Closer); ok {
			c.Close()
		}
	}
	for _, v := range b.validators {
		if c, ok := v.(io.Closer); ok {
			c.Close()
		}
	}
}

// options turns the flags into swarm options, with a clear error for an
// unknown plugin name. The plugins are returned too: close them if no
// swarm is built from the options. On error, every plugin is closed.
func (f nodeFlags) options() ([]framework.Option, *built, error) {
	b := &built{}
	if err := f.plugins(b); err != nil {
		b.close()
		return nil, nil, err
	}
	opts := []framework.Option{
		framework.WithDiscovery(b.discoveries...),
		framework.WithTransport(b.transports...),
		framework.WithValidators(b.validators...),
		framework.WithListenHost(f.host),
	}
	if f.port != 0 {
		opts = append(opts, framework.WithPort(f.port))
	}
	if f.connectTimeout != 0 {
		opts = append(opts, framework.WithConnectTimeout(f.connectTimeout))
	}
	return opts, b, nil
}

func (f nodeFlags) plugins(b *built) error {
	ds := splitList(f.discovery)
	ts := splitList(f.transport)
	if len(ts) == 0 {
		return fmt.Errorf("%w: --transport names none", framework.ErrNoTransport)
	}
	if len(f.mdnsIfaces) > 0 && !contains(ds, "mdns") {
		return fmt.Errorf("%w: --mdns-iface needs the mdns discovery (--discovery mdns,...)", framework.ErrInvalidOption)
	}
	if len(f.peers) > 0 && !contains(ds, "static") {
		return fmt.Errorf("%w: --peer needs the static discovery (--discovery static,...)", framework.ErrInvalidOption)
	}
	for _, addr := range splitList(f.bootstrap) {
		if _, err := framework.ParsePeerAddr(addr, framework.Topic{}); err != nil {
			return fmt.Errorf("--bootstrap: %w", err)
		}
	}
	for _, name := range ds {
		if path, ok := strings.CutPrefix(name, pluginPrefix); ok {
			d, err := remote.NewDiscovery(pluginConfig(path))
			if err != nil {
				return fmt.Errorf("discovery %s: %w", name, err)
			}
			b.discoveries = append(b.discoveries, d)
			continue
		}
		mk, ok := discoveryFactories[name]
		if !ok {
			return fmt.Errorf("%w: discovery %q (known: %s)", framework.ErrUnknownPlugin, name, names(discoveryFactories))
		}
		d, err := mk(f)
		if err != nil {
			return fmt.Errorf("discovery %s: %w", name, err)
		}
		b.discoveries = append(b.discoveries, d)
	}
	for _, name := range ts {
		if path, ok := strings.CutPrefix(name, pluginPrefix); ok {
			t, err := remote.NewTransport(pluginConfig(path))
			if err != nil {
				return fmt.Errorf("transport %s: %w", name, err)
			}
			b.transports = append(b.transports, t)
			continue
		}
		mk, ok := transportFactories[name]
		if !ok {
			return fmt.Errorf("%w: transport %q (known: %s)", framework.ErrUnknownPlugin, name, names(transportFactories))
		}
		t, err := mk(f)
		if err != nil {
			return fmt.Errorf("transport %s: %w", name, err)
		}
		b.transports = append(b.transports, t)
	}
	return f.validators(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
