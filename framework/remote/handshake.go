package remote

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the dwebswarm plugin protocol this package speaks,
// negotiated through go-plugin's PLUGIN_PROTOCOL_VERSIONS: the host offers
// the versions it supports ([SupportedVersions]), the plugin answers the
// highest it also supports, and the host refuses any other answer with an
// error wrapping [ErrIncompatible] that names both versions. Bump it for any
// incompatible change of remote.proto or of the fd-channel messages.
const ProtocolVersion = 1

// SupportedVersions are the protocol versions a host of this package accepts.
var SupportedVersions = []int{ProtocolVersion}

// Magic cookie of the handshake: a plugin started without it (by hand, or by
// another go-plugin host) explains that it is a plugin and exits. It is not
// a security feature.
const (
	MagicCookieKey   = "DWEBSWARM_PLUGIN"
	MagicCookieValue = "7c3e1bd2f0a94e6b8d5a2c61f9e04b37-dwebswarm-plugin"
)

// Plugin kinds: the names under which a plugin binary serves its
// implementations in the go-plugin plugin set.
const (
	KindTransport = "transport"
	KindDiscovery = "discovery"
	KindValidator = "validator"
)

// Handshake is the go-plugin handshake of dwebswarm plugins. Plugin authors
// never need it ([ServeTransport] and friends use it); it is exported for
// tools and tests that build a go-plugin server by hand.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// GRPCPlugin is the go-plugin glue for one kind: on the plugin side it
// registers a gRPC service; on the host side it hands back the raw
// connection (the host builds its own stubs). Exported for tests and tools
// that serve hand-written gRPC servers; plugin authors use the Serve
// functions.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Register registers the service on the plugin's gRPC server (plugin
	// side only).
	Register func(*grpc.Server)
}

// GRPCServer implements plugin.GRPCPlugin.
func (g *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if g.Register != nil {
		g.Register(s)
	}
	return nil
}

// GRPCClient implements plugin.GRPCPlugin: it returns the *grpc.ClientConn.
func (g *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// hostPluginSet is the plugin set a host dispenses from.
func hostPluginSet() plugin.PluginSet {
	return plugin.PluginSet{KindTransport: &GRPCPlugin{}, KindDiscovery: &GRPCPlugin{}, KindValidator: &GRPCPlugin{}}
}
