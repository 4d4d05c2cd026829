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
// The swarm consults its validators in order and the first rejection wins.
// Every validator here implements [framework.Ordered]: its Config.Order sets
// its place in the chain (fx value groups arrive in random order; the engine
// sorts by Order, lower first). The defaults put the cheap, definitive
// refusals first and the rate limit last, so that peers refused anyway do not
// spend a host's tokens:
//
//	banlist 10, cidr 20, dht-private 30, ratelimit 100
//
// Without fx, pass them to framework.WithValidators in the order wanted, or
// combine them into one validator with [Chain].
//
// # fx
//
// Each validator has a Module that reads its Config from the graph and
// provides it into the "validators" group:
//
//	fx.New(
//		dwebswarm.Module,
//		fx.Supply(validators.CIDRConfig{Deny: []string{"10.0.0.0/8"}}),
//		validators.CIDRModule,
//		fx.Supply(validators.BanListConfig{Path: "/var/lib/dwebswarm/bans"}),
//		validators.BanListModule,
//	)
//
// Every validator passes the conformance suite (package conformance); see
// validators_conformance_test.go.
package validators
