package framework

import (
	"context"
	"net"
	"reflect"
)

// JoinRequest is what the engine asks a [Discovery] to do for one topic.
type JoinRequest struct {
	Topic    Topic
	Announce bool // list this swarm under the topic as a connectable target
	Lookup   bool // look for peers of the topic and report them
	Port     int  // the swarm's listening port (TCP and uTP share it)
}

// DiscoverySink receives what a [Discovery] finds for one joined topic. The
// engine gives each (discovery, topic) join its own sink. Its methods are safe
// for concurrent use, never block for long, and ignore calls made after the
// topic was left or the discovery closed.
type DiscoverySink interface {
	// Peer reports a found peer. Peer.Topic must equal the joined topic.
	Peer(p Peer)
	// Flushed reports that the topic has been fully announced (or, for a
	// lookup-only join, that the first lookup round completed).
	Flushed()
	// Updated reports that a discovery cycle for the topic completed.
	Updated()
}

// Discovery finds peers of a topic and makes this swarm findable.
//
// The contract every implementation meets (the conformance suite checks each
// rule by name):
//
//   - Name returns a short stable lowercase name ("dht", "mdns", "static").
//   - Join returns promptly (it does not wait for a network round trip longer
//     than ctx allows) and starts announcing (when req.Announce) and looking
//     up (when req.Lookup) in the background.
//   - Joining a topic that is already joined replaces the previous join: the
//     old sink receives nothing more; the new one receives Flushed again.
//   - Peers are reported only to the sink of their topic, with Peer.Topic set
//     to that topic: topics are isolated.
//   - A discovery never reports this swarm itself (announce→lookup of the
//     same swarm reports nothing).
//   - A lookup join reports every peer it finds; the same peer may be
//     reported again in later cycles (the engine deduplicates).
//   - Flushed is called once per Join, after the first complete cycle.
//   - Updated is called after every completed cycle, including the first.
//   - Leave stops announcing and looking up the topic; after Leave returns the
//     topic's sink receives nothing more. Leave of an unknown topic is a no-op.
//   - Close stops everything, releases every socket and goroutine, and no sink
//     is called after Close returns. Join after Close fails with [ErrClosed].
type Discovery interface {
	Name() string
	Join(ctx context.Context, req JoinRequest, sink DiscoverySink) error
	Leave(ctx context.Context, topic Topic) error
	Close() error
}

// Listener accepts inbound connections for a [Transport]. It is a
// [net.Listener]; Addr must report the bound port.
type Listener = net.Listener

// Transport carries byte streams between peers.
//
// The contract:
//
//   - Name returns the connection type reported in ConnInfo.Type ("tcp", "utp").
//   - Listen(ctx, host, port) binds host:port (port 0: the transport picks)
//     and returns a listener whose Addr reports the bound port. A port that is
//     taken fails with an error wrapping [ErrPortInUse].
//   - Accept on the listener returns connections dialled by peers; Close on the
//     listener makes a blocked Accept return an error promptly.
//   - Dial(ctx, peer) connects to peer.Addr(); it fails fast when nothing
//     listens there, and returns ctx.Err() (wrapped) promptly when ctx is done.
//   - Connections are [net.Conn]s whose RemoteAddr is the true peer address;
//     data arrives intact and in order; when the conn supports CloseWrite, the
//     other side reads io.EOF after it and can still write back (half-close).
type Transport interface {
	Name() string
	Listen(ctx context.Context, host string, port int) (Listener, error)
	Dial(ctx context.Context, peer Peer) (net.Conn, error)
}

// PeerValidator decides whether a discovered peer may be dialled.
//
// The contract:
//
//   - Validate is consulted for every discovered peer before any dial.
//   - It returns nil to accept; any error rejects the peer, and the error is
//     the reason reported in the peer-rejected event. A rejected peer is never
//     dialled.
//   - It is fast, has no side effects on the swarm, and is safe for concurrent
//     use. The engine contains a panic as a rejection.
type PeerValidator interface {
	Name() string
	Validate(ctx context.Context, p Peer) error
}

// Ordered is implemented by transports and discoveries that care about
// their position among plugins of the same kind (lower first): the engine
// sorts them by (Order, Name); plugins without Order count as 0. Validators
// are not sorted: they run in the order given to [WithValidators].
type Ordered interface {
	Order() int
}

// ValidatorFunc adapts a function to a [PeerValidator] named "func".
type ValidatorFunc func(Peer) error

// Name implements PeerValidator.
func (f ValidatorFunc) Name() string { return "func" }

// Validate implements PeerValidator.
func (f ValidatorFunc) Validate(_ context.Context, p Peer) error { return f(p) }

// PacketConnUser is implemented by plugins that use the swarm's shared UDP
// socket: one UDP socket per swarm, bound on the listening port, so that the
// NAT mapping made by DHT traffic is the one uTP and hole punching use.
//
// When any plugin implements it, [Swarm.Start] binds that socket and
// demultiplexes it by packet shape: discoveries receive the side that gets
// bencoded dictionaries (KRPC, first byte 'd'); transports receive the side
// that gets every other packet. UsePacketConn is called once, during Start,
// after the transports' Listen on the same port number (so a transport's
// Listen must accept being called before it has the socket) and before any
// Join or Dial. The plugin reads from and writes to pc
// but never closes the socket: the swarm closes it after closing the plugins.
type PacketConnUser interface {
	UsePacketConn(pc net.PacketConn) error
}

// Starter is implemented by plugins that open their sockets or files, or
// start goroutines, only when the swarm starts, so that building a plugin
// opens nothing (the mDNS discovery opens its multicast sockets in Start).
//
// [Swarm.Start] calls Start once on every plugin that implements it
// (transports, then discoveries, then validators), in the goroutine that
// called Swarm.Start (so a caller that locked its thread into a network
// namespace gets the sockets there), before any listener is bound and
// before any Join or Dial. When a Start fails, Swarm.Start returns its error;
// the plugins started so far stay started and are closed by [Swarm.Close]
// (a later Swarm.Start starts only the others). A plugin started already,
// by its owner, returns nil from another Start. Until Start, a discovery's
// Join fails with an error wrapping [ErrInvalidOption] that says so; Close
// of a plugin that was never started releases everything.
type Starter interface {
	Start(ctx context.Context) error
}

// Proxy is implemented by plugins that stand in for an implementation
// running elsewhere: the adapters of framework/remote, whose plugin runs in
// another process. Such an adapter has the methods of every optional
// interface it can forward across the process boundary, but learns only at
// run time (from its plugin's handshake) which of them the implementation
// behind it has. Forwards reports whether it does for the optional
// interface iface (reflect.TypeFor[HolePuncher]() and so on); the engine
// uses an optional interface of a Proxy only when Forwards says yes.
type Proxy interface {
	Forwards(iface reflect.Type) bool
}

// As returns plugin p as the optional interface T and whether p implements
// it: p must have T's methods and, when p is a [Proxy], forward T. The
// engine looks for every optional interface (Starter, PacketConnUser,
// HolePuncher, ConnectivityReporter, DialFilter, Drainer, Refresher,
// Ordered) through As.
func As[T any](p any) (T, bool) {
	t, ok := p.(T)
	if !ok {
		return t, false
	}
	if px, ok := p.(Proxy); ok && !px.Forwards(reflect.TypeFor[T]()) {
		var zero T
		return zero, false
	}
	return t, true
}

// usesPacketConn reports whether plugin p needs the shared UDP socket.
func usesPacketConn(p any) bool {
	_, ok := As[PacketConnUser](p)
	return ok
}

// DialFilter is implemented by transports that want to be tried only for
// some peers when the swarm has other transports too. The dial order is
// "TCP at once; when the peer has a referrer, also hole punch at once and
// try uTP when TCP failed or after the connection attempt delay" (see
// [WithConnectionAttemptDelay]): the uTP transport wants only peers with a
// referrer.
// A transport without DialFilter is tried for every peer; when no transport
// wants a peer, every transport is tried.
type DialFilter interface {
	WantsPeer(p Peer) bool
}

// HolePuncher is implemented by discoveries that can open a path through
// NATs to a peer they found: the DHT asks the peer's referrer to relay a
// notice so that both sides send UDP towards each other. When a peer has a
// referrer and a UDP transport (one that implements PacketConnUser) will
// dial it, the engine calls HolePunch as the dial starts, in parallel with
// the transports' dials. HolePunch returns nil once the referrer confirmed
// that the peer was told; it honours ctx.
type HolePuncher interface {
	HolePunch(ctx context.Context, p Peer) error
}

// Connectivity says how reachable a swarm is: hyperswarm v2's
// connectivity() and holepunchable().
type Connectivity struct {
	Bound        bool     // listeners (and the shared UDP socket) are bound
	Bootstrapped bool     // the DHT routing table holds nodes
	PublicAddrs  []string // our address as DHT nodes saw it (ip:port), distinct
	Reporters    int      // how many DHT nodes reported it
	// Consistent: at least two nodes reported and all saw the same ip:port,
	// so our NAT (if any) keeps one mapping for every destination.
	Consistent bool
	// Holepunchable: bootstrapped with a consistent mapping — UDP hole
	// punching can work. A NAT that maps each destination to a new port
	// (symmetric) makes it false.
	Holepunchable bool
}

// ConnectivityReporter is implemented by discoveries that learn how others
// see this swarm (the DHT).
type ConnectivityReporter interface {
	Connectivity() Connectivity
}

// Drainer is implemented by user-space transports (uTP) whose closed
// connections still deliver their last data in the background. At Close the
// swarm calls Drain, bounded by DefaultDrainTimeout, after closing every
// connection and before closing the shared UDP socket.
type Drainer interface {
	Drain(ctx context.Context) error
}
