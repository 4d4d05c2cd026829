package relay_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// freezer is a TCP proxy that can die silently: after freeze it drops
// every byte without closing anything and accepts no more connections,
// like a relay host that lost power.
type freezer struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezer(t testing.TB, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			f.wg.Add(2)
			go f.pipe(c, u)
			go f.pipe(u, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		frozen := f.frozen
		f.mu.Unlock()
		if n > 0 && !frozen {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF && !frozen {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
	f.ln.Close()
}

// chanAnnouncer reports every announcement on a channel.
type chanAnnouncer chan [20]byte

func (a chanAnnouncer) AnnounceInfohash(ih [20]byte, _ int, flushed func()) (func(), error) {
	a <- ih
	if flushed != nil {
		flushed()
	}
	return func() {}, nil
}

// TestSilentRelayReplacedWithinTheTimeout: the relay B holds dies without
// a word (its host drops every packet); B notices within the session
// timeout (15 s, on B's clock), reserves at the next relay and announces
// its topics there again.
func TestSilentRelayReplacedWithinTheTimeout(t *testing.T) {
	r1 := bareRelay(t, relay.ServerConfig{Timeout: time.Hour})
	ann2 := make(chanAnnouncer, 8)
	r2 := bareRelay(t, relay.ServerConfig{Announcer: ann2})
	front := newFreezer(t, r1.Addr().String())
	clk := clockwork.NewFakeClock()
	c, _ := bareClient(t, relay.ClientConfig{Clock: clk,
		Relays: []string{r1.PublicKey().String() + "@" + front.ln.Addr().String(), pinned(r2)}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := c.WaitReservation(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Key != r1.PublicKey() {
		t.Fatalf("first reservation at %s, want r1", first.Key.Short())
	}
	topic := framework.TopicFromString("failover")
	if err := c.Join(ctx, framework.JoinRequest{Topic: topic, Announce: true, Port: 1}, nopSink{}); err != nil {
		t.Fatal(err)
	}
	front.freeze()
	clk.Advance(secure.DefaultTimeout + time.Second)
	second, err := c.WaitReservation(ctx, first.Attempts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Key != r2.PublicKey() {
		t.Fatalf("replacement at %s, want r2", second.Key.Short())
	}
	for want := dht.Infohash(topic); ; { // r2 lists itself first
		select {
		case ih := <-ann2:
			if ih == want {
				return
			}
			if ih != dht.Infohash(relay.Topic) {
				t.Fatalf("r2 announced %x", ih)
			}
		case <-ctx.Done():
			t.Fatal("the topic was not announced at the new relay")
		}
	}
}
