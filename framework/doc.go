// Package framework is the host of dwebswarm-go: the public types, the three
// plugin interfaces ([Discovery], [Transport], [PeerValidator]), the swarm
// engine ([Swarm]).
//
// A swarm finds peers interested in the same 32-byte [Topic] through its
// discoveries, filters them through its validators, queues them by priority
// and dials them through its transports. The engine encodes the dwebswarm v3 /
// hyperswarm v2 semantics: join and leave, the peer queue (priorities, requeue
// schedule, forget timers, ban and backoff), connection limits,
// deduplication, multiplexing and events.
//
// Plugins import this package; this package never imports a plugin, nor
// fx. The module root package (github.com/dwebswarm/dwebswarm-go) wires the
// default plugins; fx users build swarms with package
// github.com/dwebswarm/dwebswarm-go/swarmfx.
package framework
