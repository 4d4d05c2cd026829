// Package forward forwards TCP services over topics on a
// [framework.Swarm]: the "services" of the swarmhost daemon.
//
// A serve service exposes a local TCP address to the peers of a topic: every
// swarm connection that asks for the topic is piped to a new TCP connection
// to that address. A connect service listens on a local address: every
// accepted connection is piped to a new swarm connection to a peer of the
// topic — one swarm connection per forwarded connection. Both directions are
// half-close aware: when one side ends its stream (EOF) the other side's
// write half is closed (CloseWrite) and the opposite direction goes on; the
// two sockets are closed once both directions ended. An error in either
// direction closes both sockets at once.
//
// # Wire format (version 2)
//
// The connecting side says it wants a forwarded stream before any data. A
// swarm connection is a session (package framework/secure) unless the
// daemon runs with --plaintext (framework.WithPlaintext); the header
// differs by mode:
//
//	connecting side → serving side, first bytes:
//	  offset 0   5 bytes  magic "DWSF2" (ASCII; the "2" is the version)
//	  offset 5   1 byte   kind
//	             0x00  session: no topic follows (6 bytes in all)
//	             0x01  plaintext: the 32-byte topic follows (38 bytes in all)
//	serving side → connecting side, 1 byte:
//	  0x00  OK: the target is connected; the raw stream follows both ways
//	  0x01  no service for this topic on this peer; the connection closes
//	  0x02  the service's target address is unreachable; the connection closes
//	  0x03  the service does not allow the dialler's key (Service.Allow); the
//	        target is not dialled and the connection closes
//
// Keys: a serve service with an allow list ([Service.Allow]) admits only
// sessions whose remote key (the static key the dialler proved in the
// handshake, framework.Conn.RemotePublicKey) is in it: any other session,
// and any plaintext connection, gets 0x03 before the target is dialled,
// so the local service never sees it. [Manager.SetAllow] replaces a
// running service's list and closes the open connections of keys it drops.
// A connect service with a pinned [Service.ServerKey] closes a session to
// any peer proving another key right after the handshake, before the
// header (the peer's service sees nothing and the local client's bytes
// are never sent to it), and tries the next peer. Both refusals are
// counted ([Metrics.Refusals], by reason) and logged with the key.
//
// Sessions: the topic is the one the dialler proved in the session's
// handshake (the session's Topic, framework/secure.Conn.Topic): the
// dialler names the peer's topic when it connects, the serving swarm
// accepts the session only for a topic it announces, and the header
// repeats nothing of it. A session must send kind 0; kind 1 on a session is
// a bad header (a header may not name a topic other than the proven one).
// A session that proved no topic (swarms built WithAllowNoTopic) gets
// 0x01. The header and everything after it travel encrypted: on the wire
// an observer sees the handshake and ciphertext only, and someone who
// knows only the topic's DHT infohash can neither be accepted by a serving
// daemon nor pass as one to a connecting daemon (see framework/secure).
//
// Plaintext (--plaintext on both ends): connections carry no proven
// topic, so the header must be kind 1 and names the topic in clear; kind 0
// is a bad header. Plaintext protects nothing: anyone on the path reads
// and rewrites the header, the topic and the data, and anyone who learns
// a daemon's address and the topic (the 32 bytes; an observer of any
// forwarded connection has them) uses its serve services.
//
// Version 1 ("DWSF1" and the topic, always in clear, from before sessions)
// is refused like any wrong magic.
//
// The serving side reads the header with a deadline (Options.HeaderTimeout,
// default 10 s) and closes, without answering, a connection whose first 5
// bytes are not the magic (it decides as soon as those 5 bytes arrived),
// whose kind is unknown or not its mode's, that ends early or that misses
// the deadline. It dials the target before it
// answers, so the connecting side knows that the stream reaches the service
// and may try another peer on 0x01, 0x02, 0x03, or a close without an answer (a
// peer that is not forwarding, or that is at its connection limit). The
// connecting side sends no data before the 0x00; after it, the bytes are the
// service's own, unframed. Unknown status bytes are failures. A future
// version changes the magic's last character.
//
// Cost per forwarded connection: one swarm dial, one header/status round trip
// and the target's dial, then two copies of the data (one per forwarding
// side); see bench_test.go for throughput and latency against a direct
// connection.
//
// # Wiring (daemon mode)
//
// A [Manager] runs many services on one swarm. Build it with [New] right
// after the swarm started and before any Join, so that it sees every
// PeerEvent. It consumes the swarm's events through its own
// [framework.Subscription] (no connection handler is needed, and none may
// read the swarm's connections):
//
//   - every inbound connection (Client() false) belongs to the manager: it
//     reads the header and routes the connection to the serve service of its
//     topic, or closes it. Do not also consume inbound connections elsewhere.
//   - client connections are the manager's only when it dialled them itself
//     ([Manager.Dial], used by connect services); any other client
//     connection is left alone.
//   - every PeerEvent adds the peer to the topic's candidates of connect
//     services (round robin, peers that failed in the last 30 s last).
//
// The daemon should therefore build its swarm with
// framework.WithMaxClientSockets(-1) — the queue never dials on its own, so
// no idle connection is opened that nobody reads; the manager dials with
// [framework.Swarm.Connect], which that setting does not restrict — and with
// framework.WithMaxPeers at least the number of concurrent forwarded
// connections it should carry (each one is a swarm connection; inbound ones
// beyond the limit are refused and the connecting side sees a close without
// an answer), and handshake limits (framework.WithHandshakeLimits) that let
// that many sessions from one peer handshake at once. Join connect topics with Lookup(true) (to find peers) and serve
// topics with Announce(true), Lookup(false).
//
// Reload: [Manager.Add] and [Manager.Remove] change one service without
// touching the others' open connections; Remove closes only the removed
// service's connections. [Manager.Close] stops everything and waits.
// Counters per service name ([Metrics]) survive a Remove and re-Add.
package forward
