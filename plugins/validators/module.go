package validators

import (
	"go.uber.org/fx"
)

// CIDRModule provides the cidr validator, built from the CIDRConfig in the
// fx graph, as *CIDR. Place it in the chain with framework.Validators.
var CIDRModule = fx.Module("validators.cidr", fx.Provide(NewCIDR))

// DHTPrivateModule provides the dht-private filter, built from the
// DHTPrivateConfig in the fx graph, as *DHTPrivate. Place it in the chain
// with framework.Validators.
var DHTPrivateModule = fx.Module("validators.dht-private", fx.Provide(NewDHTPrivate))

// RateLimitModule provides the ratelimit validator, built from the
// RateLimitConfig in the fx graph, as *RateLimit. Place it in the chain
// with framework.Validators.
var RateLimitModule = fx.Module("validators.ratelimit", fx.Provide(NewRateLimit))

// BanListModule opens the ban list named by the BanListConfig in the fx
// graph and provides it as *BanList (to ban and unban at run time). A
// corrupt ban file fails the application's start with an error naming the
// file and line. Place it in the chain with framework.Validators.
var BanListModule = fx.Module("validators.banlist", fx.Provide(OpenBanList))
