package utp

import (
	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Module provides the uTP transport into the "transports" value group.
var Module = fx.Module("utp",
	fx.Provide(fx.Annotate(
		func() (framework.Transport, error) { return New(Config{}) },
		fx.ResultTags(`group:"transports"`),
	)),
)
