package dht_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// badPackets are garbage and malformed KRPC messages, including ones that
// crash an unguarded anacrolix/dht v2.23.0 node.
var badPackets = []string{
	"",
	"x",
	"d",
	"de",
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddd",
	"d1:t2:aa1:y1:qe",
	"d1:q4:ping1:t2:aa1:y1:qe",
	"d1:q13:announce_peer1:t2:aa1:y1:qe", // no "a": nil dereference
	"d1:q3:put1:t2:aa1:y1:qe",            // no "a": nil dereference
	"d2:ip1:x1:t2:aa1:y1:re",             // short compact address: negative makeslice
	"d2:ip0:1:t2:aa1:y1:re",
	"d1:rd2:id20:xxxxxxxxxxxxxxxxxxxx6:valuesl1:xee1:t2:aa1:y1:re",
	"d1:rd2:id20:xxxxxxxxxxxxxxxxxxxx5:nodes3:abce1:t2:aa1:y1:re",
	"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
	"d1:ad2:id20:xxxxxxxxxxxxxxxxxxxx9:info_hash20:yyyyyyyyyyyyyyyyyyyy4:porti99999999999999999999e5:token1:ze1:q13:announce_peer1:t2:aa1:y1:qe",
	"d1:ad2:id20:xxxxxxxxxxxxxxxxxxxxe1:q6:nosuch1:t2:aa1:y1:qe",
	"d1:eli201e5:oops!e1:t2:aa1:y1:ee",
	"d1:ei5e1:t2:aa1:y1:ee",
	"l" + string(make([]byte, 1000)),
	"i99999999999999999999999999999999e",
}

func sendGarbage(t *testing.T, to net.Addr) {
	t.Helper()
	c, err := dhttest.ListenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range badPackets {
		if _, err := c.WriteTo([]byte(p), to); err != nil {
			t.Fatal(err)
		}
	}
	for range 500 {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[0] = 'd'
		}
		if _, err := c.WriteTo(b, to); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGarbageAndMalformedKRPC(t *testing.T) {
	tn := testnet(t)
	victim := newDisc(t, tn, dht.Config{Ephemeral: dht.Bool(false)})
	sendGarbage(t, tn.Nodes[5].Addr())
	sendGarbage(t, victim.Addr())
	// Both keep working: they answer pings, and an announce through the
	// victim is found by another node.
	for _, n := range []*dht.Node{tn.Nodes[5], victim} {
		if err := tn.Nodes[0].Ping(t.Context(), n.Addr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatalf("node stopped answering after garbage: %v", err)
		}
		if n.Stats().InvalidPackets == 0 {
			t.Fatal("no invalid packet counted")
		}
	}
	tp := topic(t.Name())
	sv := join(t, victim, framework.JoinRequest{Topic: tp, Announce: true, Port: 40061})
	waitSignal(t, sv.flushCh, 10*time.Second, "victim flushed")
	b := newDisc(t, tn, dht.Config{})
	sb := join(t, b, framework.JoinRequest{Topic: tp, Lookup: true})
	waitPeer(t, sb, 40061, 10*time.Second)
}

func TestJoinErrors(t *testing.T) {
	tn := testnet(t)
	d, err := tn.ListenNode(dht.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "dht" {
		t.Fatalf("name %q", d.Name())
	}
	ctx := t.Context()
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic("x")}, newSink()); !errors.Is(err, framework.ErrInvalidJoin) {
		t.Fatalf("no lookup/announce: %v", err)
	}
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic("x"), Announce: true}, newSink()); !errors.Is(err, framework.ErrInvalidOption) {
		t.Fatalf("announce without port: %v", err)
	}
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic("x"), Lookup: true}, nil); !errors.Is(err, framework.ErrInvalidOption) {
		t.Fatalf("nil sink: %v", err)
	}
	s := join(t, d, framework.JoinRequest{Topic: topic("x"), Lookup: true})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	s.seal()
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic("x"), Lookup: true}, newSink()); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("join after close: %v", err)
	}
	if err := d.Leave(ctx, topic("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if s.lateCalls() != 0 {
		t.Fatal("sink called after Close")
	}
	for _, cfg := range []dht.Config{
		{Bootstrap: []string{"no-port"}},
		{Bootstrap: []string{"127.0.0.1:0"}},
		{Bootstrap: []string{"127.0.0.1:99999"}},
		{Bootstrap: []string{":80"}},
		{Bootstrap: []string{}, RoundMin: time.Minute, RoundMax: time.Second},
		{Bootstrap: []string{}, FastRelookups: []time.Duration{-1}},
	} {
		if _, err := dht.ListenNode(cfg); !errors.Is(err, framework.ErrInvalidOption) {
			t.Errorf("config %+v: err = %v", cfg, err)
		}
	}
}

func TestNoBootstrapFlushesAnyway(t *testing.T) {
	c, err := dhttest.ListenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := dht.ListenNode(dht.Config{PacketConn: c, Bootstrap: []string{}, NoMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := join(t, d, framework.JoinRequest{Topic: topic("alone"), Lookup: true})
	// A failed round (nobody to ask) still completes the cycle.
	waitSignal(t, s.flushCh, 5*time.Second, "flushed without any node")
}

func TestSharedSocket(t *testing.T) {
	tn := testnet(t)
	m, err := udpmux.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mk := func() *dht.Node {
		d, err := dht.ListenNode(tn.Config(dht.Config{PacketConn: m.KRPC()}))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := mk()
	tp := topic(t.Name())
	s := join(t, d, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: m.Port()})
	waitSignal(t, s.flushCh, 10*time.Second, "flushed on a shared socket")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The DHT did not close the shared socket: uTP's side still works, and
	// a new DHT can use the KRPC side again.
	peer, err := dhttest.ListenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.WriteTo([]byte{0x41, 0}, m.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	m.Other().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := m.Other().ReadFrom(make([]byte, 10)); err != nil {
		t.Fatalf("uTP side after DHT close: %v", err)
	}
	d2 := mk()
	defer d2.Close()
	s2 := join(t, d2, framework.JoinRequest{Topic: tp, Lookup: true, Port: m.Port()})
	waitSignal(t, s2.flushCh, 10*time.Second, "second DHT on the same socket")
	// The announced peer is our own socket's port: never reported.
	if n, _, _ := s2.counts(); n != 0 {
		t.Fatalf("reported ourselves: %v", s2.peers)
	}
	// The host closing the socket first must not crash the DHT.
	m.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { d2.Close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close hangs after the host closed the socket")
	}
}

// TestAdaptiveQueryTimeout: a node with the default (adaptive) QueryTimeout
// resends after a few loopback round trips once a reply was timed, not
// after DefaultQueryTimeout; a node with a QueryTimeout set keeps it.
func TestAdaptiveQueryTimeout(t *testing.T) {
	tn := testnet(t)
	// tn.Config fills QueryTimeout from the testnet: reset it to 0
	cfg := tn.Config(dht.Config{Ephemeral: dht.Bool(true)})
	cfg.QueryTimeout = 0
	c, err := dhttest.ListenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg.PacketConn = c
	adaptive, err := dht.ListenNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adaptive.Close()
	if got := adaptive.QueryTimeout(); got != time.Second {
		t.Fatalf("before any reply: %v, want 1 s", got)
	}
	target := tn.Nodes[1].Addr().(*net.UDPAddr).AddrPort()
	// a ping answered after one send is timed (a resent one is not: Karn)
	for i := 0; i < 50 && adaptive.QueryTimeout() == time.Second; i++ {
		_ = adaptive.Ping(t.Context(), target)
	}
	if got := adaptive.QueryTimeout(); got >= time.Second || got < dht.DefaultMinQueryTimeout {
		t.Fatalf("after loopback replies: %v, want within [%v, 1 s)", got, dht.DefaultMinQueryTimeout)
	}
	fixed := newDisc(t, tn, dht.Config{Ephemeral: dht.Bool(true), QueryTimeout: 700 * time.Millisecond})
	_ = fixed.Ping(t.Context(), target)
	if got := fixed.QueryTimeout(); got != 700*time.Millisecond {
		t.Fatalf("fixed QueryTimeout became %v", got)
	}
}
