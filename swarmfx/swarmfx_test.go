package swarmfx_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/swarmfx"
)

func TestFxModuleWiresPluginsAndLifecycle(t *testing.T) {
	var sw *framework.Swarm
	d1 := &swarmtest.Discovery{NameValue: "b-second", AutoFlush: true}
	d2 := &swarmtest.Discovery{NameValue: "a-first", AutoFlush: true}
	app := fx.New(
		fx.NopLogger,
		swarmfx.Default(),
		swarmfx.Static(static.Config{}),
		swarmfx.ProvideDiscovery(func() *swarmtest.Discovery { return d1 }),
		swarmfx.ProvideDiscovery(func() framework.Discovery { return d2 }),
		swarmfx.Supply(framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithMaxPeers(3)),
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
	for _, d := range []*swarmtest.Discovery{d1, d2} {
		if _, ok := d.Request(topic); !ok {
			t.Fatalf("discovery %s from the value group not joined", d.Name())
		}
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

func TestEngineWithoutTransportsFails(t *testing.T) {
	// the engine's own check, reached through fx: a swarm needs a transport
	app := fx.New(fx.NopLogger, swarmfx.Engine(), fx.Invoke(func(*framework.Swarm) {}))
	if err := app.Err(); !errors.Is(err, framework.ErrNoTransport) {
		t.Fatalf("err = %v, want ErrNoTransport", err)
	}
}

// The struct tags of Params cannot name the constants; they must spell
// the same names.
func TestParamsTagsMatchTheConstants(t *testing.T) {
	want := map[string]string{
		"Transports":  swarmfx.TagTransports,
		"Discoveries": swarmfx.TagDiscoveries,
		"Options":     swarmfx.TagOptions,
		"Validators":  swarmfx.TagValidators + ` optional:"true"`,
	}
	typ := reflect.TypeFor[swarmfx.Params]()
	for name, tag := range want {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Fatalf("Params has no field %s", name)
		}
		if string(f.Tag) != tag {
			t.Errorf("Params.%s tag %q, want %q", name, f.Tag, tag)
		}
	}
}
