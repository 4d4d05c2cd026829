// Package sdk is the package a dwebswarm plugin binary's main imports: it
// serves a [framework.Transport], [framework.Discovery] or
// [framework.PeerValidator] to the dwebswarm host that started the binary
// (see package [github.com/dwebswarm/dwebswarm-go/framework/remote], the
// host side, for how hosts run plugins):
//
//	func main() { sdk.ServeTransport(mytransport.New()) }
//
// Optional interfaces of the implementation cross the process boundary
// when the host can forward them: [framework.PacketConnUser] (the swarm's
// shared UDP socket, relayed), [framework.HolePuncher],
// [framework.ConnectivityReporter] and [framework.Refresher] of a
// discovery, [framework.DialFilter] and [framework.Drainer] of a
// transport, and [framework.Ordered]. remote.Forwarded lists every
// interface of package framework and how, or why not, it crosses. An
// implementation that is a [framework.Starter] is started by Serve, in the
// plugin's process, before it serves.
//
// Run by hand (not by a host), a plugin explains that it is a plugin and
// exits with status 1.
package sdk

import (
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// Plugins are the implementations one plugin binary serves. Usually one is
// set; [ServeTransport], [ServeDiscovery] and [ServeValidator] are the
// one-call shorthands.
type Plugins = remote.Plugins

// ServeTransport serves t to the dwebswarm host that started this binary
// and returns when the host stops the plugin.
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

// Serve serves every implementation set in p.
func Serve(p Plugins) { remote.Serve(p) }
