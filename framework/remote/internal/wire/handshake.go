package wire

import (
	"context"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the dwebswarm plugin protocol, negotiated through
// go-plugin's PLUGIN_PROTOCOL_VERSIONS: the host offers the versions it
// supports ([SupportedVersions]), the plugin answers the highest it also
// supports, and the host refuses any other answer. Bump it for any
// incompatible change of remote.proto, of the fd-channel messages
// (fdchan.go), of the connect-back hellos (connect.go) or of the shared UDP
// socket's datagram layout (packetconn.go).
const ProtocolVersion = 1

// SupportedVersions are the protocol versions a host accepts.
var SupportedVersions = []int{ProtocolVersion}

// Magic cookie of the handshake: a plugin started without it (by hand, or by
// another go-plugin host) explains that it is a plugin and exits. It is not
// a security feature.
const (
	MagicCookieKey   = "DWEBSWARM_PLUGIN"
	MagicCookieValue = "7c3e1bd2f0a94e6b8d5a2c61f9e04b37-dwebswarm-plugin"
)

// Plugin kinds: the names under which a plugin binary serves its
// implementations in the go-plugin plugin set, and PluginInfo.kind.
const (
	KindTransport = "transport"
	KindDiscovery = "discovery"
	KindValidator = "validator"
)

// Handshake is the go-plugin handshake of dwebswarm plugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// DefaultRequestTimeout bounds a plugin-side call whose request carries no
// usable timeout_ms; it equals the host's default call timeout.
const DefaultRequestTimeout = 10 * time.Second

// RequestTimeout turns a request's timeout_ms into a bound for the
// implementation's call (DefaultRequestTimeout when unset or absurd).
func RequestTimeout(ms int64) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 || d > time.Minute {
		return DefaultRequestTimeout
	}
	return d
}

// TimeoutMs is the timeout_ms the host sends for a call bounded by ctx:
// what is left of ctx, or def; at least 1.
func TimeoutMs(ctx context.Context, def time.Duration) int64 {
	if dl, ok := ctx.Deadline(); ok {
		def = time.Until(dl)
	}
	return max(1, def.Milliseconds())
}

// GRPCPlugin is the go-plugin glue for one kind: on the plugin side it
// registers a gRPC service; on the host side it hands back the raw
// connection (the host builds its own stubs).
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
