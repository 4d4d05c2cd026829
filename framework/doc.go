// Package framework is the host of dwebswarm-go: the public types, the three
// plugin interfaces ([Discovery], [Transport], [PeerValidator]), the swarm
// engine ([Swarm]) and its fx wiring ([Module]).
//
// A swarm finds peers interested in the same 32-byte [Topic] through its
// discoveries, filters them through its validators, queues them by priority
// and dials them through its transports. The engine encodes the dwebswarm v3 /
// hyperswarm v2 semantics: join and leave, the peer queue (priorities, requeue
// schedule, forget timers, ban and backoff), connection limits,
// deduplication, multiplexing and events.
//
// Plugins import this package; this package never imports a plugin. The
// module root package (github.com/dwebswarm/dwebswarm-go) wires the default
// plugins for users who do not use fx.
package framework
