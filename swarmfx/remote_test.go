package swarmfx_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/swarmfx"
)

// pids records the processes the plugins of a test started.
type pids struct {
	mu  sync.Mutex
	all []int
}

func (p *pids) onEvent(e remote.Event) {
	if e.PID > 0 && (e.Kind == remote.EventStarted || e.Kind == remote.EventRestarted) {
		p.mu.Lock()
		p.all = append(p.all, e.PID)
		p.mu.Unlock()
	}
}

// requireEnded fails unless want plugin processes were started and every
// one of them has ended.
func (p *pids) requireEnded(t *testing.T, want int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.all) < want {
		t.Fatalf("%d plugin processes started, want %d", len(p.all), want)
	}
	for _, pid := range p.all {
		if processAlive(pid) {
			t.Errorf("plugin process %d still running", pid)
			if proc, err := os.FindProcess(pid); err == nil {
				proc.Kill() // ours: do not leave it behind
			}
		}
	}
}

func TestFxRemoteModules(t *testing.T) {
	var sw *framework.Swarm
	var started pids
	cfg := func(args ...string) remote.Config { return pluginConfig(t, started.onEvent, args...) }
	app := fx.New(
		fx.NopLogger,
		swarmfx.Engine(),
		swarmfx.Supply(framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithLogger(logger(t))),
		swarmfx.RemoteTransport(cfg("tcp")),
		swarmfx.RemoteDiscovery(cfg("static", "127.0.0.1:9")),
		swarmfx.RemoteValidator(cfg("deny", "127.0.0.1:9")),
		swarmfx.Validators(func(v *remote.Validator) []framework.PeerValidator { return []framework.PeerValidator{v} }),
		fx.Populate(&sw),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rec := swarmtest.Record(t, sw)
	topic := framework.TopicFromString("remote plugins under fx")
	if err := sw.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	// the remote discovery's peer, refused by the remote validator
	e := swarmtest.Wait[*framework.PeerRejectedEvent](rec, nil)
	if !strings.Contains(e.Reason.Error(), "deny list") {
		t.Fatalf("reason %v", e.Reason)
	}
	// the remote transport listens
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(sw.Port()))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	started.requireEnded(t, 3)
}

// A swarm that fails to build fails the app, and no plugin started for it
// outlives the failure: fx runs no stop hook for an app that never
// started.
func TestFxRemotePluginsEndWhenTheSwarmFailsToBuild(t *testing.T) {
	var started pids
	cfg := func(args ...string) remote.Config { return pluginConfig(t, started.onEvent, args...) }
	app := fx.New(
		fx.NopLogger,
		swarmfx.Engine(),
		swarmfx.Supply(framework.WithMaxPeers(-1)), // invalid
		swarmfx.RemoteTransport(cfg("tcp")),
		swarmfx.RemoteDiscovery(cfg("static", "127.0.0.1:9")),
		swarmfx.RemoteValidator(cfg("deny", "127.0.0.1:9")),
		swarmfx.Validators(func(v *remote.Validator) []framework.PeerValidator { return []framework.PeerValidator{v} }),
		fx.Invoke(func(*framework.Swarm) {}),
	)
	if err := app.Err(); !errors.Is(err, framework.ErrInvalidOption) {
		t.Fatalf("err = %v, want ErrInvalidOption", err)
	}
	started.requireEnded(t, 3)
}
