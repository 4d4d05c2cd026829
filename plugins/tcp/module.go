package tcp

import (
	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Module provides the TCP transport into the "transports" value group.
var Module = fx.Module("tcp",
	fx.Provide(fx.Annotate(
		func() framework.Transport { return New() },
		fx.ResultTags(`group:"transports"`),
	)),
)
