package utp_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

const benchBytes = 256 << 20

// benchChunk is what oneWay writes again and again: generating the data
// costs nothing, so the rates and their ratio measure the transports.
var benchChunk = func() []byte {
	b := make([]byte, 256<<10)
	_, _ = newPattern(9).Read(b)
	return b
}()

// oneWay sends n bytes from w to r and returns the elapsed time.
func oneWay(b testing.TB, w, r net.Conn, n int64) time.Duration {
	return oneWayFrom(b, w, r, n, false)
}

// oneWayFrom is oneWay; with generate, the sender makes every byte with
// a ChaCha8 stream first (≈1 GiB/s of CPU, charged to both transports),
// as an application producing data would.
func oneWayFrom(b testing.TB, w, r net.Conn, n int64, generate bool) time.Duration {
	b.Helper()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		var err error
		chunk := benchChunk
		var src *pattern
		if generate {
			chunk, src = make([]byte, len(benchChunk)), newPattern(9)
		}
		for left := n; left > 0 && err == nil; {
			k := min(left, int64(len(chunk)))
			if src != nil {
				_, _ = src.Read(chunk[:k])
			}
			_, err = w.Write(chunk[:k])
			left -= k
		}
		errc <- err
	}()
	rbuf := make([]byte, 256<<10)
	for left := n; left > 0; {
		k, err := r.Read(rbuf[:min(left, int64(len(rbuf)))])
		if err != nil {
			b.Fatal(err)
		}
		left -= int64(k)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func tcpPair(b testing.TB) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-ch
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// BenchmarkLoopbackThroughput moves 256 MiB over uTP and over TCP on
// loopback in every iteration and reports both rates and their ratio
// (utp/tcp; the machine is shared, so only the ratio of one run means
// much). The data comes from a fixed buffer, or with src=generated from a
// ChaCha8 stream the sender runs (the CPU an application producing data
// spends, charged to both transports).
func BenchmarkLoopbackThroughput(b *testing.B) {
	for _, bc := range []struct {
		name     string
		cfg      utp.Config
		generate bool
	}{
		{"packet=16KiB", utp.Config{}, false},
		{"packet=1400", utp.Config{LoopbackPacketSize: utp.DefaultPacketSize}, false},
		{"packet=1400/src=generated", utp.Config{LoopbackPacketSize: utp.DefaultPacketSize}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a, z := newNode(b, bc.cfg), newNode(b, bc.cfg)
			uc, us := connect(b, a, z)
			tc, ts := tcpPair(b)
			var ut, tt time.Duration
			b.SetBytes(benchBytes)
			for b.Loop() {
				ut += oneWayFrom(b, uc, us, benchBytes, bc.generate)
				tt += oneWayFrom(b, tc, ts, benchBytes, bc.generate)
			}
			mib := float64(benchBytes) / (1 << 20) * float64(b.N)
			b.ReportMetric(mib/ut.Seconds(), "utp-MiB/s")
			b.ReportMetric(mib/tt.Seconds(), "tcp-MiB/s")
			b.ReportMetric(tt.Seconds()/ut.Seconds(), "utp/tcp")
			st := a.tr.Stats()
			b.ReportMetric(float64(st.Retransmits)/float64(b.N), "retransmits/op")
			b.ReportMetric(float64(st.Timeouts)/float64(b.N), "timeouts/op")
			drops := z.mux.Other().(*udpmux.Conn).Dropped() + a.mux.Other().(*udpmux.Conn).Dropped()
			b.ReportMetric(float64(drops)/float64(b.N), "mux-drops/op")
		})
	}
}

// BenchmarkUTPWithBusyDHT moves 256 MiB over uTP while a DHT node on the
// same UDP socket pings a loopback testnet as fast as it answers.
func BenchmarkUTPWithBusyDHT(b *testing.B) {
	ctx := context.Background()
	tn, err := dhttest.Start(ctx, 8, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer tn.Close()
	a, z := newNode(b, utp.Config{}), newNode(b, utp.Config{})
	var ds []*dht.Node
	for _, n := range []*node{a, z} {
		d, err := dht.ListenNode(tn.Config(dht.Config{PacketConn: n.mux.KRPC(), Ephemeral: dht.Bool(true)}))
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		ds = append(ds, d)
	}
	uc, us := connect(b, a, z)
	var pings, fails atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, d := range ds {
		for j := range 4 { // 4 pingers per node
			wg.Add(1)
			go func() {
				defer wg.Done()
				target := netip.MustParseAddrPort(tn.Nodes[(i*4+j)%len(tn.Nodes)].Addr().String())
				for {
					select {
					case <-stop:
						return
					default:
					}
					pctx, cancel := context.WithTimeout(ctx, time.Second)
					if d.Ping(pctx, target) == nil {
						pings.Add(1)
					} else {
						fails.Add(1)
					}
					cancel()
				}
			}()
		}
	}
	var ut time.Duration
	b.SetBytes(benchBytes)
	start := time.Now()
	for b.Loop() {
		ut += oneWay(b, uc, us, benchBytes)
	}
	el := time.Since(start)
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(benchBytes)/(1<<20)*float64(b.N)/ut.Seconds(), "utp-MiB/s")
	b.ReportMetric(float64(pings.Load())/el.Seconds(), "dht-pings/s")
	b.ReportMetric(float64(fails.Load()), "dht-ping-failures")
}
