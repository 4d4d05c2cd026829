package remote

import (
	"context"

	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// TransportModule starts the plugin of cfg when the fx graph is built and
// provides it into the "transports" value group beside (or, when the
// built-in's module is left out, instead of) the built-ins; the plugin stops
// with the fx app. To replace a built-in, leave its module out: fx.Replace
// does not apply to value groups.
func TransportModule(cfg Config) fx.Option {
	return fx.Provide(fx.Annotate(
		func(lc fx.Lifecycle) (framework.Transport, error) {
			t, err := NewTransport(cfg)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(func(context.Context) error { return t.Close() }))
			return t, nil
		},
		fx.ResultTags(`group:"`+framework.GroupTransports+`"`),
	))
}

// DiscoveryModule provides the plugin of cfg into the "discoveries" group.
// The swarm closes discoveries; the stop hook makes sure the plugin ends
// even if the swarm was never built.
func DiscoveryModule(cfg Config) fx.Option {
	return fx.Provide(fx.Annotate(
		func(lc fx.Lifecycle) (framework.Discovery, error) {
			d, err := NewDiscovery(cfg)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(func(context.Context) error { return d.Close() }))
			return d, nil
		},
		fx.ResultTags(`group:"`+framework.GroupDiscoveries+`"`),
	))
}

// ValidatorModule provides the plugin of cfg as a *Validator. Validators
// run in the order the user lists them, so hand it to the swarm through
// [framework.Validators] with the others, in order:
//
//	remote.ValidatorModule(cfg),
//	framework.Validators(func(v *remote.Validator) []framework.PeerValidator {
//		return []framework.PeerValidator{v}
//	}),
//
// The plugin stops with the fx app.
func ValidatorModule(cfg Config) fx.Option {
	return fx.Provide(func(lc fx.Lifecycle) (*Validator, error) {
		v, err := NewValidator(cfg)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(func(context.Context) error { return v.Close() }))
		return v, nil
	})
}
