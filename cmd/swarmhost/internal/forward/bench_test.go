package forward

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// The benchmarks compare, in the same run, a direct loopback TCP
// connection to a target with a forwarded one (client → connect service →
// swarm connection → serve service → target), and report the forwarded
// figures as ratios of the direct ones.

const (
	xferChunk = 4 << 20 // bytes per throughput step
	pingSize  = 64      // bytes per latency round trip
)

// ackServer reads xferChunk bytes, answers one byte, and again.
func ackServer(tb testing.TB) string {
	return tcpServer(tb, func(c net.Conn) {
		for {
			if _, err := io.CopyN(io.Discard, c, xferChunk); err != nil {
				return
			}
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
		}
	})
}

func benchPair(b *testing.B, target string) (direct, forwarded string) {
	p := newPair(b, Options{})
	return target, p.service(b, "bench", framework.TopicFromString(b.Name()), target)
}

func xfer(b *testing.B, c net.Conn, buf []byte) {
	for sent := 0; sent < xferChunk; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		b.Fatal(err)
	}
}

func pingPong(b *testing.B, c net.Conn, buf []byte) {
	if _, err := c.Write(buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		b.Fatal(err)
	}
}

func noDeadline(c net.Conn) net.Conn { c.SetDeadline(time.Time{}); return c }

// BenchmarkThroughput: one-way bulk transfer in 4 MiB steps, each
// acknowledged by the target.
func BenchmarkThroughput(b *testing.B) {
	directAddr, fwdAddr := benchPair(b, ackServer(b))
	direct, fwd := noDeadline(dial(b, directAddr)), noDeadline(dial(b, fwdAddr))
	buf := make([]byte, 64<<10)
	xfer(b, fwd, buf) // warm up
	var dd, df time.Duration
	for b.Loop() {
		t0 := time.Now()
		xfer(b, direct, buf)
		t1 := time.Now()
		xfer(b, fwd, buf)
		dd += t1.Sub(t0)
		df += time.Since(t1)
	}
	mb := float64(b.N) * xferChunk / (1 << 20)
	b.ReportMetric(mb/dd.Seconds(), "direct-MiB/s")
	b.ReportMetric(mb/df.Seconds(), "fwd-MiB/s")
	b.ReportMetric(dd.Seconds()/df.Seconds(), "fwd/direct")
}

// BenchmarkLatency: 64-byte request/response round trips on an open
// connection.
func BenchmarkLatency(b *testing.B) {
	directAddr, fwdAddr := benchPair(b, echoServer(b))
	direct, fwd := noDeadline(dial(b, directAddr)), noDeadline(dial(b, fwdAddr))
	buf := make([]byte, pingSize)
	pingPong(b, fwd, buf)
	var dd, df time.Duration
	for b.Loop() {
		t0 := time.Now()
		pingPong(b, direct, buf)
		t1 := time.Now()
		pingPong(b, fwd, buf)
		dd += t1.Sub(t0)
		df += time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(dd.Microseconds())/n, "direct-µs/rt")
	b.ReportMetric(float64(df.Microseconds())/n, "fwd-µs/rt")
	b.ReportMetric(float64((df-dd).Microseconds())/n, "added-µs/rt")
	b.ReportMetric(df.Seconds()/dd.Seconds(), "fwd/direct")
}

// BenchmarkConnectLatency: a new connection, one 64-byte round trip, close
// — what a client without keep-alive pays per request.
func BenchmarkConnectLatency(b *testing.B) {
	directAddr, fwdAddr := benchPair(b, echoServer(b))
	buf := make([]byte, pingSize)
	once := func(addr string) time.Duration {
		t0 := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		pingPong(b, c, buf)
		d := time.Since(t0)
		c.Close()
		return d
	}
	var dd, df time.Duration
	for b.Loop() {
		dd += once(directAddr)
		df += once(fwdAddr)
	}
	n := float64(b.N)
	b.ReportMetric(float64(dd.Microseconds())/n, "direct-µs/conn")
	b.ReportMetric(float64(df.Microseconds())/n, "fwd-µs/conn")
	b.ReportMetric(float64((df-dd).Microseconds())/n, "added-µs/conn")
	b.ReportMetric(df.Seconds()/dd.Seconds(), "fwd/direct")
}
