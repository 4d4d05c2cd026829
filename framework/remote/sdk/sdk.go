package sdk

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/go-plugin"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
)

// Plugins are the implementations one plugin binary serves. Usually one is
// set; [ServeTransport], [ServeDiscovery] and [ServeValidator] are the
// one-call shorthands.
type Plugins struct {
	Transport framework.Transport
	Discovery framework.Discovery
	Validator framework.PeerValidator
}

// ServeTransport serves t to the dwebswarm host that started this binary
// and returns when the host stops the plugin. Call it from main:
//
//	func main() { sdk.ServeTransport(mytransport.New()) }
//
// Connections and listeners that are kernel sockets (*net.TCPConn,
// *net.UnixConn, *net.TCPListener, *net.UnixListener, exactly those types)
// are handed to the host by fd and closed here; any other net.Conn is
// relayed through a socketpair, and any other listener stays here.
func ServeTransport(t framework.Transport) { Serve(Plugins{Transport: t}) }

// ServeDiscovery serves d (see [ServeTransport]).
func ServeDiscovery(d framework.Discovery) { Serve(Plugins{Discovery: d}) }

// ServeValidator serves v (see [ServeTransport]).
func ServeValidator(v framework.PeerValidator) { Serve(Plugins{Validator: v}) }

// Serve serves every implementation set in p. Run directly (not by a
// host) it explains that it is a plugin and exits with status 1.
//
// Started by a host, it first starts every implementation that is a
// [framework.Starter] (the host does not forward Start: the plugin's
// process is the implementation's lifetime); when one fails, Serve writes
// the error to stderr, which the host reports, and exits with status 1.
func Serve(p Plugins) {
	if os.Getenv(wire.MagicCookieKey) == wire.MagicCookieValue {
		if err := startPlugins(context.Background(), p); err != nil {
			fmt.Fprintln(os.Stderr, "dwebswarm plugin:", err)
			os.Exit(1)
		}
	}
	plugin.Serve(ServeConfig(p))
}

// startPlugins starts the implementations of p that are a
// [framework.Starter], as Swarm.Start would: transport, discovery, then
// validator.
func startPlugins(ctx context.Context, p Plugins) error {
	for _, impl := range []interface{ Name() string }{p.Transport, p.Discovery, p.Validator} {
		if impl == nil {
			continue
		}
		if st, ok := impl.(framework.Starter); ok {
			if err := st.Start(ctx); err != nil {
				return fmt.Errorf("%s: start: %w", impl.Name(), err)
			}
		}
	}
	return nil
}
