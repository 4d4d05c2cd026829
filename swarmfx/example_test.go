package swarmfx_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/swarmfx"
)

// The swarm under fx: Join in an OnStart hook appended after the swarm's
// own (fx.Invoke runs before any OnStart, when the swarm has not started).
func ExampleDefault() {
	topic := framework.TopicFromString("my-dwebswarm-topic")
	app := fx.New(
		fx.NopLogger,
		swarmfx.Default(), // engine + TCP
		swarmfx.Static(static.Config{}),
		swarmfx.Supply(framework.WithMaxPeers(64), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0)),
		fx.Invoke(func(lc fx.Lifecycle, sw *framework.Swarm) {
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
				return sw.Join(ctx, topic, framework.Announce(true))
			}})
		}),
		fx.Invoke(func(lc fx.Lifecycle, sw *framework.Swarm) {
			lc.Append(fx.Hook{OnStart: func(context.Context) error {
				st, _ := sw.Status(topic)
				fmt.Println("joined, announce:", st.Announce)
				return nil
			}})
		}),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	if err := app.Stop(ctx); err != nil {
		panic(err)
	}
	// Output:
	// joined, announce: true
}
