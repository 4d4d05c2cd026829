package main

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// The plugins that run on the swarm's shared UDP socket are served out of
// process too: the socket is relayed to them. Loopback only: the DHT
// bootstraps from a local testnet.
func TestPluginServeSharedUDPSocket(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "swarmhost"+exeSuffix)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	quiet := slog.New(slog.DiscardHandler)

	// the uTP transport passes the transport contract out of process. The
	// suite listens without a swarm, so the factory binds the shared socket
	// a swarm would and hands the plugin its non-KRPC side.
	t.Run("utp-conformance", func(t *testing.T) {
		conformance.RunTransportSuite(t, func(ct *conformance.T) (framework.Transport, error) {
			mux, err := udpmux.Listen("udp4", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			tr, err := remote.NewTransport(remote.Config{Path: bin, Args: []string{"plugin", "serve", "utp"}, Logger: quiet})
			if err != nil {
				mux.Close()
				return nil, err
			}
			ct.Cleanup(func() { tr.Close(); mux.Close() })
			if err := tr.UsePacketConn(mux.Other()); err != nil {
				return nil, err
			}
			return tr, nil
		})
	})

	// the DHT discovery out of process, in a swarm, finds an in-process
	// swarm's announce and the swarms connect
	t.Run("dht-swarm", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tn, err := dhttest.Start(ctx, 10, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer tn.Close()
		topic := framework.TopicFromString("swarmhost plugin serve dht")
		local, err := dht.New(tn.Config(dht.Config{Ephemeral: dht.Bool(true)}))
		if err != nil {
			t.Fatal(err)
		}
		a, recA := udpTestSwarm(t, framework.WithDiscovery(local))
		if err := a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
			t.Fatal(err)
		}
		if err := a.Flushed(ctx, topic); err != nil {
			t.Fatal(err)
		}
		d, err := remote.NewDiscovery(remote.Config{Path: bin, Args: []string{"plugin", "serve", "--bootstrap", strings.Join(tn.Bootstrap(), ","), "dht"}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		b, recB := udpTestSwarm(t, framework.WithDiscovery(d))
		if err := b.Join(ctx, topic, framework.Announce(false), framework.Lookup(true)); err != nil {
			t.Fatal(err)
		}
		cb := swarmtest.Wait[*framework.ConnectionEvent](recB, nil).Conn
		swarmtest.Wait[*framework.ConnectionEvent](recA, nil)
		if want := "127.0.0.1:" + strconv.Itoa(a.Port()); cb.RemoteAddr().String() != want {
			t.Fatalf("connected to %s, want %s", cb.RemoteAddr(), want)
		}
		if v := dhttest.Violations(); v != 0 {
			t.Fatalf("%d packets to non-loopback addresses", v)
		}
	})
}

func udpTestSwarm(t *testing.T, opts ...framework.Option) (*framework.Swarm, *swarmtest.Recorder) {
	t.Helper()
	base := []framework.Option{
		framework.WithTransport(tcp.New()),
		framework.WithListenHost("127.0.0.1"),
		framework.WithPreferredPort(0),
		framework.WithConnectTimeout(5 * time.Second),
		framework.WithLogger(slog.New(slog.DiscardHandler)),
	}
	sw, err := framework.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	rec := swarmtest.Record(t, sw)
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sw.Close(); err != nil && !errors.Is(err, framework.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return sw, rec
}
