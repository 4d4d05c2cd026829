package relay_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// sessionPair runs a Noise session over a client conn and a server conn.
func sessionPair(tb testing.TB, cc, sc net.Conn, kc, ks secure.KeyPair) (*secure.Conn, *secure.Conn) {
	tb.Helper()
	topic := [32]byte{1}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var srv *secure.Conn
	var serr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv, serr = secure.Server(ctx, sc, secure.Config{KeyPair: ks, Topics: func() [][32]byte { return [][32]byte{topic} }})
	}()
	cli, err := secure.Client(ctx, cc, secure.Config{KeyPair: kc, Topic: topic})
	<-done
	if err != nil || serr != nil {
		tb.Fatal(err, serr)
	}
	return cli, srv
}

// zeros is what pumpBytes writes: shared and only read, so that the
// benchmark's 100 sessions do not allocate 100 buffers per round where the
// direct session allocates one.
var zeros = make([]byte, 64<<10)

// pumpBytes sends n bytes from w to r and waits until r read them all; rbuf
// (64 KiB, the writer's chunk) is the reader's buffer.
func pumpBytes(tb testing.TB, w, r net.Conn, n int, rbuf []byte) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for left := n; left > 0; {
			k := min(left, len(zeros))
			if _, err := w.Write(zeros[:k]); err != nil {
				tb.Error(err)
				return
			}
			left -= k
		}
	}()
	for left := n; left > 0; {
		k, err := r.Read(rbuf[:min(left, len(rbuf))])
		left -= k
		if err != nil {
			if left > 0 {
				tb.Error(err)
			}
			break
		}
	}
	wg.Wait()
}

// BenchmarkRelayVsDirect moves the same volume over one direct loopback
// session and over `sessions` sessions relayed by one relay, in the same
// run, and reports both rates and their ratio (goal ≥ 0.5).
func BenchmarkRelayVsDirect(b *testing.B) {
	const sessions = 100
	const volume = 16 << 20
	ka, kb := keyPair(b), keyPair(b)

	// direct
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			acc <- c
		}
	}()
	dc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	da, db := sessionPair(b, dc, <-acc, ka, kb)
	defer da.Close()
	defer db.Close()

	// relayed
	r := bareRelay(b, relay.ServerConfig{Limits: relay.Limits{BytesPerClient: -1, SessionsPerClient: sessions, Sessions: sessions}})
	c, rl := bareClient(b, relay.ClientConfig{Relays: []string{pinned(r)}})
	addr := allocation(b, c, 0)
	type pair struct {
		a, b *secure.Conn
		buf  []byte // b's read buffer
	}
	pairs := make([]pair, sessions)
	for i := range pairs {
		tc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		sc, err := rl.Accept()
		if err != nil {
			b.Fatal(err)
		}
		pairs[i].a, pairs[i].b = sessionPair(b, tc, sc, ka, kb)
		pairs[i].buf = make([]byte, 64<<10)
	}
	dbuf := make([]byte, 64<<10)
	defer func() {
		for _, p := range pairs {
			p.a.Close()
			p.b.Close()
		}
	}()

	var direct, relayed time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		pumpBytes(b, da, db, volume, dbuf)
		direct += time.Since(t0)

		t0 = time.Now()
		var wg sync.WaitGroup
		for _, p := range pairs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pumpBytes(b, p.a, p.b, volume/sessions, p.buf)
			}()
		}
		wg.Wait()
		relayed += time.Since(t0)
	}
	b.StopTimer()
	mb := float64(volume) * float64(b.N) / (1 << 20)
	dr, rr := mb/direct.Seconds(), mb/relayed.Seconds()
	b.ReportMetric(dr, "direct-MiB/s")
	b.ReportMetric(rr, "relayed-MiB/s")
	b.ReportMetric(rr/dr, "ratio")
}
