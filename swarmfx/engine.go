package swarmfx

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// Names of the fx value groups and of the validator list. Use the Tag
// constants in fx.ResultTags; the struct tags of [Params] spell the same
// names (Go struct tags cannot name a constant; a test holds them equal).
const (
	GroupTransports  = "transports"    // framework.Transport values
	GroupDiscoveries = "discoveries"   // framework.Discovery values
	GroupOptions     = "swarm_options" // []framework.Option values (see Supply)
	NameValidators   = "validators"    // the one []framework.PeerValidator (see Validators)

	TagTransports  = `group:"` + GroupTransports + `"`
	TagDiscoveries = `group:"` + GroupDiscoveries + `"`
	TagOptions     = `group:"` + GroupOptions + `"`
	TagValidators  = `name:"` + NameValidators + `"`
)

// Params are the swarm's fx inputs. Transports and discoveries arrive
// through value groups in random order (the engine sorts them by (Order,
// Name)); validators run in the order of the one list [Validators]
// provides.
type Params struct {
	fx.In

	Lifecycle   fx.Lifecycle
	Transports  []framework.Transport     `group:"transports"`
	Discoveries []framework.Discovery     `group:"discoveries"`
	Validators  []framework.PeerValidator `name:"validators" optional:"true"`
	Options     [][]framework.Option      `group:"swarm_options"`
}

// NewFromParams builds a swarm from fx inputs and ties it to the fx
// lifecycle: Start on start, Close on stop. When the swarm cannot be built
// it closes the plugins it was given (discoveries, and transports and
// validators that are io.Closers), as the swarm would have: fx runs no stop
// hook of an app that failed to build, so an out-of-process plugin would
// otherwise outlive the failure.
func NewFromParams(p Params) (*framework.Swarm, error) {
	var opts []framework.Option
	for _, o := range p.Options {
		opts = append(opts, o...)
	}
	opts = append(opts,
		framework.WithTransport(p.Transports...),
		framework.WithDiscovery(p.Discoveries...),
		framework.WithValidators(p.Validators...))
	s, err := framework.New(opts...)
	if err != nil {
		return nil, errors.Join(err, closePlugins(p))
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: s.Start,
		OnStop: func(context.Context) error {
			if err := s.Close(); err != nil && !errors.Is(err, framework.ErrClosed) {
				return err
			}
			return nil
		},
	})
	return s, nil
}

// Engine provides *framework.Swarm from the value groups (see [Params]).
// Combine it with plugin modules ([TCP], [Static], ...) and [Supply] for
// options, or use [Default].
func Engine() fx.Option {
	return fx.Module("dwebswarm", fx.Provide(NewFromParams))
}

// Default is the swarm with the default plugins, as dwebswarm.New builds
// it: [Engine] and [TCP]. Add discoveries and options beside it.
func Default() fx.Option {
	return fx.Options(Engine(), TCP())
}

// Supply adds swarm options to the fx graph. Options of one Supply keep
// their order; several Supply calls apply in no particular order.
func Supply(opts ...framework.Option) fx.Option {
	return fx.Provide(fx.Annotate(func() []framework.Option { return opts }, fx.ResultTags(TagOptions)))
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
	return fx.Provide(fx.Annotate(chain, fx.ResultTags(TagValidators)))
}

// ProvideTransport provides the transport that constructor returns (a
// function returning a framework.Transport, and optionally an error, whose
// parameters come from the graph) into the [GroupTransports] group.
func ProvideTransport(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor, fx.As(new(framework.Transport)), fx.ResultTags(TagTransports)))
}

// ProvideDiscovery provides the discovery that constructor returns into
// the [GroupDiscoveries] group (see [ProvideTransport]).
func ProvideDiscovery(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor, fx.As(new(framework.Discovery)), fx.ResultTags(TagDiscoveries)))
}

// TCP provides the TCP transport (plugins/tcp, which has no
// configuration) into the transports group.
func TCP() fx.Option {
	return fx.Module("tcp", ProvideTransport(tcp.New))
}

// closePlugins closes the plugins of p that hold resources.
func closePlugins(p Params) error {
	var errs []error
	closeOne := func(kind, name string, x any) {
		if c, ok := x.(io.Closer); ok {
			if err := c.Close(); err != nil && !errors.Is(err, framework.ErrClosed) {
				errs = append(errs, fmt.Errorf("%s %s: close: %w", kind, name, err))
			}
		}
	}
	for _, t := range p.Transports {
		closeOne("transport", t.Name(), t)
	}
	for _, d := range p.Discoveries {
		closeOne("discovery", d.Name(), d)
	}
	for _, v := range p.Validators {
		closeOne("validator", v.Name(), v)
	}
	return errors.Join(errs...)
}
