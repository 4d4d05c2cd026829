// Package validators has the built-in [framework.PeerValidator]s:
//
//   - [CIDR] ("cidr"): an allow/deny list of IP prefixes.
//   - [DHTPrivate] ("dht-private"): refuses loopback, private, link-local and
//     other internal addresses that arrive from the DHT — a classic way to aim
//     a swarm at someone's internal network — while allowing them from the
//     LAN and from static configuration. Off by default (the seed accepts
//     every peer, and loopback testnets must keep working); the example
//     daemon configuration for public use turns it on.
//   - [RateLimit] ("ratelimit"): a per-host token bucket on admissions.
//   - [BanList] ("banlist"): banned hosts, prefixes and addresses, kept in a
//     file so that bans survive restarts.
//
// # Chaining
//
// The swarm consults its validators in the order given to
// framework.WithValidators, and the first rejection wins. Put the cheap,
// definitive refusals first and the rate limit last, so that peers refused
// anyway do not spend a host's tokens:
//
//	framework.WithValidators(bans, cidr, dhtPrivate, rateLimit)
//
// Under fx, package swarmfx provides each validator (swarmfx.CIDR,
// swarmfx.DHTPrivate, swarmfx.RateLimit, swarmfx.BanList) and
// swarmfx.Validators lists them in this order; this package imports no fx.
// DHTPrivate filters only where it is placed in the chain.
//
// Every validator passes the conformance suite (package conformance); see
// validators_conformance_test.go.
package validators
