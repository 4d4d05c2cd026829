package dht_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/impair"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// A lab scenario: the testnet's live nodes answer over a path of round-trip
// time rtt losing loss of the packets, and a fraction dead of its nodes
// never answer.
type labScenario struct {
	name string
	rtt  time.Duration
	loss float64
	dead float64
}

// labScenarios run in one benchmark run, the unimpaired baseline first.
var labScenarios = []labScenario{
	{"baseline", 0, 0, 0},
	{"rtt80-loss1-dead10", 80 * time.Millisecond, 0.01, 0.10},
	{"rtt80-loss1-dead30", 80 * time.Millisecond, 0.01, 0.30},
}

const labNodes = 64

func labTestnet(b *testing.B, sc labScenario) *dhttest.Testnet {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := dhttest.Options{QueryTimeout: 500 * time.Millisecond, Dead: sc.dead, Seed: 1}
	if sc.rtt > 0 {
		opts.Impair = &impair.Config{Delay: sc.rtt, Loss: sc.loss}
	}
	tn, err := dhttest.Start(ctx, labNodes, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tn.Close() })
	return tn
}

// labConfig is what a node under test runs: the production query timing
// (the adaptive QueryTimeout, DefaultQueryTries; not the testnet's), on the
// testnet's bootstrap nodes.
func labConfig(tn *dhttest.Testnet, cfg dht.Config) dht.Config {
	if cfg.QueryTries == 0 {
		cfg.QueryTries = dht.DefaultQueryTries
	}
	c := tn.Config(cfg)
	c.QueryTimeout = cfg.QueryTimeout
	return c
}

func labSwarm(b *testing.B, tn *dhttest.Testnet) *framework.Swarm {
	b.Helper()
	p, err := dht.New(labConfig(tn, dht.Config{Ephemeral: dht.Bool(true)}))
	if err != nil {
		b.Fatal(err)
	}
	sw, err := framework.New(framework.WithTransport(tcp.New()), framework.WithDiscovery(p),
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		b.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return sw
}

// waitConnection waits for sub's first ConnectionEvent; false when stop
// is closed first.
func waitConnection(sub *framework.Subscription, stop <-chan struct{}) bool {
	for {
		select {
		case ev := <-sub.C():
			if _, ok := ev.(*framework.ConnectionEvent); ok {
				return true
			}
		case <-stop:
			return false
		}
	}
}

func reportPercentiles(b *testing.B, ds []time.Duration, unit string) {
	if len(ds) == 0 {
		return
	}
	b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, unit+"-p50-ms")
	b.ReportMetric(float64(percentile(ds, 0.9).Microseconds())/1000, unit+"-p90-ms")
}

// BenchmarkImpairedJoin measures, per lab scenario, on a 64-node testnet:
//
//   - lookup: a fresh (cold, read-only) node joins a topic that one peer
//     announced, until that peer is found;
//   - join→conn: a fresh swarm (DHT plugin, TCP) joins the topic a swarm
//     announced, until its first ConnectionEvent.
//
// Each iteration is one sample of each. Run with -benchtime 20x.
func BenchmarkImpairedJoin(b *testing.B) {
	for _, sc := range labScenarios {
		b.Run(sc.name, func(b *testing.B) {
			tn := labTestnet(b, sc)
			ctx := context.Background()
			ann := newDisc(b, tn, labConfig(tn, dht.Config{Ephemeral: dht.Bool(false)}))
			server := labSwarm(b, tn)
			defer server.Close()
			var lookups, conns []time.Duration
			failed := 0
			b.ResetTimer()
			for i := range b.N {
				tp := topic(fmt.Sprintf("%s/%d", b.Name(), i))
				sa := join(b, ann, framework.JoinRequest{Topic: tp, Announce: true, Port: 42001})
				waitSignal(b, sa.flushCh, time.Minute, "announce")
				if err := server.Join(ctx, tp, framework.Announce(true), framework.Lookup(false)); err != nil {
					b.Fatal(err)
				}
				if err := server.Flushed(ctx, tp); err != nil {
					b.Fatal(err)
				}

				look := newDisc(b, tn, labConfig(tn, dht.Config{Ephemeral: dht.Bool(true), FastRelookups: []time.Duration{}}))
				s := newSink()
				start := time.Now()
				if err := look.Join(ctx, framework.JoinRequest{Topic: tp, Lookup: true}, s); err != nil {
					b.Fatal(err)
				}
				waitPeer(b, s, 42001, time.Minute)
				lookups = append(lookups, time.Since(start))
				look.Close()

				client := labSwarm(b, tn)
				sub := client.Subscribe()
				start = time.Now()
				if err := client.Join(ctx, tp); err != nil {
					b.Fatal(err)
				}
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				if waitConnection(sub, wctx.Done()) {
					conns = append(conns, time.Since(start))
				} else {
					failed++
				}
				cancel()
				sub.Close()
				client.Close()
				server.Leave(ctx, tp)
				ann.Leave(ctx, tp)
			}
			b.StopTimer()
			reportPercentiles(b, lookups, "lookup")
			reportPercentiles(b, conns, "join-conn")
			if sc.rtt > 0 && len(conns) > 0 {
				b.ReportMetric(float64(percentile(conns, 0.5))/float64(sc.rtt), "join-conn-p50-RTTs")
			}
			if failed > 0 {
				b.Errorf("%d of %d joins got no connection within 30 s", failed, b.N)
			}
		})
	}
}

// BenchmarkSimultaneousJoins: per lab scenario, 50 pairs of fresh
// swarms join (each pair its own topic) at the same instant on a 64-node
// testnet (announce and lookup, both sides); a pair counts from its join to the first ConnectionEvent on
// either side (the connection is both sides'). Reports the pairs connected
// within 2 s (goal at RTT 80 ms / 1 % loss: 50 of 50) and p50/p90.
func BenchmarkSimultaneousJoins(b *testing.B) {
	for _, sc := range labScenarios {
		b.Run(sc.name, func(b *testing.B) {
			tn := labTestnet(b, sc)
			var all []time.Duration
			within, total := 0, 0
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				res := simultaneousSwarmPairs(b, tn, 50, 30*time.Second)
				b.StartTimer()
				for _, r := range res {
					total++
					if r >= 0 {
						all = append(all, r)
						if r <= 2*time.Second {
							within++
						}
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(within)/float64(b.N), "pairs-within-2s/50")
			reportPercentiles(b, all, "pair")
			if len(all) != total {
				b.Errorf("%d of %d pairs got no connection within 30 s", total-len(all), total)
			}
		})
	}
}

// simultaneousSwarmPairs starts 2×pairs swarms, makes each pair join its own
// topic at the same instant and returns, per pair, the time from the joins
// to the pair's first ConnectionEvent (-1: none within limit).
func simultaneousSwarmPairs(b *testing.B, tn *dhttest.Testnet, pairs int, limit time.Duration) []time.Duration {
	ctx := context.Background()
	sws := make([][2]*framework.Swarm, pairs)
	subs := make([][2]*framework.Subscription, pairs)
	for i := range sws {
		for k := range 2 {
			sws[i][k] = labSwarm(b, tn)
			subs[i][k] = sws[i][k].Subscribe()
		}
	}
	defer func() {
		var wg sync.WaitGroup
		for i := range sws {
			for k := range 2 {
				subs[i][k].Close()
				wg.Add(1)
				go func() { defer wg.Done(); sws[i][k].Close() }()
			}
		}
		wg.Wait()
	}()
	start := time.Now()
	for i := range sws {
		tp := topic(fmt.Sprintf("%s/pair/%d", b.Name(), i))
		for k := range 2 {
			if err := sws[i][k].Join(ctx, tp, framework.Announce(true)); err != nil {
				b.Fatal(err)
			}
		}
	}
	res := make([]time.Duration, pairs)
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var mu sync.Mutex
	done := make(chan int, 2*pairs)
	for i := range sws {
		for k := range 2 {
			go func() {
				if waitConnection(subs[i][k], wctx.Done()) {
					mu.Lock()
					if res[i] == 0 {
						res[i] = time.Since(start)
					}
					mu.Unlock()
				}
				done <- i
			}()
		}
	}
	for range 2 * pairs {
		<-done
	}
	for i := range res {
		if res[i] == 0 {
			res[i] = -1
		}
	}
	return res
}
