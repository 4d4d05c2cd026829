package dwebswarm_test

import (
	"context"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/goleak"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFxModuleWiresPluginsAndLifecycle(t *testing.T) {
	var sw *framework.Swarm
	d1 := &swarmtest.Discovery{NameValue: "b-second", AutoFlush: true}
	d2 := &swarmtest.Discovery{NameValue: "a-first", AutoFlush: true}
	app := fx.New(
		fx.NopLogger,
		dwebswarm.Module,
		static.Module,
		fx.Supply(static.Config{}),
		fx.Provide(
			fx.Annotate(func() framework.Discovery { return d1 }, fx.ResultTags(`group:"discoveries"`)),
			fx.Annotate(func() framework.Discovery { return d2 }, fx.ResultTags(`group:"discoveries"`)),
		),
		framework.Supply(framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithMaxPeers(3)),
		fx.Populate(&sw),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if sw.Port() == 0 {
		t.Fatal("swarm not started by the fx lifecycle")
	}
	topic := framework.TopicFromString("fx")
	if err := sw.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, ok := d1.Request(topic); !ok {
		t.Fatal("discovery from the value group not joined")
	}
	if err := sw.Flushed(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sw.Join(ctx, topic); err == nil {
		t.Fatal("swarm still open after fx stop")
	}
}

func TestNewRejectsBadStaticPeer(t *testing.T) {
	_, err := dwebswarm.New(context.Background(), dwebswarm.StaticPeers("nope"))
	if err == nil {
		t.Fatal("bad static peer accepted")
	}
}
