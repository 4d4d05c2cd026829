package swarmfx_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
	"github.com/dwebswarm/dwebswarm-go/swarmfx"
)

// fxSwarm starts a swarm through fx with every validator module, a manual
// discovery and the TCP transport on loopback. The chain is banlist, cidr,
// then dht-private when priv, then ratelimit.
func fxSwarm(t *testing.T, priv bool, banPath string) (*framework.Swarm, *swarmtest.Discovery, *validators.BanList) {
	t.Helper()
	var sw *framework.Swarm
	var bans *validators.BanList
	disc := swarmtest.NewDiscovery()
	app := fx.New(
		fx.NopLogger,
		swarmfx.Default(),
		swarmfx.ProvideDiscovery(func() *swarmtest.Discovery { return disc }),
		swarmfx.Supply(framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithRequeue()),
		swarmfx.CIDR(validators.CIDRConfig{Deny: []string{"127.0.0.66", "127.0.0.77"}}),
		swarmfx.DHTPrivate(validators.DHTPrivateConfig{}),
		swarmfx.RateLimit(validators.RateLimitConfig{}),
		swarmfx.BanList(validators.BanListConfig{Path: banPath}),
		swarmfx.Validators(func(b *validators.BanList, c *validators.CIDR, p *validators.DHTPrivate, r *validators.RateLimit) []framework.PeerValidator {
			if priv {
				return []framework.PeerValidator{b, c, p, r}
			}
			return []framework.PeerValidator{b, c, r}
		}),
		fx.Populate(&sw, &bans),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Stop(context.Background()) })
	return sw, disc, bans
}

func rejection(t *testing.T, rec *swarmtest.Recorder, peer framework.Peer) error {
	t.Helper()
	ev := swarmtest.Wait(rec, func(e *framework.PeerRejectedEvent) bool { return e.Peer.Addr() == peer.Addr() })
	return ev.Reason
}

func TestValidatorModulesChainInOrderThroughFx(t *testing.T) {
	// value groups arrive shuffled, the validators list does not: a few
	// apps make an accidental order unlikely to pass
	for range 4 {
		path := filepath.Join(t.TempDir(), "bans")
		sw, disc, bans := fxSwarm(t, true, path)
		if err := bans.Ban("127.0.0.66", "test"); err != nil {
			t.Fatal(err)
		}
		rec := swarmtest.Record(t, sw)
		topic := framework.TopicFromString("chain")
		if err := sw.Join(context.Background(), topic); err != nil {
			t.Fatal(err)
		}
		// banned and denied: the ban list, listed first, answers
		both := framework.Peer{Host: "127.0.0.66", Port: 1000, Topic: topic}
		denied := framework.Peer{Host: "127.0.0.77", Port: 1000, Topic: topic}
		fromDHT := framework.Peer{Host: "127.0.0.88", Port: 1000, Topic: topic, Referrer: &framework.Referrer{Host: "127.0.0.1", Port: 6881}}
		disc.Emit(both, denied, fromDHT)
		if err := rejection(t, rec, both); !errors.Is(err, framework.ErrBanned) {
			t.Fatalf("banned and denied peer: %v, want the ban list's ErrBanned first", err)
		}
		if err := rejection(t, rec, denied); !errors.Is(err, validators.ErrNotAllowed) {
			t.Fatalf("denied peer: %v", err)
		}
		if err := rejection(t, rec, fromDHT); !errors.Is(err, validators.ErrInternalFromDHT) {
			t.Fatalf("loopback peer from the DHT with dht-private on: %v", err)
		}
	}
}

func TestFxDHTPrivateIsOffUnlessListed(t *testing.T) {
	sw, disc, _ := fxSwarm(t, false, filepath.Join(t.TempDir(), "bans"))
	rec := swarmtest.Record(t, sw)
	topic := framework.TopicFromString("off")
	if err := sw.Join(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	// a loopback testnet peer: accepted (its dial to a closed loopback
	// port fails, which is fine)
	peer := framework.Peer{Host: "127.0.0.1", Port: 1, Topic: topic, Referrer: &framework.Referrer{Host: "127.0.0.1", Port: 6881}}
	disc.Emit(peer)
	swarmtest.Wait(rec, func(e *framework.PeerEvent) bool { return e.Peer.Addr() == peer.Addr() })
}

func TestFxCorruptBanFileFailsTheApp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	if err := os.WriteFile(path, []byte("not a target at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app := fx.New(fx.NopLogger, swarmfx.BanList(validators.BanListConfig{Path: path}),
		fx.Invoke(func(*validators.BanList) {}))
	err := app.Err()
	if !errors.Is(err, validators.ErrCorruptBanList) || !strings.Contains(err.Error(), path+":1:") {
		t.Fatalf("err = %v", err)
	}
}
