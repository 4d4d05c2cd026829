// Package conformance checks that a plugin honours the swarm's contracts:
// the Transport, Discovery and PeerValidator rules of framework/interfaces.go
// and the semantics they serve (docs/semantics.md). Each rule is a
// named [Check]; a plugin author runs them all and gets a pass or a fail,
// with the reason, per rule.
//
// # Using it from a test
//
// Give the suite a factory that makes fresh instances of your plugin. Every
// check calls it anew, so checks never share state:
//
//	func TestConformance(t *testing.T) {
//		conformance.RunTransportSuite(t, func(*conformance.T) (framework.Transport, error) {
//			return mytransport.New(), nil
//		})
//	}
//
// A transport is exercised on loopback (127.0.0.1): it listens on port 0
// and dials its own listeners.
//
// A validator factory also says what the validator decides, so that the
// suite can check the validator and the engine around it (the validator
// runs inside a real framework.Swarm whose transport records dials and
// never sends a packet):
//
//	conformance.RunValidatorSuite(t, func(*conformance.T) (conformance.ValidatorCase, error) {
//		v, err := myvalidator.New("10.0.0.0/8")
//		return conformance.ValidatorCase{
//			Validator: v,
//			Accept:    []framework.Peer{{Host: "192.0.2.1", Port: 1}, {Host: "192.0.2.2", Port: 1}},
//			Reject:    []framework.Peer{{Host: "10.1.2.3", Port: 1}},
//		}, err
//	})
//
// A discovery needs company: the factory returns a [DiscoveryEnv], the
// shared network of one check (a DHT testnet, a LAN, a list), whose New
// makes instances that find each other. Release the environment with
// t.Cleanup; the suite closes the instances. See package
// conformance/builtin for the environments of the built-ins: a fresh
// loopback dhttest testnet per check for "dht", and for "static", which
// cannot announce, a shared list implementing [Publisher] that plays the
// operator's configuration file. An environment can relax the time bounds
// with a Bounds method ([DiscoveryBounds]).
//
// # Known failures
//
// A plugin that breaks a rule on purpose or while a fix is pending lists the
// check with [ExpectFail]: the subtest then passes while the check fails,
// and fails as soon as the check passes, so the list stays exact.
//
//	conformance.RunDiscoverySuite(t, env, conformance.ExpectFail(
//		conformance.CheckLeaveStopsAnnounce, "mainline DHT has no un-announce"))
//
// # Outside go test
//
// [TransportChecks], [DiscoveryChecks] and [ValidatorChecks] return the
// checks as data; [Run] and [RunAll] run them with a minimal [T] and return
// [Result]s (JSON-ready), which is what `swarmhost conformance` prints:
//
//	for _, r := range conformance.RunAll(ctx, conformance.TransportChecks(f), time.Minute) {
//		fmt.Println(r) // PASS listen_dial_round_trip (3ms) / FAIL name (1ms): reason
//	}
//
// The factories are the only place an implementation enters, so the same
// checks run unchanged against an out-of-process plugin: its factory
// starts the plugin binary and returns the host-side adapter, and stops
// the plugin in t.Cleanup.
//
// # Writing checks
//
// [T] is a small testing.T: Errorf and Logf from any goroutine, Fatalf and
// FailNow only from the check's goroutine, Cleanup, and Context, which
// every wait must respect (checks are bounded by it; a check still running
// 10 s after its deadline is reported as failed and abandoned).
package conformance
