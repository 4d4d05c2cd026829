//go:build unix

package secure

import (
	"context"
	crand "crypto/rand"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/flynn/noise"
)

// The benchmarks behind the figures in doc.go. Run them alone:
//
//	go test -run XXX -bench . -benchtime 3x ./framework/secure/

// BenchmarkCipher compares the AEADs on a maximal frame.
func BenchmarkCipher(b *testing.B) {
	for _, c := range []noise.CipherFunc{noise.CipherAESGCM, noise.CipherChaChaPoly} {
		b.Run(c.CipherName(), func(b *testing.B) {
			var k [32]byte
			aead := c.Cipher(k)
			pt := make([]byte, maxPlaintext)
			out := make([]byte, 0, maxFrame)
			b.SetBytes(int64(len(pt)))
			for i := 0; b.Loop(); i++ {
				out = aead.Encrypt(out[:0], uint64(i), nil, pt)
			}
		})
	}
}

// BenchmarkHandshakeSuite runs whole XX handshakes in memory (both sides'
// CPU) for each cipher and hash, with this package's X25519 ("this") and with
// flynn/noise's.
func BenchmarkHandshakeSuite(b *testing.B) {
	type dhMaker struct {
		name string
		new  func() noise.DHFunc
	}
	for _, d := range []dhMaker{{"this", func() noise.DHFunc { return new(dh25519) }}, {"flynn", func() noise.DHFunc { return noise.DH25519 }}} {
		for _, c := range []noise.CipherFunc{noise.CipherAESGCM, noise.CipherChaChaPoly} {
			for _, h := range []noise.HashFunc{noise.HashSHA256, noise.HashBLAKE2s} {
				b.Run(d.name+"_"+c.CipherName()+"_"+h.HashName(), func(b *testing.B) {
					ik, _ := noise.DH25519.GenerateKeypair(crand.Reader)
					rk, _ := noise.DH25519.GenerateKeypair(crand.Reader)
					for b.Loop() {
						ics, rcs := noise.NewCipherSuite(d.new(), c, h), noise.NewCipherSuite(d.new(), c, h)
						i, _ := noise.NewHandshakeState(noise.Config{CipherSuite: ics, Pattern: noise.HandshakeXX, Initiator: true, StaticKeypair: ik, Random: crand.Reader})
						r, _ := noise.NewHandshakeState(noise.Config{CipherSuite: rcs, Pattern: noise.HandshakeXX, StaticKeypair: rk, Random: crand.Reader})
						m1, _, _, _ := i.WriteMessage(nil, make([]byte, 36))
						r.ReadMessage(nil, m1)
						m2, _, _, _ := r.WriteMessage(nil, make([]byte, 34))
						i.ReadMessage(nil, m2)
						m3, _, _, _ := i.WriteMessage(nil, []byte{0})
						if _, _, _, err := r.ReadMessage(nil, m3); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkThroughput sends the same bytes over raw loopback TCP and over
// a session on loopback TCP, in the same run, and reports both rates and
// their ratio.
func BenchmarkThroughput(b *testing.B) {
	const size = 64 << 20
	buf := make([]byte, 256<<10)
	run := func(w io.WriteCloser, r io.Reader) time.Duration {
		start := time.Now()
		done := make(chan int64)
		go func() {
			n, _ := io.CopyBuffer(io.Discard, r, make([]byte, 256<<10))
			done <- n
		}()
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		if n := <-done; n != size {
			b.Fatalf("received %d of %d", n, size)
		}
		return time.Since(start)
	}
	var raw, sec time.Duration
	for b.Loop() {
		a, z := tcpPair(b)
		raw += run(a, z)
		z.Close()
		c, s := mustPair(b, topicA, Config{}, Config{}, nil)
		sec += run(closeWriter{c}, s)
	}
	n := float64(b.N) * size / (1 << 20)
	b.ReportMetric(n/raw.Seconds(), "raw-MiB/s")
	b.ReportMetric(n/sec.Seconds(), "session-MiB/s")
	b.ReportMetric(raw.Seconds()/sec.Seconds(), "session/raw")
	b.ReportMetric(0, "ns/op")
}

// closeWriter makes Close a CloseWrite, so the reader sees io.EOF.
type closeWriter struct{ *Conn }

func (c closeWriter) Close() error { return c.CloseWrite() }

// BenchmarkHandshake reports the CPU time a session handshake costs
// beyond the TCP connect, per side (both sides run in this process: the
// process CPU of connect and handshake, minus that of a bare connect,
// halved; closing is outside the measured windows), and its wall time:
// until Client returns (what the initiator waits for before it may send),
// and until both Client and Server have returned; the TCP connect's own
// wall time (one round trip and the accept) is reported for scale. Goal
// (issue 14): 1 round trip and ≤ 300 µs CPU per side.
func BenchmarkHandshake(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ck, sk := mustKey(b), mustKey(b)
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	connect := func() (net.Conn, net.Conn) {
		a, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		return a, <-accepted
	}
	const rounds = 200
	var tcpCPU, hsCPU, tcpWall, clientWall, bothWall time.Duration
	ctx := context.Background()
	topics := func() [][32]byte { return [][32]byte{topicB, topicA} }
	type res struct {
		s   *Conn
		err error
	}
	ch := make(chan res, 1)
	for b.Loop() {
		for range rounds {
			t0, w0 := cpuTime(), time.Now()
			a, z := connect()
			tcpWall += time.Since(w0)
			tcpCPU += cpuTime() - t0
			a.Close()
			z.Close()
		}
		for range rounds {
			t0 := cpuTime()
			a, z := connect()
			w0 := time.Now()
			go func() { s, err := Server(ctx, z, Config{KeyPair: sk, Topics: topics}); ch <- res{s, err} }()
			c, err := Client(ctx, a, Config{KeyPair: ck, Topic: topicA})
			clientWall += time.Since(w0)
			r := <-ch
			bothWall += time.Since(w0)
			hsCPU += cpuTime() - t0
			if err != nil || r.err != nil {
				b.Fatal(err, r.err)
			}
			c.Close()
			r.s.Close()
			<-c.Done()
			<-r.s.Done()
		}
	}
	ln.Close()
	for range accepted {
	}
	per := float64(b.N * rounds)
	b.ReportMetric(float64(hsCPU-tcpCPU)/per/1e3/2, "cpu-µs/side")
	b.ReportMetric(float64(hsCPU-tcpCPU)/per/1e3, "cpu-µs/handshake")
	b.ReportMetric(float64(tcpCPU)/per/1e3, "tcp-connect-cpu-µs")
	b.ReportMetric(float64(clientWall)/per/1e3, "client-wall-µs")
	b.ReportMetric(float64(bothWall)/per/1e3, "both-wall-µs")
	b.ReportMetric(float64(tcpWall)/per/1e3, "tcp-connect-wall-µs")
	b.ReportMetric(0, "ns/op")
}

func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleSessionMemory holds 1000 idle sessions on loopback TCP
// (both ends in this process: 2000 session ends) and reports the heap and
// stack each end holds, its goroutine included, with and without the TCP
// connection's own cost.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 1000
	var tcpBytes, secBytes float64
	for b.Loop() {
		base := inUse()
		var raw []net.Conn
		for range n {
			a, z := tcpPair(b)
			raw = append(raw, a, z)
		}
		tcpBytes += float64(inUse()-base) / (2 * n)
		for _, c := range raw {
			c.Close()
		}
		raw = nil
		base = inUse()
		var conns []*Conn
		for range n {
			ctx := context.Background()
			a, z := tcpPair(b)
			ch := make(chan *Conn, 1)
			go func() {
				s, err := Server(ctx, z, Config{KeyPair: mustKey(b), AllowNoTopic: true})
				if err != nil {
					b.Error(err)
				}
				ch <- s
			}()
			c, err := Client(ctx, a, Config{KeyPair: mustKey(b)})
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c, <-ch)
		}
		secBytes += float64(inUse()-base) / (2 * n)
		for _, c := range conns {
			c.Close()
		}
		for _, c := range conns {
			<-c.Done()
		}
	}
	b.ReportMetric(secBytes/float64(b.N), "bytes/session")
	b.ReportMetric((secBytes-tcpBytes)/float64(b.N), "bytes/session-beyond-tcp")
	b.ReportMetric(0, "ns/op")
}
