package sdk

import (
	"github.com/hashicorp/go-plugin"

	"github.com/dwebswarm/dwebswarm-go/framework"
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
func Serve(p Plugins) {
	plugin.Serve(ServeConfig(p))
}
