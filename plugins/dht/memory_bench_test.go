package dht_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// goMemory is the live heap and the goroutine stacks after GC, and the
// number of goroutines.
func goMemory() (heap, stacks uint64, goroutines int) {
	for range 8 { // each GC at most halves an idle goroutine's stack
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine()
}

// settle waits, at most 30 s, until the number of goroutines has not
// changed for a second: the swarms' DHTs are at rest (the re-lookup and
// the fast re-lookups of each join, 1 s and 4 s after it, and the table
// maintainer's first bootstrap have ended), so that the figure is the
// memory a swarm keeps, not that of lookups in flight, which a loaded
// machine makes last longer.
func settle() {
	deadline := time.Now().Add(30 * time.Second)
	last, since := runtime.NumGoroutine(), time.Now()
	for time.Now().Before(deadline) && time.Since(since) < time.Second {
		time.Sleep(100 * time.Millisecond)
		if g := runtime.NumGoroutine(); g != last {
			last, since = g, time.Now()
		}
	}
}

// memorySwarms is how many swarms BenchmarkSwarmMemory starts.
const memorySwarms = 100

// BenchmarkSwarmMemory: memorySwarms swarms (TCP transport, the DHT plugin
// with its defaults: adaptive mode, on the swarm's UDP socket) on a
// 64-node loopback testnet each join a topic of their own (announce and
// lookup) and wait for its first round, then until their DHTs are at rest
// (see settle); then the live heap plus goroutine stacks after GC, and the
// goroutines, per swarm: KiB/swarm (with the DHT)
// against KiB/swarm-nodht (the same swarms with no discovery; they join
// nothing). KiB-left/swarm is what stays once the swarms are closed (the
// testnet's share: the peers they announced, stored by its nodes, minus
// what their Leave un-announced; process-wide caches), and KiB/swarm-own
// is KiB/swarm less that: what the swarm itself holds. Kernel socket buffers are not counted (not Go memory). Run
// with -benchtime 1x.
func BenchmarkSwarmMemory(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tn, err := dhttest.Start(ctx, 64, dhttest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tn.Close()
	type perSwarm struct{ heap, stacks, goroutines, left float64 }
	measure := func(withDHT bool) perSwarm {
		h0, s0, g0 := goMemory()
		var swarms []*framework.Swarm
		closed := false
		defer func() {
			if !closed {
				for _, sw := range swarms {
					sw.Close()
				}
			}
		}()
		for i := range memorySwarms {
			opts := []framework.Option{framework.WithTransport(tcp.New()),
				framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0)}
			if withDHT {
				p, err := dht.New(tn.Config(dht.Config{}))
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, framework.WithDiscovery(p))
			}
			sw, err := framework.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			swarms = append(swarms, sw)
			if err := sw.Start(ctx); err != nil {
				b.Fatal(err)
			}
			if withDHT {
				tp := framework.TopicFromString(fmt.Sprintf("memory %d %s", i, b.Name()))
				if err := sw.Join(ctx, tp); err != nil {
					b.Fatal(err)
				}
				if err := sw.Flushed(ctx, tp); err != nil {
					b.Fatal(err)
				}
			}
		}
		settle()
		h, s, g := goMemory()
		// what the swarms leave behind once closed: the testnet's share
		// (the peers they announced, stored by the testnet's nodes) and
		// process-wide caches
		closed = true
		for _, sw := range swarms {
			sw.Close()
		}
		swarms = nil // or they stay reachable
		settle()
		hc, sc, _ := goMemory()
		return perSwarm{
			heap:       (float64(h) - float64(h0)) / memorySwarms / 1024,
			stacks:     (float64(s) - float64(s0)) / memorySwarms / 1024,
			goroutines: float64(g-g0) / memorySwarms,
			left:       (float64(hc+sc) - float64(h0+s0)) / memorySwarms / 1024,
		}
	}
	for range b.N {
		m := measure(true)
		m0 := measure(false)
		b.ReportMetric(m.heap+m.stacks, "KiB/swarm")
		b.ReportMetric(m.heap+m.stacks-m.left, "KiB/swarm-own")
		b.ReportMetric(m.left, "KiB-left/swarm")
		b.ReportMetric(m.stacks, "KiB-stacks/swarm")
		b.ReportMetric(m.goroutines, "goroutines/swarm")
		b.ReportMetric(m0.heap+m0.stacks, "KiB/swarm-nodht")
		b.ReportMetric(m0.goroutines, "goroutines/swarm-nodht")
	}
}
