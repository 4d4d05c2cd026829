package framework_test

import (
	"context"
	"net"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// Swarm-level session benchmarks (issue 14), loopback, encrypted next to
// plaintext (and raw TCP) in the same run.

// sessionOpts are the options of the benchmarks' swarms: no dial limits
// (many dials to one address), any topic accepted.
func sessionOpts(plain bool, opts ...framework.Option) []framework.Option {
	base := []framework.Option{
		framework.WithAllowNoTopic(true),
		framework.WithDialLimits(framework.DialLimits{Rate: -1, PerIPRate: -1, PortsPerIP: -1}),
	}
	if plain {
		base = append(base, framework.WithPlaintext())
	}
	return append(base, opts...)
}

// modeSwarm starts a loopback swarm for the session benchmarks:
// encrypted unless opts has WithPlaintext (benchSwarm is always plaintext).
func modeSwarm(b *testing.B, opts ...framework.Option) *framework.Swarm {
	b.Helper()
	base := []framework.Option{framework.WithTransport(tcp.New()), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0)}
	sw, err := framework.New(append(base, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sw.Close() })
	return sw
}

// checkMode fails b unless c is encrypted exactly when !plain.
func checkMode(b *testing.B, c *framework.Conn, plain bool) {
	b.Helper()
	if (c.Session() == nil) != plain {
		b.Fatalf("connection encrypted=%v, want %v", c.Session() != nil, !plain)
	}
}

// modePair returns both ends of one connection between two swarms,
// encrypted or plaintext.
func modePair(b *testing.B, plain bool) (client, server *framework.Conn) {
	b.Helper()
	c, s, _ := modePairSwarm(b, plain)
	return c, s
}

// modePairSwarm is modePair that also returns the accepting swarm.
func modePairSwarm(b *testing.B, plain bool) (client, server *framework.Conn, srv *framework.Swarm) {
	b.Helper()
	accepted := make(chan *framework.Conn, 1)
	srv = modeSwarm(b, sessionOpts(plain, framework.WithConnectionHandler(func(c *framework.Conn) { accepted <- c }))...)
	cli := modeSwarm(b, sessionOpts(plain)...)
	c, err := cli.Connect(context.Background(), framework.Peer{Host: "127.0.0.1", Port: srv.Port()})
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	checkMode(b, c, plain)
	checkMode(b, s, plain)
	return c, s, srv
}

// BenchmarkSessionThroughput moves 32 MiB per iteration over an encrypted
// swarm connection, a plaintext swarm connection and a raw loopback TCP
// connection, in rotating order, 64 KiB writes, and reports the three
// rates (MiB/s), the ratios (goal: encrypted ≥ 0.5× raw, ≥ 1 GiB/s), and
// the process CPU time each mode spends per MiB (both ends: what limits
// the rate on a loaded machine).
func BenchmarkSessionThroughput(b *testing.B) {
	const chunk = 32 << 20
	ec, es := modePair(b, false)
	pc, ps := modePair(b, true)
	rc, rs := rawPair(b)
	buf := make([]byte, 64<<10)
	var tEnc, tPlain, tRaw, cEnc, cPlain, cRaw time.Duration
	timed := func(t, cpu *time.Duration, w, r net.Conn) {
		c0 := processCPU()
		*t += transfer(b, w, r, chunk, buf)
		*cpu += processCPU() - c0
	}
	b.SetBytes(3 * chunk)
	b.ResetTimer()
	for i := range b.N {
		runs := []func(){
			func() { timed(&tEnc, &cEnc, ec, es) },
			func() { timed(&tPlain, &cPlain, pc, ps) },
			func() { timed(&tRaw, &cRaw, rc, rs) },
		}
		for k := range runs {
			runs[(i+k)%len(runs)]()
		}
	}
	mib := float64(chunk) * float64(b.N) / (1 << 20)
	b.ReportMetric(mib/tEnc.Seconds(), "enc-MiB/s")
	b.ReportMetric(mib/tPlain.Seconds(), "plain-MiB/s")
	b.ReportMetric(mib/tRaw.Seconds(), "raw-MiB/s")
	b.ReportMetric(tRaw.Seconds()/tEnc.Seconds(), "enc/raw")
	b.ReportMetric(tPlain.Seconds()/tEnc.Seconds(), "enc/plain")
	b.ReportMetric(float64(cEnc.Microseconds())/mib, "enc-cpu-µs/MiB")
	b.ReportMetric(float64(cPlain.Microseconds())/mib, "plain-cpu-µs/MiB")
	b.ReportMetric(float64(cRaw.Microseconds())/mib, "raw-cpu-µs/MiB")
}

// BenchmarkSessionJoinToConnection measures Join → ConnectionEvent on the
// joining side (static discovery, loopback, a fresh joining swarm each
// time), encrypted and plaintext alternately, and a raw TCP dial in the
// same run. The encrypted figure includes the handshake: TCP connect,
// msg1 →, ← msg2, then msg3 written.
func BenchmarkSessionJoinToConnection(b *testing.B) {
	topic := framework.TopicFromString("bench join")
	encSrv := modeSwarm(b, sessionOpts(false, framework.WithAcceptTopics(topic))...)
	plainSrv := modeSwarm(b, sessionOpts(true)...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	join := func(srv *framework.Swarm, plain bool) time.Duration {
		b.StopTimer()
		disc, err := static.New(static.Config{Peers: []static.Entry{{Addr: "127.0.0.1:" + strconv.Itoa(srv.Port())}}})
		if err != nil {
			b.Fatal(err)
		}
		cli := modeSwarm(b, sessionOpts(plain, framework.WithDiscovery(disc))...)
		sub := cli.Subscribe()
		b.StartTimer()
		start := time.Now()
		if err := cli.Join(context.Background(), topic); err != nil {
			b.Fatal(err)
		}
		var conn *framework.Conn
		for ev := range sub.C() {
			if e, ok := ev.(*framework.ConnectionEvent); ok {
				conn = e.Conn
				break
			}
		}
		d := time.Since(start)
		b.StopTimer()
		checkMode(b, conn, plain)
		sub.Close()
		cli.Close()
		b.StartTimer()
		return d
	}
	var enc, plain, raw []time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			enc = append(enc, join(encSrv, false))
			plain = append(plain, join(plainSrv, true))
		} else {
			plain = append(plain, join(plainSrv, true))
			enc = append(enc, join(encSrv, false))
		}
		start := time.Now()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, time.Since(start))
		c.Close()
	}
	b.ReportMetric(median(enc), "enc-p50-µs")
	b.ReportMetric(median(plain), "plain-p50-µs")
	b.ReportMetric(median(enc)-median(plain), "enc-extra-p50-µs")
	b.ReportMetric(median(raw), "raw-dial-p50-µs")
}

// median returns the median of ds in µs.
func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Microsecond)
}

// BenchmarkIdleSessionMemoryPerConnection opens 500 idle connections
// between two swarms, encrypted then plaintext, and reports the live heap
// plus goroutine stacks they add per connection, both ends together and
// everything included (sockets, sessions, their goroutines, the swarm's
// bookkeeping); raw loopback TCP pairs for reference (goal: ≤ 16 KiB per
// encrypted session).
func BenchmarkIdleSessionMemoryPerConnection(b *testing.B) {
	const n = 500
	var stacks, goroutines float64 // encrypted, per connection
	measure := func(plain bool) float64 {
		srvConns := make(chan *framework.Conn, n)
		srv := modeSwarm(b, sessionOpts(plain, framework.WithMaxPeers(n+1), framework.WithDialReserve(0), framework.WithConnectionHandler(func(c *framework.Conn) { srvConns <- c }))...)
		cli := modeSwarm(b, sessionOpts(plain, framework.WithMaxPeers(n+1))...)
		peer := framework.Peer{Host: "127.0.0.1", Port: srv.Port()}
		base, baseStack, baseG := memNow()
		conns := make([]net.Conn, 0, 2*n)
		for range n {
			c, err := cli.Connect(context.Background(), peer)
			if err != nil {
				b.Fatal(err)
			}
			checkMode(b, c, plain)
			conns = append(conns, c, <-srvConns)
		}
		total, stack, g := memNow()
		if !plain {
			stacks += (stack - baseStack) / n
			goroutines += (g - baseG) / n
		}
		bytes := (total - base) / n
		for _, c := range conns {
			c.Close()
		}
		cli.Close()
		srv.Close()
		return bytes
	}
	rawConns := func() float64 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		base, _, _ := memNow()
		conns := make([]net.Conn, 0, 2*n)
		for range n {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			s, err := l.Accept()
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c, s)
		}
		total, _, _ := memNow()
		bytes := (total - base) / n
		for _, c := range conns {
			c.Close()
		}
		return bytes
	}
	var enc, plain, raw float64
	for range b.N {
		enc += measure(false)
		plain += measure(true)
		raw += rawConns()
	}
	k := float64(b.N)
	b.ReportMetric(enc/k, "enc-B/conn")
	b.ReportMetric(plain/k, "plain-B/conn")
	b.ReportMetric(raw/k, "raw-tcp-B/conn")
	b.ReportMetric((enc-plain)/k, "enc-extra-B/conn")
	b.ReportMetric(stacks/k, "enc-stack-B/conn")
	b.ReportMetric(goroutines/k, "enc-goroutines/conn")
}

// memNow returns live heap plus goroutine stacks, the stacks alone, and
// the number of goroutines, after a GC (as float64: a later figure may be
// smaller).
func memNow() (total, stacks, goroutines float64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc + ms.StackInuse), float64(ms.StackInuse), float64(runtime.NumGoroutine())
}

// BenchmarkSessionCloseToDisconnection measures, on an idle encrypted
// connection that nobody reads, the time from the peer's Close to the
// DisconnectionEvent on this side (goal ≤ 1 s; hyperswarm v2 ≈ 110 ms).
func BenchmarkSessionCloseToDisconnection(b *testing.B) {
	var ds []time.Duration
	for range b.N {
		b.StopTimer()
		c, s, srv := modePairSwarm(b, false)
		sub := srv.Subscribe()
		b.StartTimer()
		start := time.Now()
		c.Close()
		for ev := range sub.C() {
			if e, ok := ev.(*framework.DisconnectionEvent); ok && e.Conn == s {
				break
			}
		}
		ds = append(ds, time.Since(start))
		b.StopTimer()
		sub.Close()
		b.StartTimer()
	}
	b.ReportMetric(median(ds), "close-to-disconn-p50-µs")
	b.ReportMetric(float64(slices.Max(ds))/float64(time.Microsecond), "close-to-disconn-max-µs")
}
