package framework_test

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// Hostile-network tests (issue 13): a poisoned discovery floods the swarm.
// Loopback only: the flood's addresses are 127.0.0.0/8, which the test's
// discovery marks PrivateNet (a loopback testnet), and the fake peers sit
// at port 1, where nothing listens.

// victim is a set of TCP listeners on one loopback IP that counts the
// connections each of its ports receives, stamps each with the swarm's
// (fake) clock, and closes them at once.
type victim struct {
	ip    string
	ports []int
	now   func() time.Time
	total atomic.Int64
	mu    sync.Mutex
	hit   map[int]int // port → connections
	hits  []victimHit
	wg    sync.WaitGroup
}

type victimHit struct {
	at   time.Time
	port int
}

func newVictim(tb testing.TB, ip string, ports int, now func() time.Time) *victim {
	tb.Helper()
	v := &victim{ip: ip, hit: map[int]int{}, now: now}
	tb.Cleanup(v.wg.Wait) // runs last: after the listeners closed
	for range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		v.ports = append(v.ports, port)
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				// Recorded before the close: the swarm is quiet (and
				// the fake clock moves) only after it saw the EOF.
				v.mu.Lock()
				v.hit[port]++
				v.hits = append(v.hits, victimHit{v.now(), port})
				v.mu.Unlock()
				v.total.Add(1)
				c.Close()
			}
		}()
		tb.Cleanup(func() { l.Close() })
	}
	return v
}

func (v *victim) distinctPorts() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.hit)
}

// maxPortsInWindow is the most distinct ports the victim saw connections
// on within any span of length window.
func (v *victim) maxPortsInWindow(window time.Duration) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	most := 0
	for i, first := range v.hits { // hits are in accept order: fake time never goes back
		ports := map[int]bool{}
		for _, h := range v.hits[i:] {
			if h.at.Sub(first.at) >= window {
				break
			}
			ports[h.port] = true
		}
		most = max(most, len(ports))
	}
	return most
}

// Flood shape: the attack of issue 13, 520 000 values in 65 reports of
// 8 000, each report a discovery cycle of its own (the per-cycle budget
// starts again every time), led by 54 fake DHT nodes on one IP.
const (
	floodReports   = 65
	floodPerReport = 8000
	floodNodes     = 54
	victimPorts    = 32
	floodStep      = 500 * time.Millisecond // fake time between reports
)

// floodReport is report r: every victim port, then fake peers at distinct
// 127.x.y.z addresses, port 1; the legitimate peer is somewhere inside,
// referred by an honest node.
func floodReport(r int, v *victim, legit framework.Peer, topic framework.Topic) []framework.Peer {
	out := make([]framework.Peer, 0, floodPerReport)
	ref := func(i int) *framework.Referrer {
		return &framework.Referrer{Host: "127.0.0.66", Port: 7000 + i%floodNodes, ID: make([]byte, 20)}
	}
	for i, p := range v.ports {
		out = append(out, framework.Peer{Host: v.ip, Port: p, Topic: topic, Referrer: ref(i)})
	}
	for i := len(out); i < floodPerReport; i++ {
		k := r*floodPerReport + i
		host := "127." + strconv.Itoa(1+k>>16&0x7f) + "." + strconv.Itoa(k>>8&0xff) + "." + strconv.Itoa(k&0xff)
		out = append(out, framework.Peer{Host: host, Port: 1, Topic: topic, Referrer: ref(i)})
	}
	at := (r*7919 + 101) % floodPerReport
	legit.Referrer = &framework.Referrer{Host: "127.0.0.2", Port: 6881, ID: make([]byte, 20)}
	out[at] = legit
	return out
}

type floodResult struct {
	heapGrowth    float64 // MiB, after GC, swarm alive
	fakeSeconds   float64
	victimConns   int64
	victimPorts   int // distinct, over the whole run
	windowPorts   int // distinct, most in any DefaultDialPortWindow
	neverConnect  int
	known         int
	legitFound    bool
	legitFoundSec float64
}

// runFlood floods a swarm with the default limits and steps its fake clock
// until the legitimate peer connected (or 5 fake minutes passed).
func runFlood(tb testing.TB) floodResult {
	legitSrv := newNode(tb)
	legitSrv.join(tb, topicA, framework.Announce(true))

	connected := make(chan struct{})
	var once sync.Once
	legitPort := legitSrv.Port()
	isLegit := func(c *framework.Conn) bool {
		p := c.Peer()
		return p != nil && p.Port == legitPort && p.Host == "127.0.0.1"
	}
	clk := newCallbackClock() // replaces the node's own clock (n.clk)
	v := newVictim(tb, "127.0.0.77", victimPorts, clk.Now)
	n := newNode(tb, framework.WithDialLimits(framework.DefaultDialLimits()), framework.WithClock(clk),
		framework.WithConnectionHandler(func(c *framework.Conn) {
			if isLegit(c) {
				once.Do(func() { close(connected) })
				return // kept open: the legitimate peer is what we came for
			}
			readUntilEOF(c)
		}))
	n.join(tb, topicA)
	// settle waits until the swarm did all the fake time allows: the timers
	// fired have run, the peers found are admitted, the dials the limits
	// let go have ended and their connections (the victim's, closed at
	// once) are closed. The fake clock never runs ahead of the swarm, so
	// the dial rates are met, not lost.
	settle := func() {
		ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
		defer cancel()
		for {
			if err := clk.AwaitCallbacks(ctx); err != nil {
				tb.Fatalf("timer callbacks still running after %v: %v", swarmtest.DefaultWait, err)
			}
			if err := n.AwaitQuiet(ctx, isLegit); err != nil {
				tb.Fatalf("swarm not quiet after %v: %v (%+v)", swarmtest.DefaultWait, err, n.Stats())
			}
			if clk.idle() {
				return
			}
		}
	}
	legit := legitSrv.peer(topicA)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc

	res := floodResult{}
	start := clk.Now()
	step := func() bool {
		clk.Advance(floodStep)
		settle()
		select {
		case <-connected:
			if !res.legitFound {
				res.legitFound = true
				res.legitFoundSec = clk.Since(start).Seconds()
			}
			return true
		default:
			return false
		}
	}
	for r := range floodReports {
		n.disc.Emit(floodReport(r, v, legit, topicA)...)
		n.disc.Update(topicA)
		settle()
		step()
	}
	for i := 0; i < int(5*time.Minute/floodStep) && !res.legitFound; i++ {
		step()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.heapGrowth = float64(int64(ms.HeapAlloc)-int64(before)) / (1 << 20)
	res.fakeSeconds = clk.Since(start).Seconds()
	res.victimConns = v.total.Load()
	res.victimPorts = v.distinctPorts()
	res.windowPorts = v.maxPortsInWindow(framework.DefaultDialPortWindow)
	st := n.Stats()
	res.neverConnect, res.known = st.Bounds.NeverConnected, st.Known
	return res
}

// The DHT poisoning of issue 13 against the defaults: memory stays
// bounded, the known peers stay under their caps, the victim receives at
// most the per-IP dial rate (burst 2, then 1/s: far under 10/s) on at most
// 4 distinct ports in any minute (the port window: a run that lasts
// longer may reach a fifth port after it), and the legitimate peer reported among the flood is
// found and connected. (semantics D6–D8, L5–L7)
func TestHostileDiscoveryFloodStaysBounded(t *testing.T) {
	r := runFlood(t)
	t.Logf("heap +%.1f MiB; %.1f fake s; victim %d connections on %d ports (at most %d in a window); known %d (never connected %d); legit found after %.1f s",
		r.heapGrowth, r.fakeSeconds, r.victimConns, r.victimPorts, r.windowPorts, r.known, r.neverConnect, r.legitFoundSec)
	if r.heapGrowth > 64 {
		t.Errorf("heap grew %.1f MiB under the flood, want < 64", r.heapGrowth)
	}
	if r.neverConnect > framework.DefaultKnownPerTopic || r.known > framework.DefaultKnownPerTopic+framework.DefaultMaxPeers {
		t.Errorf("known %d, never connected %d: over the caps", r.known, r.neverConnect)
	}
	if max := float64(framework.DefaultDialBurstPerIP) + framework.DefaultDialRatePerIP*r.fakeSeconds; float64(r.victimConns) > max {
		t.Errorf("victim received %d connections in %.1f s, want ≤ %.0f (per-IP rate)", r.victimConns, r.fakeSeconds, max)
	}
	if r.windowPorts > framework.DefaultPortsPerIP {
		t.Errorf("victim saw %d distinct ports within %v, want ≤ %d", r.windowPorts, framework.DefaultDialPortWindow, framework.DefaultPortsPerIP)
	}
	if windows := 1 + int(r.fakeSeconds/framework.DefaultDialPortWindow.Seconds()); r.victimPorts > windows*framework.DefaultPortsPerIP {
		t.Errorf("victim saw %d distinct ports in %.1f s, want ≤ %d", r.victimPorts, r.fakeSeconds, windows*framework.DefaultPortsPerIP)
	}
	if !r.legitFound {
		t.Errorf("the legitimate peer was never connected")
	}
}

// BenchmarkHostileDiscoveryFlood reports, under the flood of
// TestHostileDiscoveryFloodStaysBounded, the swarm's heap growth and what
// the victim received per (fake) second.
func BenchmarkHostileDiscoveryFlood(b *testing.B) {
	var last floodResult
	for b.Loop() {
		last = runFlood(b)
	}
	b.ReportMetric(last.heapGrowth, "heap-MiB")
	b.ReportMetric(float64(last.victimConns)/last.fakeSeconds, "victim-conns/s")
	b.ReportMetric(float64(last.victimPorts), "victim-ports")
	b.ReportMetric(last.legitFoundSec, "legit-found-s")
}
