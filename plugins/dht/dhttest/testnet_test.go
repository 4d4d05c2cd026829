package dhttest

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/internal/impair"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartFillsTables(t *testing.T) {
	t.Run("sockets", func(t *testing.T) { testStartFillsTables(t, false) })
	t.Run("memory", func(t *testing.T) { testStartFillsTables(t, true) })
}

func testStartFillsTables(t *testing.T, memory bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn, err := Start(ctx, 30, Options{Memory: memory})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	if len(tn.Bootstrap()) != 3 || tn.Addr() != tn.Bootstrap()[0] {
		t.Fatalf("bootstrap %v addr %v", tn.Bootstrap(), tn.Addr())
	}
	// Every node knows many others (not a star around node 0), all good.
	for i, d := range tn.Nodes {
		st := d.Stats()
		if st.GoodNodes < 10 {
			t.Fatalf("node %d knows %d good nodes", i, st.GoodNodes)
		}
		if st.ReadOnly {
			t.Fatalf("node %d is read-only", i)
		}
	}
	if tn.PacketsSent() == 0 {
		t.Fatal("no packet counted")
	}
	d, err := tn.ListenNode(dht.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ping(ctx, tn.Nodes[7].Addr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
}

func TestLoopbackConnRefusesOtherAddresses(t *testing.T) {
	c, err := ListenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := Violations()
	// 192.0.2.1 is TEST-NET-1; the packet is refused before any syscall.
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 6881}); err == nil {
		t.Fatal("sent to a non-loopback address")
	}
	if Violations() != before+1 {
		t.Fatal("violation not counted")
	}
	violations.Add(^uint64(0)) // undo, so other checks stay meaningful
	if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if !IsLoopback(&net.UDPAddr{IP: net.IPv6loopback, Port: 1}) || IsLoopback(nil) {
		t.Fatal("IsLoopback")
	}
}

// TestImpairedTestnet: after the fill, dead nodes never answer, live nodes
// answer after the impairment's delay.
func TestImpairedTestnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tn, err := Start(ctx, 20, Options{
		QueryTimeout: 300 * time.Millisecond, QueryTries: 1,
		Impair: &impair.Config{Delay: 30 * time.Millisecond}, Dead: 0.25, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	dead := tn.Dead()
	n := 0
	for i, x := range dead {
		if x {
			n++
			if i < 3 {
				t.Fatalf("bootstrap node %d is dead", i)
			}
		}
	}
	if n != 5 {
		t.Fatalf("%d dead nodes, want 5 of 20", n)
	}
	d, err := tn.ListenNode(dht.Config{Ephemeral: dht.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for i, node := range tn.Nodes {
		addr := node.Addr().(*net.UDPAddr).AddrPort()
		start := time.Now()
		err := d.Ping(ctx, addr)
		switch {
		case dead[i] && err == nil:
			t.Fatalf("dead node %d answered", i)
		case !dead[i] && err == nil && time.Since(start) < 30*time.Millisecond:
			t.Fatalf("node %d answered in %v, under the 30 ms delay", i, time.Since(start))
		}
		// a live node may miss a 300 ms timeout on a busy machine: no rule
	}
}
