// Package mdns is the built-in LAN [framework.Discovery]: DNS-SD (RFC 6763)
// over multicast DNS (RFC 6762). Peers on one link find each other in about
// a millisecond, with no DHT and no internet. Found peers are reported with
// Local set (queue priority 3).
//
// pion/mdns/v2 is the responder: it answers queries for the instances this
// package registers. Queries, announcements, goodbyes and the parsing of
// responses are done here, on a socket of our own bound to port 5353.
//
// # Record format, version 1
//
// This section is the wire contract; other implementations interoperate by
// following it. Names are case-insensitive, shown in lower case.
//
// Let T be a joined topic (32 bytes), hex(T) its 64 lowercase hexadecimal
// characters, P the first 10 characters of hex(T), and ID the announcing
// swarm's random 8-byte id (chosen when the Discovery is created; hex(ID)
// is 16 characters).
//
//   - Service type: "_dws-P._tcp" (RFC 6335: 14 characters after the
//     underscore, at most 15). One service type per topic, so a browse wakes
//     only the peers of that topic. Domain: "local".
//   - Instance name: "dws-P-hex(ID)" (31 bytes), one instance per announced
//     topic. The instance FQDN is "dws-P-hex(ID)._dws-P._tcp.local.".
//   - PTR  "_dws-P._tcp.local." → instance FQDN, TTL 4500 s (shared record).
//   - SRV  instance FQDN: priority 0, weight 0, port = the swarm's listening
//     port (TCP and uTP), target "dws-P-hex(ID).local."; TTL 120 s, cache-flush.
//   - TXT  instance FQDN, TTL 120 s, cache-flush, three strings in order:
//     "v=1", "topic=hex(T)" (64 hex), "id=hex(ID)" (16 hex).
//   - A / AAAA for the SRV target: every address of the interface the
//     packet goes out on (IPv4 first); TTL 120 s, cache-flush.
//
// A receiver accepts a resolved instance (SRV + TXT + at least one usable
// address) only if: the TXT has "topic" and "id" with exactly 64 and 16 hex
// characters (either case); "v" is absent or "1" (other versions are
// ignored); the TXT topic equals the joined topic whose service type the
// instance belongs to; the id is not its own; the port is not 0. Unknown TXT
// keys are ignored; for a repeated key the first one counts (RFC 6763 §6.4).
// Responses whose UDP source port is not 5353 are ignored (RFC 6762 §6).
// Address records are filtered as "Hostile networks" says.
//
// The target host name is per topic on purpose: a browser that applies each
// address record to every instance pointing at that host (pion's does)
// would otherwise do work in the square of the number of topics. The swarm
// also answers A/AAAA queries for "dws-hex(ID).local"; queries for the
// per-topic target are not answered (its addresses travel with every
// announcement and every PTR answer).
//
// # Timing
//
//   - Announce join: an unsolicited response carrying PTR, SRV, TXT and the
//     addresses (all in the answer section) at once and again after 1 s
//     (RFC 6762 §8.3); afterwards the swarm answers queries, and an
//     announce-only join (which sends no queries) re-announces every
//     30–60 s, each announcement completing a cycle. No probing: the
//     names contain 64 random bits.
//   - Lookup join: a multicast PTR query (QM, from port 5353) at once, after
//     250 ms, 1 s and 3 s, then every 30–60 s (uniformly random). A query
//     cycle completes ResponseWindow (250 ms) after its query: Updated; the
//     first completed cycle (and, for an announce join, the first
//     announcement) gives Flushed. An announce-only join counts each
//     announcement as a cycle.
//   - Leave and Close send a goodbye (the PTR, SRV and TXT with TTL 0,
//     RFC 6762 §10.1) and stop answering. A receiver of a goodbye forgets the
//     peer, so it is reported again if it comes back.
//
// # Reports
//
// At the end of every query cycle each known peer is reported once more
// (Config.NoRereport turns it off): the swarm ignores peers it still knows,
// and this is how it picks up again a LAN peer it forgot as unresponsive.
// Between cycles, one peer is reported once per (topic, remote id) with the
// best address known for it: routable IPv4, then routable IPv6, then IPv4 link-local,
// then IPv6 link-local with the zone of the interface it was heard on
// (link-local without zone is never reported). It is reported again only
// when its port changes, when the reported address disappears from its
// address set (cache-flush), when a better kind of address appears, or after
// it was forgotten (a goodbye, or not heard of for ForgetAfter, 150 s).
//
// # Hostile networks
//
// Any host on the link can send responses. Address records (A/AAAA of an
// SRV target) are used only when the address is:
//
//   - inside one of the prefixes of the interface the packet arrived on
//     (as read when the interfaces were snapshotted), or
//   - IPv6 link-local (fe80::/10), which then gets that interface as its
//     zone (never used without a zone, e.g. when the arrival interface is
//     unknown), or
//   - equal to the packet's source address, unless that address is public
//     (a source can be spoofed; a public address off-link is never used).
//
// Never used: loopback addresses (except heard on a loopback interface,
// which only local processes can send on: IncludeLoopback), unspecified,
// multicast and broadcast addresses. So a spoofed response pointing a
// swarm at its own 127.0.0.1:7777, at another subnet or at a host on the
// internet produces no peer. Dropped records are counted ([Stats]).
//
// Flood limits ([Limits], defaults in brackets): each instance is
// accounted to the source (IP address and interface) of the packet that
// brought it into the cache. One source may hold at most
// MaxInstancesPerSource instances per service type [32]; one interface at
// most MaxInstancesPerInterface [2048]; the cache MaxInstances [4096]. When
// an interface's share or the cache is full, expired records are pruned
// (at most once a second), then the oldest instance of the source that
// holds the most gives way — unless the newcomer's source is that source,
// whose newcomer is dropped. A host flooding thousands of instances thus
// only ever pushes out its own, and a legitimate instance announced during
// the flood still resolves (measured in the lab: found 2–73 ms after its join
// during a 2 × 4 200-instance flood). Reports are bounded the same way per
// joined topic: at most MaxPeersPerSource distinct peers [16] whose
// instance came from one source, and MaxPeersPerTopic [256] in all (the
// biggest source's oldest gives way). Every refusal and eviction is
// counted ([Discovery.Stats]; swarmhost exports them as dwebswarm_mdns_*).
// swarmhost's YAML sets them under the mdns discovery's options, in
// limits: {maxInstancesPerSource, maxInstancesPerInterface, maxInstances,
// maxPeersPerSource, maxPeersPerTopic}.
//
// Left as in any mDNS: a host on the link can still overwrite another
// instance's records (cache-flush) with on-link addresses of its choice.
//
// # Interfaces and namespaces
//
// By default mDNS runs on every up, multicast-capable, non-loopback
// interface with an address; Config.Interfaces names them instead, and
// Config.IncludeLoopback adds loopback (for a loopback-only host). [New]
// only checks the Config and opens nothing; [Discovery.Start], which the
// swarm calls from Swarm.Start ([framework.Starter]), snapshots the
// interface addresses and opens the sockets in the calling thread's
// network namespace. Tests start it (or the swarm) inside an
// internal/netlab host so nothing is ever multicast on a real interface.
package mdns
