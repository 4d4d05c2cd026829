package swarmfx

import (
	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

// UTP provides the uTP transport (plugins/utp) tuned by cfg into the
// transports group; the zero Config takes every default.
func UTP(cfg utp.Config) fx.Option {
	return fx.Module("utp", ProvideTransport(func() (*utp.Transport, error) { return utp.New(cfg) }))
}

// DHT provides the mainline DHT discovery (plugins/dht) on the swarm's
// shared UDP socket into the discoveries group. cfg.Bootstrap nil means
// the public mainline routers — for real use only; tests pass loopback
// bootstrap nodes (plugins/dht/dhttest).
func DHT(cfg dht.Config) fx.Option {
	return fx.Module("dht", ProvideDiscovery(func() (*dht.Plugin, error) { return dht.New(cfg) }))
}

// MDNS provides the LAN discovery (plugins/mdns) into the discoveries
// group. The swarm closes it.
func MDNS(cfg mdns.Config) fx.Option {
	return fx.Module("mdns", ProvideDiscovery(func() (*mdns.Discovery, error) { return mdns.New(cfg) }))
}

// Static provides a static peer-list discovery (plugins/static) into the
// discoveries group.
func Static(cfg static.Config) fx.Option {
	return fx.Module("static", ProvideDiscovery(func() (*static.Discovery, error) { return static.New(cfg) }))
}

// CIDR provides the cidr validator as *validators.CIDR. Place it in the
// chain with [Validators].
func CIDR(cfg validators.CIDRConfig) fx.Option {
	return fx.Module("validators.cidr", fx.Provide(func() (*validators.CIDR, error) { return validators.NewCIDR(cfg) }))
}

// DHTPrivate provides the dht-private filter as *validators.DHTPrivate.
// It filters only when placed in the chain with [Validators]; leave it out
// of the chain (or the module out of the app) to keep it off.
func DHTPrivate(cfg validators.DHTPrivateConfig) fx.Option {
	return fx.Module("validators.dht-private", fx.Provide(func() (*validators.DHTPrivate, error) { return validators.NewDHTPrivate(cfg) }))
}

// RateLimit provides the ratelimit validator as *validators.RateLimit.
// Place it in the chain with [Validators].
func RateLimit(cfg validators.RateLimitConfig) fx.Option {
	return fx.Module("validators.ratelimit", fx.Provide(func() (*validators.RateLimit, error) { return validators.NewRateLimit(cfg) }))
}

// BanList opens the ban list named by cfg and provides it as
// *validators.BanList (to ban and unban at run time). A corrupt ban file
// fails the application with an error naming the file and line. Place it
// in the chain with [Validators].
func BanList(cfg validators.BanListConfig) fx.Option {
	return fx.Module("validators.banlist", fx.Provide(func() (*validators.BanList, error) { return validators.OpenBanList(cfg) }))
}
