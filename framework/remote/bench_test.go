package remote_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// transports are the in-process and out-of-process variants compared in
// one run: the built-in TCP transport, the same served by a plugin (fds
// handed off), and a user-space transport served by a plugin (relayed).
func benchTransports(b *testing.B) []struct {
	name string
	tr   framework.Transport
} {
	return []struct {
		name string
		tr   framework.Transport
	}{
		{"in-process", tcp.New()},
		{"plugin-fd", startTransport(b, config(b, "tcp"))},
		{"plugin-relay", startTransport(b, config(b, "relay"))},
	}
}

// BenchmarkTCPThroughput: one connection, 1 MiB writes, the listener side
// drains. Compare plugin-fd with in-process (goal ≥ 0.9×).
func BenchmarkTCPThroughput(b *testing.B) {
	for _, bt := range benchTransports(b) {
		b.Run(bt.name, func(b *testing.B) {
			l, err := bt.tr.Listen(bg, "127.0.0.1", 0)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			done := make(chan int64, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					done <- -1
					return
				}
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				done <- n
			}()
			c, err := bt.tr.Dial(bg, peerOf(l.Addr()))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
			if n := <-done; n != int64(b.N)*int64(len(buf)) {
				b.Fatalf("received %d bytes", n)
			}
		})
	}
}

// BenchmarkDialLatency: dial + close of one connection per op, to a native
// loopback listener.
func BenchmarkDialLatency(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer l.Close()
	p := peerOf(l.Addr())
	for _, bt := range benchTransports(b) {
		b.Run(bt.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c, err := bt.tr.Dial(bg, p)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkPluginStart: exec + handshake + Info, then a graceful stop.
func BenchmarkPluginStart(b *testing.B) {
	cfg := config(b, "tcp")
	for i := 0; i < b.N; i++ {
		tr, err := remote.NewTransport(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		tr.Close()
		b.StartTimer()
	}
}

// BenchmarkUTPThroughput: one uTP connection on loopback, 1 MiB writes,
// from the transport under test to an in-process uTP listener that
// drains: the built-in in process, and the same served by a plugin on the
// relayed shared socket (every datagram crosses the socketpair).
func BenchmarkUTPThroughput(b *testing.B) {
	for _, bt := range []struct {
		name string
		tr   func(b *testing.B) framework.Transport
	}{
		{"in-process", func(b *testing.B) framework.Transport { return inProcessUTP(b) }},
		{"plugin-relayed-udp", func(b *testing.B) framework.Transport { return startTransport(b, config(b, "utp")) }},
	} {
		b.Run(bt.name, func(b *testing.B) {
			src := newUDPNode(b, bt.tr(b))
			dst := newUDPNode(b, inProcessUTP(b))
			done := make(chan int64, 1)
			go func() {
				c, err := dst.ln.Accept()
				if err != nil {
					done <- -1
					return
				}
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				done <- n
			}()
			c, err := src.tr.Dial(bg, dst.peer())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
			select {
			case n := <-done:
				if n != int64(b.N)*int64(len(buf)) {
					b.Fatalf("received %d bytes", n)
				}
			case <-time.After(time.Minute):
				b.Fatal("the receiver did not finish within a minute")
			}
		})
	}
}
