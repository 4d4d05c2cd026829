package swarmfx

import (
	"context"

	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// RemoteTransport starts the plugin binary of cfg when the fx graph is
// built and provides its transport into the transports group, beside (or,
// when the built-in's module is left out, instead of) the built-ins. The
// plugin stops with the fx app. Give cfg.Name to run a plugin beside a
// built-in of the same name.
func RemoteTransport(cfg remote.Config) fx.Option {
	return ProvideTransport(func(lc fx.Lifecycle) (*remote.Transport, error) {
		t, err := remote.NewTransport(cfg)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(func(context.Context) error { return t.Close() }))
		return t, nil
	})
}

// RemoteDiscovery provides the plugin of cfg into the discoveries group.
// The swarm closes discoveries; the stop hook makes sure the plugin ends
// even if the swarm was never built.
func RemoteDiscovery(cfg remote.Config) fx.Option {
	return ProvideDiscovery(func(lc fx.Lifecycle) (*remote.Discovery, error) {
		d, err := remote.NewDiscovery(cfg)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(func(context.Context) error { return d.Close() }))
		return d, nil
	})
}

// RemoteValidator provides the plugin of cfg as a *remote.Validator.
// Validators run in the order the user lists them, so hand it to the swarm
// through [Validators] with the others, in order:
//
//	swarmfx.RemoteValidator(cfg),
//	swarmfx.Validators(func(v *remote.Validator) []framework.PeerValidator {
//		return []framework.PeerValidator{v}
//	}),
//
// The plugin stops with the fx app.
func RemoteValidator(cfg remote.Config) fx.Option {
	return fx.Provide(func(lc fx.Lifecycle) (*remote.Validator, error) {
		v, err := remote.NewValidator(cfg)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(func(context.Context) error { return v.Close() }))
		return v, nil
	})
}
