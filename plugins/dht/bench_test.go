package dht_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

func startTestnet(b *testing.B, n int) *dhttest.Testnet {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	tn, err := dhttest.Start(ctx, n, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d-node testnet up in %v", n, time.Since(start))
	b.Cleanup(func() { tn.Close() })
	return tn
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
	return ds[int(float64(len(ds)-1)*p)]
}

// lookupBench: one peer announces; a warm lookup-only node joins, waits for
// the peer (latency) and for the end of the round (messages), and leaves.
func lookupBench(b *testing.B, n int) {
	tn := startTestnet(b, n)
	ann := newDisc(b, tn, dht.Config{Ephemeral: dht.Bool(false)})
	tp := topic(b.Name())
	sa := join(b, ann, framework.JoinRequest{Topic: tp, Announce: true, Port: 42001})
	waitSignal(b, sa.flushCh, 30*time.Second, "announce")
	look := newDisc(b, tn, dht.Config{FastRelookups: []time.Duration{}})
	// Warm the routing table with one unrelated round.
	sw := join(b, look, framework.JoinRequest{Topic: topic("warm-up"), Lookup: true})
	waitSignal(b, sw.flushCh, 30*time.Second, "warm-up")
	look.Leave(context.Background(), topic("warm-up"))

	var lat []time.Duration
	var msgs uint64
	b.ResetTimer()
	for range b.N {
		q0 := look.Stats().Queries
		s := newSink()
		start := time.Now()
		if err := look.Join(context.Background(), framework.JoinRequest{Topic: tp, Lookup: true}, s); err != nil {
			b.Fatal(err)
		}
		waitPeer(b, s, 42001, 30*time.Second)
		lat = append(lat, time.Since(start))
		waitSignal(b, s.flushCh, 30*time.Second, "round")
		look.Leave(context.Background(), tp)
		msgs += look.Stats().Queries - q0
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "ms-p50-to-peer")
	b.ReportMetric(float64(percentile(lat, 0.9).Microseconds())/1000, "ms-p90-to-peer")
	b.ReportMetric(float64(msgs)/float64(b.N), "queries/lookup")
}

// BenchmarkLookup500: lookup latency and messages per lookup on a 500-node
// loopback testnet.
func BenchmarkLookup500(b *testing.B) { lookupBench(b, 500) }

// BenchmarkJoinToPeer20: join → first peer found on a 20-node testnet.
func BenchmarkJoinToPeer20(b *testing.B) { lookupBench(b, 20) }
