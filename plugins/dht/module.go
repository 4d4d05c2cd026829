package dht

import (
	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Module provides the DHT discovery, built from the Config in the fx graph,
// into the "discoveries" value group.
var Module = fx.Module("dht",
	fx.Provide(fx.Annotate(
		func(cfg Config) (framework.Discovery, error) { return New(cfg) },
		fx.ResultTags(`group:"discoveries"`),
	)),
)
