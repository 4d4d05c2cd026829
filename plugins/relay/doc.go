// Package relay connects swarms that no direct or hole-punched path can
// join (a symmetric NAT on one side, address-and-port-dependent filtering
// on both): a blind relay on a public address forwards the bytes of their
// Noise session, which stays end to end between the two swarms.
//
// # Roles
//
// A relay ([Server], `swarmhost relay`) is off unless someone runs one. A
// client ([Client]) is the plugin of a swarm that wants to be reachable
// through a relay; give it to the swarm as transport and discovery
// ([Client.Options]). A dialler needs no relay plugin: it finds the relay's
// allocation on the DHT like any peer and dials it with TCP (its DHT
// plugin asks for one when it cannot hole punch, below).
//
// # When a client reserves
//
// ClientConfig.Need nil: always. With [Unpunchable] (swarmhost's default,
// --relay-when unpunchable) it reserves while the swarm's connectivity
// report says it is not hole-punchable (its NAT maps per destination), and
// while a dialler's demand lasts ([Client.Demand], ClientConfig.DemandWindow,
// 2 min): a dialler that is itself not hole-punchable cannot punch to an
// announcer behind an endpoint-independent NAT that filters by address and
// port, so its DHT plugin sends a relay request (dht.RelayRequestMethod)
// through the referrer that told it about the announcer, the same path and
// limits as a hole punch; the announcer's DHT plugin hands it to Demand
// (dht.Plugin.SetOnRelayRequest), the client reserves and the relay
// announces the allocation, and the dialler finds it in the re-lookups
// that follow its request (1 s, 2 s, 4 s, 8 s later). Need's true counts
// as a demand too (hysteresis): a reservation is given up only after a
// full DemandWindow in which neither Need nor a dialler wanted it, and
// once no relayed connection crosses it, so a connectivity report that a
// hostile reporter flips on every reply cannot make it churn. A demand
// starts a round of attempts at once only when none is held and the last
// round is at least Retry old. Unknown connectivity (fewer than two
// reporters, or not bootstrapped) counts as hole-punchable, on this side
// as on the dialler's (which then sends no relay request). A swarm with a
// relay client but no in-process DHT plugin (none, or out of process)
// cannot get requests: swarmhost then reserves always. So a
// relay carries only pairs that nothing else connects, and never races a
// punch the classes allow: the NAT lab's TestNATMatrix (cmd/swarmhost)
// connects every pair of {public, EIM, APDM} × {public, EIM, APDM} over
// its expected path with this default. Wire it so:
//
//	c, _ := relay.NewClient(relay.ClientConfig{KeyPair: kp, Relays: relays,
//		Need: relay.Unpunchable(func() framework.Connectivity { return sw.Connectivity() })})
//	dhtPlugin.SetOnRelayRequest(func([20]byte) { c.Demand() })
//
// A relay request is hostile input like a hole punch: it is parsed by the
// hole punch's parser (fuzzed), the referrer forwards it only to a peer
// that announced the infohash to it (within its hole-punch rate limits),
// and the announcer accepts it only from a node it announced the infohash
// to, at most one every 10 s from one IP (burst 2) and one a second in all
// (burst 3), and starts a demand for one infohash at most once per 30 s
// (later requests renew nothing). All it can do is keep the announcer
// reserved at one of its own relays; the relayed session is the swarm's
// Noise session, end to end, with the remote key the handshake proves.
//
// # How a connection is made (TURN-like allocations)
//
//  1. B (the client) dials the relay R's control address and runs a Noise
//     XX handshake (framework/secure) proving the reserved topic [Topic]
//     ("dwebswarm relay v1"). A pinned relay key ("KEY@HOST:PORT") is
//     checked in the handshake.
//  2. B sends RESERVE; R binds an allocation, a TCP port P_B on its own
//     host, and answers RESERVED(P_B).
//  3. For every topic B's swarm announces, B sends ANNOUNCE(infohash),
//     the topic's DHT infohash ([dht.Infohash]). R announces that
//     infohash on its DHT node with port P_B (mainline stores the sender's
//     IP, R's, with the port given). B keeps announcing its own address
//     through its other discoveries too.
//  4. A dialler A looks the topic up, finds R:P_B (and B's own address,
//     which it tries too), and dials R:P_B with TCP.
//  5. R sends INCOMING(token, A's address) to B. B opens a new TCP
//     connection to R's control address and writes the connect-back
//     magic and the token. R splices A's connection and B's (in the
//     kernel between TCP sockets), counting bytes against B's limits.
//  6. B's swarm accepts the connect-back as an inbound connection of the
//     "relay" transport and runs the Noise responder over it; A's swarm
//     runs the initiator. B's msg2 carries the relayed flag (see
//     secure.Config.Relayed); both sides report the session relayed
//     (framework.Conn.Relayed, Conn.Path() == "relayed"; B's Conn.Type()
//     is "relay", A's "tcp").
//
// Connect-back instead of streams multiplexed inside B's reservation: an
// outbound TCP connection from B to R works behind every NAT that lets the
// reservation through (a symmetric NAT included), and it lets R move bytes
// without decrypting or re-encrypting anything: a relay forwards at about
// a direct session's rate (BenchmarkRelayVsDirect).
//
// # Wire format
//
// Control messages, inside the reservation's Noise session, both ways:
//
//	type(1) length(2, big endian, ≤ 512) body(length)
//
//	1 RESERVE      C→R  version(1) = 1
//	2 RESERVED     R→C  port(2)
//	3 ANNOUNCE     C→R  infohash(20)
//	4 UNANNOUNCE   C→R  infohash(20)
//	5 ANNOUNCED    R→C  infohash(20) status(1): 0 ok, 1 limit, 2 error
//	6 REFUSED      R→C  reason (UTF-8); R then ends the session
//	7 INCOMING     R→C  token(16) dialler address (UTF-8 host:port)
//
// A connect-back, in clear on a new TCP connection to the control
// address, followed by the relayed bytes both ways:
//
//	0xFF 'D' 'R' 'C'  token(16)
//
// (A Noise msg1 starts with its 2-byte length, about 80, so the control
// port tells the two apart by the first byte.) A token is 16 random bytes,
// single use, valid 15 s; a connect-back with an unknown token is closed.
//
// # What the relay learns (security model)
//
// The relay learns: the client's public key (it authenticates the
// reservation), the infohashes the client announces (never the topics:
// an infohash is a hash of the topic), the addresses of both ends, when
// they connect and how many bytes they move. It never sees plaintext: the
// session between A and B is Noise XX end to end, so the relay sees only
// ciphertext, and XX encrypts both static keys, so the relay does not
// learn A's key, nor B's from the relayed session (it knows B's from the
// reservation). It cannot forge, replay or read the relayed session, nor
// forge or strip the relayed flag; it can drop or delay it (as any router
// can). An on-path attacker between B and R sees the token of a
// connect-back in clear; claiming it gets only the session's ciphertext,
// which it cannot use (a denial of service, which being on path allows
// anyway).
//
// # Limits
//
// [Limits] bound, per relay, reservations held (Clients), relayed
// connections open (Sessions), and per client: relayed connections open
// (SessionsPerClient), bytes relayed for a reservation (BytesPerClient:
// the connection that crosses it is cut, later ones refused), a relayed
// connection's lifetime (SessionDuration, on the relay's clock) and
// infohashes announced (InfohashesPerClient). Each hit counts in [Stats]
// and calls ServerConfig.OnLimit; swarmhost exports them as
// dwebswarm_relay_limit_hits_total{limit}.
//
// # Metrics
//
// [Server.Stats] and [Client.Stats] are the counters; swarmhost (`swarmhost
// relay --metrics`, and a daemon's /metrics when it relays or reserves)
// exports them as dwebswarm_relay_clients, dwebswarm_relay_sessions,
// dwebswarm_relay_sessions_total, dwebswarm_relay_bytes_total,
// dwebswarm_relay_announced_infohashes, dwebswarm_relay_limit_hits_total{limit}
// (the server's) and dwebswarm_relay_client_reserved,
// dwebswarm_relay_client_reservations_total,
// dwebswarm_relay_client_connections_total,
// dwebswarm_relay_client_connect_backs_lost_total (the client's). Bytes are
// counted per splice chunk (up to 1 MiB) and at the end of a direction, so
// a quiet session's bytes show when it ends.
//
// # Failure and upgrade
//
// The reservation session has the secure package's keep-alive (5 s) and
// timeout (15 s): a relay that dies silently is noticed within 15 s, a
// relay that closes at once; the client then reserves at the next relay
// (the configured ones first, in order, then those [DHTFinder] finds under
// the relay topic's infohash) and announces its infohashes there again.
//
// Direct paths are preferred by construction: B keeps announcing its own
// address, and the dialler dials every address it finds (TCP first, the
// hole punch beside it); the engine keeps one session per remote key. With
// Need = [Unpunchable] a hole-punchable B has no allocation to race with
// unless a dialler that cannot punch asked for one in the last
// DemandWindow (or a relayed connection is still open).
// When a relayed session is open first, the engine's rule is that the
// open session stays: a swarm does not dial a key it has a session with,
// and a later connection to the same key is a duplicate; the session is
// not moved to a direct path (no upgrade). An application that wants the direct path can close
// a relayed connection (Conn.Path() == "relayed") and let the swarm
// reconnect, which tries the direct addresses again.
package relay
