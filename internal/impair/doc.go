// Package impair is a user-space network impairment lab: a wrapping
// net.PacketConn ([Wrap]) that applies, to what is written to it, a
// one-way delay, jitter, loss, reordering, duplication and a bandwidth cap
// with a bounded tail-drop queue. It needs no privileges, no build tags and
// no kernel support (this machine's kernel has no netem), so tests and
// benchmarks on loopback use it on any platform.
//
// The design follows quic-go's test proxy (integrationtests/tools/proxy):
// every packet's fate is decided when it is written, and a single goroutine
// per Conn sends the held packets in due-time order. Differences: the
// decisions come from a seeded RNG (the same seed, writes and clock give
// the same fates, so a scenario is reproducible), the clock is injectable
// (tests use a fake clock and never race the real one), and everything is
// bounded (Config.QueueBytes for the rate cap, Config.MaxPending for the
// packets held).
//
// # Impairing a path
//
// A Conn impairs one direction: what its owner sends. For a symmetric path
// of round-trip time R, wrap both ends with Delay R/2 (and half the loss
// each, roughly), or wrap only the answering end with Delay R, as the DHT
// lab does for its testnet nodes (queries from the node under test then see
// an RTT of R; see dhttest.Options.Impair).
//
//	pc, _ := net.ListenPacket("udp4", "127.0.0.1:0")
//	c, _ := impair.Wrap(pc, impair.Config{
//		Delay:  40 * time.Millisecond, // one way
//		Jitter: 5 * time.Millisecond,
//		Loss:   0.01,
//		Rate:   20e6 / 8, // 20 Mbit/s
//	}, impair.Options{Seed: 1})
//	defer c.Close()
//
// A dead or vanished node is c.SetConfig(impair.Config{Loss: 1}): it still
// reads, and nothing it sends arrives.
//
// # Running a scenario
//
// The DHT scenarios (RTT 80 ms, 1 % loss, 10–30 % dead nodes, against an
// unimpaired baseline in the same run) are benchmarks of plugins/dht:
//
//	go test -run '^$' -bench 'ImpairedJoin|SimultaneousJoins' -benchtime 10x ./plugins/dht/
//
// The README's "Real networks" section lists the figures and what each one
// measures.
package impair
