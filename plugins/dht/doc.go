// Package dht is the "dht" [framework.Discovery]: peers of a topic find each
// other on the BitTorrent mainline DHT (BEP 5), through
// github.com/anacrolix/dht/v2.
//
// # Protocol
//
// This section is the wire contract; another implementation that follows it
// interoperates with this one (and any BEP 5 client can find our peers).
//
// Infohash. A 32-byte topic T is looked up and announced under the 20-byte
// infohash
//
//	Infohash(T) = SHA-256("dwebswarm:topic:" ‖ T)[0:20]
//
// (the ASCII prefix without a terminator, then the 32 raw topic bytes; the
// first 20 bytes of the digest). Raw topics never appear on the DHT, and the
// prefix keeps our keys apart from torrent infohashes (SHA-1 of a bencoded
// dictionary).
//
// Peers by key. A swarm is findable by its public key K under the topic
//
//	PeerTopic(K) = SHA-256("dwebswarm peer v1" ‖ K)
//
// (framework.PeerTopic), announced and looked up like any topic, so its
// infohash is Infohash(PeerTopic(K)). The raw key never appears on the
// DHT: anyone who knows K computes the infohash and finds the swarm's
// addresses (that is the point of framework.Swarm.JoinPeer); someone who
// sees only the infohash learns neither K nor can link it to K without
// knowing K.
//
// Messages. Only standard KRPC (BEP 5) is used: ping, find_node, get_peers
// and announce_peer, with BEP 32 "want" (n4, n6) and BEP 43 "ro". Nothing of
// ours is added to the messages.
//
// Round. One discovery round of a joined topic is:
//
//  1. an iterative get_peers traversal towards the infohash (alpha 3,
//     K 8), starting from the routing table, or from the bootstrap nodes
//     when the table is empty. A query unanswered one RTO after it was
//     handed out gives its slot to the next closest node and goes on
//     through its remaining tries in the background (a soft timeout, like
//     libtorrent's; at most alpha such late queries at a time, so at most
//     2·alpha in flight); a late reply still counts — its values, its nodes,
//     its token — and the round waits for late queries before it ends. Every "values" entry of every reply is reported at
//     once as a peer (host, port) with its referrer: the address and node id
//     of the node that returned it;
//  2. when announcing, announce_peer (port = the swarm's TCP/uTP listening
//     port, implied_port 0, the token from step 1) to the K closest nodes
//     that answered with a token.
//
// A lookup-only join skips step 2; an announce-only join reports nothing.
//
// Timing. The first round starts at Join. A join that announces and looks
// up follows it at once with a lookup-only round (step 1 alone): two peers
// joining at the same moment — whose first lookups ran before either
// announce was stored — meet in the re-lookup of the later one, which runs
// after the earlier announce was stored. Extra rounds follow ≈1 s and ≈5 s
// after the join (1 s, then 4 s after the end of the previous round;
// Config.FastRelookups) as a safety net; hyperswarm v2 left such pairs
// apart until its next round. Then a round runs every 5–10 minutes, uniformly at random. A round
// in which no node answered still completes the cycle, and the next one
// follows after 1 s, 2 s, 4 s … (capped at 5 min). Each query is sent
// Config.QueryTries times, Config.QueryTimeout apart; unset, that timeout
// adapts to the round-trip times measured (see Config.QueryTimeout).
//
// Events. Flushed is reported once per Join, after the first round
// (including its announce_peer step); Updated after every round.
//
// Self. Our own announce is never reported: a value is dropped when its port
// is the port we announce and its IP is loopback, unspecified, an address of
// a local interface, Config.PublicIP, or an address that DHT nodes said they
// saw us at (the BEP 42 "ip" field of their replies, i.e. our public address
// behind NAT).
//
// Leave and expiry. Mainline has no un-announce: Leave stops the topic's
// rounds and sends "dws_unannounce" (see unannounce.go) to every node we
// announced to; dwebswarm nodes (bootstrap nodes, full swarms) drop our
// record at once, when the query comes from the record's IP. Other nodes
// answer "method unknown" and keep the record until its TTL (30 minutes on
// our nodes, typically 30 min–2 h elsewhere). Until then
// other peers may still find our address; their dials fail and their
// engines drop us as unresponsive.
//
// Ephemeral modes (Config.Ephemeral). true: a read-only node (BEP 43): every
// query carries "ro": 1, so other nodes do not add us to their routing
// tables, and we answer no query and store nothing. false: a full node that
// answers queries and stores announces. nil (the default): adaptive —
// read-only for Config.AdaptiveAfter (default 30 minutes of uptime), then a
// full node: the server is restarted on the same socket with the same node
// id and routing table, bootstraps towards its own id and pings its table so
// that nearby nodes add it. (Reachability is not probed: a node behind a NAT
// that drops unsolicited packets simply stays absent from others' tables.)
//
// Storage. A full node stores announces in a [PeerStore]: keyed by infohash
// and ip:port (two peers behind one IP are two entries), expiring after 30
// minutes, at most 500 peers per infohash and 100 000 in total (the least
// recently announced entry is evicted), at most 8 per IP per infohash (the
// IP's own least recently announced entry gives way: one host with many
// ports cannot evict the others), at most 50 returned per get_peers (a
// uniform random sample).
//
// Bounds (Config.Limits, see limits.go). A lookup takes at most 100 values
// from one reply, 500 distinct values in all and 200 from the nodes of one
// IP, 8 "nodes" and 8 "nodes6" from one reply; it sends at most 128
// queries and considers at most 1 024 candidate nodes, 4 ports of one IP.
// Per-IP caps exempt the IP literals of Config.Bootstrap (a testnet on one
// host). A hole-punch notice is accepted only from a node we announced the
// infohash to in the last 30 minutes, and probes go to one IP at most once a
// second (burst 4). Every drop is counted: [Discovery.LimitStats].
//
// Relay requests. A dialler that is not hole-punchable (its connectivity
// report: DHT nodes see it at different ports) also sends, beside its hole
// punch, a relay request ([RelayRequestMethod], same legs, payload and
// relaying limits as the hole punch; see relayreq.go) asking the announcer
// to reserve at a relay ([Node.SetOnRelayRequest], wired to the relay
// client's Demand); it then looks the topic up again a few times
// (lookup-only; one such schedule per topic per 30 s) to find the relay's
// allocation. Unknown connectivity (fewer than two reporters within 5 s)
// counts as hole-punchable: no request. No request is sent once the hole
// punch's context is done (the dial ended), nor more than one per target
// address, or per referrer IP and topic, per 30 s (RelayRequestGap;
// suppressed ones are counted). The announcer accepts one only from a node
// it announced the infohash to, at most 1 every 10 s from one IP (burst 2)
// and 1 a second in all (burst 3), and calls its handler at most once per
// infohash per 30 s (later requests are answered OK). Refusals are counted
// by reason (not announced, rate limited, no relay).
//
// Robustness. Every inbound packet passes a strict KRPC check (guard.go)
// before anacrolix decodes it: anacrolix/dht v2.23.0 panics — crashing the
// process — on a compact address shorter than 2 bytes ("ip", "values") and
// on announce_peer/put queries without arguments. BEP 44 "put" queries are
// ignored (unbounded store).
//
// Constructors. [New] returns the swarm's discovery, a [Plugin]: it opens
// nothing, and its [Node] starts on the swarm's shared UDP socket when the
// swarm starts. [ListenNode] and [ListenBootstrap] start a standalone
// [Node] on a UDP socket of their own (bootstrap nodes, testnets,
// `swarmhost dht`).
//
// Sockets and rate. The DHT runs on the swarm's UDP socket when
// Config.PacketConn is set (shared with uTP through internal/udpmux, which
// routes packets starting with 'd' to the DHT) and never closes it. Each
// node has its own send limiter (Config.SendRate, default 100 packets/s),
// not anacrolix's process-wide 25 packets/s.
//
// Bootstrap. Config.Bootstrap (host:port) defaults to the public mainline
// routers ([DefaultBootstrap]); tests and local networks pass their own,
// e.g. the nodes of a dhttest testnet or a [ListenBootstrap].
package dht
