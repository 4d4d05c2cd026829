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
// # Peers by key
//
// Every swarm has a key pair ([Swarm.PublicKey]); [Swarm.JoinPeer] keeps a
// session to one swarm, found by its key wherever it is. The key is
// turned into a topic, [PeerTopic](key) = SHA-256("dwebswarm peer v1" ||
// key), which the peer announces ([WithFindable]: by default while it
// announces any topic) and JoinPeer looks up through the same discoveries,
// queue and hole punching as any topic; the DHT sees only that topic's
// infohash (SHA-256("dwebswarm:topic:" || topic)[:20]), never the key.
// Anyone who knows the key can compute the topic and find the peer's
// addresses (that is the point); who sees only the topic or the infohash
// learns neither the key nor can link it to one without knowing the key.
// The dialler pins the key: a session for the peer topic that proves
// another key is refused in the handshake ([ErrWrongKey]).
//
// Plugins import this package; this package never imports a plugin, nor
// fx. The module root package (github.com/dwebswarm/dwebswarm-go) wires the
// default plugins; fx users build swarms with package
// github.com/dwebswarm/dwebswarm-go/swarmfx.
package framework
