package dhttest

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/impair"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// heapAndStacks is the live heap plus goroutine stacks after a GC.
func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// benchSink records what a join reports.
type benchSink struct {
	mu     sync.Mutex
	peer   chan struct{} // closed at the first peer
	flush  chan struct{} // closed at Flushed
	gotOne bool
	done   bool
}

func newBenchSink() *benchSink {
	return &benchSink{peer: make(chan struct{}), flush: make(chan struct{})}
}

func (s *benchSink) Peer(framework.Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gotOne {
		s.gotOne = true
		close(s.peer)
	}
}

func (s *benchSink) Flushed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.done = true
		close(s.flush)
	}
}

func (s *benchSink) Updated() {}

func await(b *testing.B, ch <-chan struct{}, what string) {
	b.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		b.Fatalf("timed out waiting for %s", what)
	}
}

// scaleTopics is how many topics are announced, then each looked up once,
// per testnet size.
const scaleTopics = 10

// hopRTT is the round-trip time of the path of the looker that counts
// hops: its lookup time divided by hopRTT is the number of round trips on
// the lookup's critical path.
const hopRTT = 20 * time.Millisecond

// BenchmarkTestnetScale starts in-memory testnets (Options.Memory) of 1k,
// 2k, 5k and 10k nodes in one run and reports, per size: the start-up time
// (s-start) and the process CPU time it took (cpu-s-start: what a loaded
// machine distorts least), the slopes of log(start-up) and of log(CPU
// time) over log(N) against the smallest size (slope, cpu-slope; 1 =
// linear), the Go memory per node (live heap + goroutine stacks
// after GC, divided by N; no socket buffers exist in memory mode), and the
// cost of a lookup by a warm read-only node of a topic one node announced:
// get_peers queries sent, time to the first peer, and hops (round trips on
// the critical path: the lookup time of a second looker whose path has an
// RTT of hopRTT, divided by hopRTT). Each size runs once per b.N; run it
// with -benchtime 1x (4–8 minutes on a 2-core machine, ≈ 3 GiB).
func BenchmarkTestnetScale(b *testing.B) {
	sizes := []int{1000, 2000, 5000, 10000}
	var first struct {
		n      int
		t, cpu time.Duration
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var total, totalCPU time.Duration
			for range b.N {
				el, cpu := scaleRun(b, n)
				total += el
				totalCPU += cpu
			}
			avg, cpu := total/time.Duration(b.N), totalCPU/time.Duration(b.N)
			b.ReportMetric(avg.Seconds(), "s-start")
			b.ReportMetric(cpu.Seconds(), "cpu-s-start")
			if first.n == 0 {
				first.n, first.t, first.cpu = n, avg, cpu
			} else {
				logN := math.Log(float64(n) / float64(first.n))
				b.ReportMetric(math.Log(avg.Seconds()/first.t.Seconds())/logN, "slope")
				b.ReportMetric(math.Log(cpu.Seconds()/first.cpu.Seconds())/logN, "cpu-slope")
			}
		})
	}
}

func scaleRun(b *testing.B, n int) (time.Duration, time.Duration) {
	base := heapAndStacks()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start, cpu0 := time.Now(), cpuTime()
	tn, err := Start(ctx, n, Options{Memory: true})
	el, cpu := time.Since(start), cpuTime()-cpu0
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(cpu.Seconds(), "cpu-s-start")
	defer tn.Close()
	b.ReportMetric(float64(heapAndStacks()-base)/float64(n)/1024, "KiB/node")

	ann, err := tn.ListenNode(dht.Config{Ephemeral: dht.Bool(false), FastRelookups: []time.Duration{}})
	if err != nil {
		b.Fatal(err)
	}
	var topics []framework.Topic
	for i := range scaleTopics {
		var tp framework.Topic
		copy(tp[:], fmt.Sprintf("scale %d %d", n, i))
		s := newBenchSink()
		if err := ann.Join(ctx, framework.JoinRequest{Topic: tp, Announce: true, Port: 42001}, s); err != nil {
			b.Fatal(err)
		}
		await(b, s.flush, "announce")
		topics = append(topics, tp)
	}
	lookers := make([]*dht.Node, 2)
	for k := range lookers {
		pc, err := tn.ListenPacket()
		if err != nil {
			b.Fatal(err)
		}
		defer pc.Close()
		if k == 1 {
			ic, err := impair.Wrap(pc, impair.Config{Delay: hopRTT}, impair.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer ic.Close()
			pc = ic
		}
		d, err := dht.ListenNode(tn.Config(dht.Config{PacketConn: pc, Ephemeral: dht.Bool(true), FastRelookups: []time.Duration{}}))
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		// warm the routing table with one unrelated round
		s := newBenchSink()
		var warm framework.Topic
		copy(warm[:], "warm-up")
		if err := d.Join(ctx, framework.JoinRequest{Topic: warm, Lookup: true}, s); err != nil {
			b.Fatal(err)
		}
		await(b, s.flush, "warm-up")
		d.Leave(ctx, warm)
		lookers[k] = d
	}
	var lat, hops []time.Duration
	var queries uint64
	for _, tp := range topics {
		for k, d := range lookers {
			q0 := d.Stats().Queries
			s := newBenchSink()
			t0 := time.Now()
			if err := d.Join(ctx, framework.JoinRequest{Topic: tp, Lookup: true}, s); err != nil {
				b.Fatal(err)
			}
			await(b, s.peer, "peer")
			if k == 0 {
				lat = append(lat, time.Since(t0))
			} else {
				hops = append(hops, time.Since(t0))
			}
			await(b, s.flush, "round")
			d.Leave(ctx, tp)
			if k == 0 {
				queries += d.Stats().Queries - q0
			}
		}
	}
	slices.Sort(lat)
	slices.Sort(hops)
	b.ReportMetric(float64(queries)/float64(len(topics)), "queries/lookup")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50-to-peer")
	b.ReportMetric(float64(hops[len(hops)/2])/float64(hopRTT), "hops-p50")
	return el, cpu
}
