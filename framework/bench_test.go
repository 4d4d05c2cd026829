package framework_test

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// benchSwarm starts a loopback plaintext swarm for benchmarks: these
// measure the engine against raw TCP (the README's plaintext figures);
// bench_session_test.go measures encrypted sessions.
func benchSwarm(b *testing.B, opts ...framework.Option) *framework.Swarm {
	b.Helper()
	base := []framework.Option{framework.WithTransport(tcp.New()), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithPlaintext()}
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

// swarmPair returns both ends of one swarm-made connection.
func swarmPair(b *testing.B) (client, server net.Conn) {
	b.Helper()
	accepted := make(chan *framework.Conn, 1)
	srv := benchSwarm(b, framework.WithConnectionHandler(func(c *framework.Conn) { accepted <- c }))
	cli := benchSwarm(b)
	c, err := cli.Connect(context.Background(), framework.Peer{Host: "127.0.0.1", Port: srv.Port()})
	if err != nil {
		b.Fatal(err)
	}
	return c, <-accepted
}

// rawPair returns both ends of a plain loopback TCP connection.
func rawPair(b *testing.B) (client, server net.Conn) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// transfer sends n bytes from w to r in 64 KiB writes and returns the time.
func transfer(b *testing.B, w, r net.Conn, n int64, buf []byte) time.Duration {
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		var sent int64
		for sent < n {
			k, err := w.Write(buf)
			if err != nil {
				errc <- err
				return
			}
			sent += int64(k)
		}
		errc <- nil
	}()
	rbuf := make([]byte, len(buf))
	var got int64
	for got < n {
		k, err := r.Read(rbuf)
		if err != nil {
			b.Fatal(err)
		}
		got += int64(k)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkThroughputSwarmVsRawTCP moves 32 MiB per iteration over a
// swarm-made connection and over a raw loopback TCP connection, alternately,
// and reports both rates and their ratio (goal: swarm/raw >= 0.97).
func BenchmarkThroughputSwarmVsRawTCP(b *testing.B) {
	const chunk = 32 << 20
	sc, ss := swarmPair(b)
	rc, rs := rawPair(b)
	buf := make([]byte, 64<<10)
	var tSwarm, tRaw time.Duration
	b.SetBytes(chunk)
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			tRaw += transfer(b, rc, rs, chunk, buf)
			tSwarm += transfer(b, sc, ss, chunk, buf)
		} else {
			tSwarm += transfer(b, sc, ss, chunk, buf)
			tRaw += transfer(b, rc, rs, chunk, buf)
		}
	}
	mib := float64(chunk) * float64(b.N) / (1 << 20)
	b.ReportMetric(mib/tSwarm.Seconds(), "swarm-MiB/s")
	b.ReportMetric(mib/tRaw.Seconds(), "raw-MiB/s")
	b.ReportMetric(tRaw.Seconds()/tSwarm.Seconds(), "swarm/raw")
}

// heapAndStacks returns live heap plus goroutine stack bytes after a GC.
func heapAndStacks() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// BenchmarkIdleConnectionMemory opens 500 idle connections through swarms and
// 500 raw loopback TCP connections, and reports the memory the swarm adds
// per connection end beyond the socket itself (goal: <= 4 KiB).
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const n = 500
	for range b.N {
		b.StopTimer()
		srvConns := make(chan *framework.Conn, n)
		// no dial reserve: the server takes n inbound connections
		srv := benchSwarm(b, framework.WithMaxPeers(n+1), framework.WithDialReserve(0), framework.WithConnectionHandler(func(c *framework.Conn) { srvConns <- c }))
		cli := benchSwarm(b, framework.WithMaxPeers(n+1))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		peer := framework.Peer{Host: "127.0.0.1", Port: srv.Port()}
		b.StartTimer()

		base := heapAndStacks()
		var raw []net.Conn
		for range n {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			s, err := l.Accept()
			if err != nil {
				b.Fatal(err)
			}
			raw = append(raw, c, s)
		}
		rawBytes := heapAndStacks() - base

		base = heapAndStacks()
		var sw []net.Conn
		for range n {
			c, err := cli.Connect(context.Background(), peer)
			if err != nil {
				b.Fatal(err)
			}
			sw = append(sw, c, <-srvConns)
		}
		swarmBytes := heapAndStacks() - base

		b.StopTimer()
		added := (float64(swarmBytes) - float64(rawBytes)) / float64(2*n)
		b.ReportMetric(added, "added-B/conn")
		b.ReportMetric(float64(rawBytes)/float64(2*n), "raw-B/conn")
		runtime.KeepAlive(raw)
		runtime.KeepAlive(sw)
		for _, c := range append(raw, sw...) {
			c.Close()
		}
		l.Close()
		cli.Close()
		srv.Close()
		b.StartTimer()
	}
}

// BenchmarkJoinToConnection measures the time from Join to the connection
// event with static discovery on loopback, next to a raw TCP dial in the
// same run.
func BenchmarkJoinToConnection(b *testing.B) {
	srv := benchSwarm(b)
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
	var tJoin, tRaw time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		topic := framework.TopicFromString(time.Now().String() + string(rune(i)))
		disc, _ := static.New(static.Config{Peers: []static.Entry{{Addr: "127.0.0.1:" + strconv.Itoa(srv.Port())}}})
		cli := benchSwarm(b, framework.WithDiscovery(disc))
		sub := cli.Subscribe()
		b.StartTimer()

		start := time.Now()
		if err := cli.Join(context.Background(), topic); err != nil {
			b.Fatal(err)
		}
		for ev := range sub.C() {
			if _, ok := ev.(*framework.ConnectionEvent); ok {
				break
			}
		}
		tJoin += time.Since(start)

		start = time.Now()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tRaw += time.Since(start)

		b.StopTimer()
		c.Close()
		sub.Close()
		cli.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(tJoin.Microseconds())/float64(b.N), "join-to-conn-µs")
	b.ReportMetric(float64(tRaw.Microseconds())/float64(b.N), "raw-dial-µs")
}
