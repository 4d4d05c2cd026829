package framework

import (
	"context"
	"errors"

	"go.uber.org/fx"
)

// Value group names the fx wiring uses. Plugins provide into them with
// fx.ResultTags(`group:"transports"`) and so on.
const (
	GroupTransports  = "transports"
	GroupDiscoveries = "discoveries"
	GroupOptions     = "swarm_options"
)

// Params are the swarm's fx inputs. Transports and discoveries arrive
// through value groups in random order (the engine sorts them by (Order,
// Name)); validators run in the order of the one list [Validators]
// provides.
type Params struct {
	fx.In

	Lifecycle   fx.Lifecycle
	Transports  []Transport     `group:"transports"`
	Discoveries []Discovery     `group:"discoveries"`
	Validators  []PeerValidator `name:"validators" optional:"true"`
	Options     [][]Option      `group:"swarm_options"`
}

// Validators provides the swarm's validators, in the order they run:
// chain is a function taking validators from the graph and returning them
// in order, such as
//
//	func(b *validators.BanList, c *validators.CIDR) []framework.PeerValidator {
//		return []framework.PeerValidator{b, c}
//	}
//
// Give it once.
func Validators(chain any) fx.Option {
	return fx.Provide(fx.Annotate(chain, fx.ResultTags(`name:"validators"`)))
}

// NewFromParams builds a swarm from fx inputs and ties it to the fx
// lifecycle: Start on start, Close on stop.
func NewFromParams(p Params) (*Swarm, error) {
	var opts []Option
	for _, o := range p.Options {
		opts = append(opts, o...)
	}
	opts = append(opts, WithTransport(p.Transports...), WithDiscovery(p.Discoveries...), WithValidators(p.Validators...))
	s, err := New(opts...)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: s.Start,
		OnStop: func(context.Context) error {
			if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
				return err
			}
			return nil
		},
	})
	return s, nil
}

// Module provides *Swarm from the plugin value groups. Combine it with the
// plugins' modules (plugins/tcp.Module, ...) and [Supply] for options.
var Module = fx.Module("dwebswarm", fx.Provide(NewFromParams))

// Supply adds swarm options to the fx graph. Options of one Supply keep
// their order; several Supply calls apply in no particular order.
func Supply(opts ...Option) fx.Option {
	return fx.Provide(fx.Annotate(func() []Option { return opts }, fx.ResultTags(`group:"swarm_options"`)))
}
