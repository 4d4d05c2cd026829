package remote

import (
	"github.com/hashicorp/go-plugin"

	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
)

// ProtocolVersion is the dwebswarm plugin protocol this package speaks,
// negotiated through go-plugin's PLUGIN_PROTOCOL_VERSIONS: the host offers
// the versions it supports ([SupportedVersions]), the plugin answers the
// highest it also supports, and the host refuses any other answer with an
// error wrapping [ErrIncompatible] that names both versions.
const ProtocolVersion = wire.ProtocolVersion

// SupportedVersions are the protocol versions a host of this package accepts.
var SupportedVersions = wire.SupportedVersions

// Magic cookie of the handshake, which the host puts in the plugin's
// environment: a plugin started without it (by hand, or by another
// go-plugin host) explains that it is a plugin and exits. It is not a
// security feature.
const (
	MagicCookieKey   = wire.MagicCookieKey
	MagicCookieValue = wire.MagicCookieValue
)

// Plugin kinds: what a plugin binary serves ([Probe], [Event.PluginKind]).
const (
	KindTransport = wire.KindTransport
	KindDiscovery = wire.KindDiscovery
	KindValidator = wire.KindValidator
)

// hostPluginSet is the plugin set a host dispenses from.
func hostPluginSet() plugin.PluginSet {
	return plugin.PluginSet{KindTransport: &wire.GRPCPlugin{}, KindDiscovery: &wire.GRPCPlugin{}, KindValidator: &wire.GRPCPlugin{}}
}
