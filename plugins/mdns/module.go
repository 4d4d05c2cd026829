package mdns

import (
	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Module provides an mDNS discovery with cfg into the "discoveries" value
// group. The swarm closes it; fx only builds it (New opens its sockets in
// the namespace of the goroutine that builds the graph).
func Module(cfg Config) fx.Option {
	return fx.Module("mdns",
		fx.Provide(fx.Annotate(
			func() (framework.Discovery, error) { return New(cfg) },
			fx.ResultTags(`group:"discoveries"`),
		)),
	)
}
