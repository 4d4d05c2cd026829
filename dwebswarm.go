// Package dwebswarm finds and connects to peers interested in the same
// 32-byte topic, with no server of its own: the Go home of the dwebswarm v3 /
// hyperswarm v2 API.
//
// [New] builds and starts a swarm with the default plugins (the TCP
// transport, plus any discovery given as an option). The engine, the plugin
// interfaces and the event types live in package framework; built-in plugins
// live under plugins/. fx users build swarms with package swarmfx (the
// module's only fx wiring) instead.
package dwebswarm

import (
	"context"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// New builds a swarm from opts with the TCP transport (unless opts give
// transports of their own) and starts it: its listeners are bound when New
// returns. Close it when done.
//
// framework.WithTransport replaces TCP rather than adding to it: for uTP
// next to TCP, give both: u, err := utp.New(utp.Config{}), then
// framework.WithTransport(tcp.New(), u).
func New(ctx context.Context, opts ...framework.Option) (*framework.Swarm, error) {
	all := append([]framework.Option{framework.WithDefaultTransport(tcp.New())}, opts...)
	sw, err := framework.New(all...)
	if err != nil {
		return nil, err
	}
	if err := sw.Start(ctx); err != nil {
		sw.Close()
		return nil, err
	}
	return sw, nil
}

// StaticPeers adds a static discovery listing addrs (host:port) for every
// topic. An invalid address makes New fail.
func StaticPeers(addrs ...string) framework.Option {
	d, err := static.FromAddrs(addrs...)
	if err != nil {
		return framework.OptionError(err)
	}
	return framework.WithDiscovery(d)
}

// DHT adds the mainline DHT discovery ([dht.New]) on the swarm's shared UDP
// socket; it opens nothing before the swarm starts.
// cfg.Bootstrap nil means the public mainline routers — for real use only;
// tests and demos pass loopback bootstrap nodes (see plugins/dht/dhttest).
func DHT(cfg dht.Config) framework.Option {
	p, err := dht.New(cfg)
	if err != nil {
		return framework.OptionError(err)
	}
	return framework.WithDiscovery(p)
}

// MDNS adds LAN discovery with DNS-SD over mDNS. cfg.Interfaces nil means
// every up, multicast-capable, non-loopback interface. Building the option
// only checks cfg: the multicast sockets open when the swarm starts, in the
// network namespace of the goroutine that calls Start.
func MDNS(cfg mdns.Config) framework.Option {
	d, err := mdns.New(cfg)
	if err != nil {
		return framework.OptionError(err)
	}
	return framework.WithDiscovery(d)
}
