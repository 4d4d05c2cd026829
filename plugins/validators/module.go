package validators

import (
	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// group is the value-group tag validators are provided under.
const group = `group:"` + framework.GroupValidators + `"`

// CIDRModule provides the cidr validator, built from the CIDRConfig in the
// fx graph, into the "validators" group.
var CIDRModule = fx.Module("validators.cidr",
	fx.Provide(fx.Annotate(
		func(cfg CIDRConfig) (framework.PeerValidator, error) { return NewCIDR(cfg) },
		fx.ResultTags(group),
	)),
)

// DHTPrivateModule provides the dht-private filter, built from the
// DHTPrivateConfig in the fx graph, into the "validators" group — only when
// the config has Enabled set (off by default).
var DHTPrivateModule = fx.Module("validators.dht-private",
	fx.Provide(fx.Annotate(
		func(cfg DHTPrivateConfig) ([]framework.PeerValidator, error) {
			if !cfg.Enabled {
				return nil, nil
			}
			f, err := NewDHTPrivate(cfg)
			if err != nil {
				return nil, err
			}
			return []framework.PeerValidator{f}, nil
		},
		fx.ResultTags(`group:"`+framework.GroupValidators+`,flatten"`),
	)),
)

// RateLimitModule provides the ratelimit validator, built from the
// RateLimitConfig in the fx graph, into the "validators" group.
var RateLimitModule = fx.Module("validators.ratelimit",
	fx.Provide(fx.Annotate(
		func(cfg RateLimitConfig) (framework.PeerValidator, error) { return NewRateLimit(cfg) },
		fx.ResultTags(group),
	)),
)

// BanListModule opens the ban list named by the BanListConfig in the fx
// graph, provides it as *BanList (to ban and unban at run time) and into
// the "validators" group. A corrupt ban file fails the application's start
// with an error naming the file and line.
var BanListModule = fx.Module("validators.banlist",
	fx.Provide(OpenBanList),
	fx.Provide(fx.Annotate(
		func(b *BanList) framework.PeerValidator { return b },
		fx.ResultTags(group),
	)),
)
