package dht_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// muxDisc starts a Node on a udpmux socket and returns the socket's
// non-KRPC side, where hole-punch probes arrive.
func muxDisc(t *testing.T, cfg dht.Config) (*dht.Node, net.PacketConn, int) {
	t.Helper()
	m, err := udpmux.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg = testnet(t).Config(cfg)
	cfg.PacketConn = m.KRPC()
	d, err := dht.ListenNode(cfg)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); m.Close() })
	return d, m.Other(), m.Port()
}

// waitProbe waits for a hole-punch probe on pc from port.
func waitProbe(t *testing.T, pc net.PacketConn, from int) {
	t.Helper()
	buf := make([]byte, 2048)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer pc.SetReadDeadline(time.Time{})
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no probe from port %d: %v", from, err)
		}
		if bytes.Equal(buf[:n], dht.PunchProbe) && addr.(*net.UDPAddr).Port == from {
			return
		}
	}
}

func TestHolePunchRelaysThroughTheReferrer(t *testing.T) {
	a, aOther, aPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	b, bOther, bPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	tp := topic(t.Name())
	sb := join(t, b, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: bPort})
	waitSignal(t, sb.flushCh, 10*time.Second, "announce flushed")
	sa := join(t, a, framework.JoinRequest{Topic: tp, Lookup: true, Port: aPort})
	p := waitPeer(t, sa, bPort, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.HolePunch(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitProbe(t, aOther, bPort) // B was told through the referrer and probed A
	waitProbe(t, bOther, aPort) // A probed B itself
}

func TestHolePunchRefusedForPeerThatDidNotAnnounce(t *testing.T) {
	a, _, aPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	b, _, bPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	tp := topic(t.Name())
	sb := join(t, b, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: bPort})
	waitSignal(t, sb.flushCh, 10*time.Second, "announce flushed")
	sa := join(t, a, framework.JoinRequest{Topic: tp, Lookup: true, Port: aPort})
	p := waitPeer(t, sa, bPort, 10*time.Second)
	p.Port = 9 // an address the referrer never stored: no relaying to third parties
	err := a.HolePunch(context.Background(), p)
	if !errors.Is(err, dht.ErrHolePunch) {
		t.Fatalf("err = %v, want ErrHolePunch", err)
	}
	if err := a.HolePunch(context.Background(), framework.Peer{Host: "127.0.0.1", Port: 1}); !errors.Is(err, dht.ErrHolePunch) {
		t.Fatalf("no referrer: %v", err)
	}
}

// query sends one raw KRPC query to addr from a fresh loopback socket and
// returns the decoded answer.
func query(t *testing.T, addr net.Addr, m krpc.Msg) krpc.Msg {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return queryFrom(t, c, addr, m)
}

// queryFrom sends one raw KRPC query from c and returns the decoded answer.
func queryFrom(t *testing.T, c *net.UDPConn, addr net.Addr, m krpc.Msg) krpc.Msg {
	t.Helper()
	b, err := bencode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(b, addr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 2048)
	var n int
	for {
		n, _, err = c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if n > 0 && buf[0] == 'd' {
			break // skip hole-punch probes: we asked for them
		}
	}
	var out krpc.Msg
	if err := bencode.Unmarshal(buf[:n], &out); err != nil {
		t.Fatalf("bad answer %q: %v", buf[:n], err)
	}
	return out
}

func TestMalformedHolePunchQueriesGetErrorsAndNodeKeepsWorking(t *testing.T) {
	tn := testnet(t)
	node := tn.Nodes[3].Addr()
	ih := dht.Infohash(topic("x"))
	var id krpc.ID
	id[0] = 1
	bad := []krpc.MsgArgs{
		{ID: id},                               // no info_hash, no token
		{ID: id, InfoHash: ih, Token: "short"}, // token not a compact address
		{ID: id, InfoHash: ih, Token: "\x7f\x00\x00\x01\x00\x00"},                    // port 0
		{ID: id, InfoHash: ih, Token: "\x00\x00\x00\x00\x10\x00"},                    // unspecified IP
		{ID: id, InfoHash: ih, Token: "\x7f\x00\x00\x01\x10\x00", ImpliedPort: true}, // not announcing
	}
	for i, a := range bad {
		ans := query(t, node, krpc.Msg{T: "hp", Y: "q", Q: dht.HolePunchMethod, A: &a})
		if ans.Y != "e" || ans.E == nil {
			t.Fatalf("case %d: answer %+v, want an error", i, ans)
		}
	}
	// still answers pings
	ans := query(t, node, krpc.Msg{T: "pi", Y: "q", Q: "ping", A: &krpc.MsgArgs{ID: id}})
	if ans.Y != "r" {
		t.Fatalf("ping after malformed hole punches: %+v", ans)
	}
}

func TestHolePunchRelayIsRateLimitedPerSource(t *testing.T) {
	a, _, aPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	b, _, bPort := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	tp := topic(t.Name())
	sb := join(t, b, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: bPort})
	waitSignal(t, sb.flushCh, 10*time.Second, "announce flushed")
	sa := join(t, a, framework.JoinRequest{Topic: tp, Lookup: true, Port: aPort})
	p := waitPeer(t, sa, bPort, 10*time.Second)
	ref := &net.UDPAddr{IP: net.ParseIP(p.Referrer.Host), Port: p.Referrer.Port}
	var id krpc.ID
	id[0] = 2
	token := string([]byte{127, 0, 0, 1, byte(bPort >> 8), byte(bPort)})
	limited := 0
	for range 3 * dht.RelayPerSource {
		ans := query(t, ref, krpc.Msg{T: "rl", Y: "q", Q: dht.HolePunchMethod, A: &krpc.MsgArgs{ID: id, InfoHash: dht.Infohash(tp), Token: token}})
		if ans.E != nil && ans.E.Msg == "rate limited" {
			limited++
		}
	}
	// each query comes from a new socket but the same IP: the per-source
	// limit (burst RelayPerSource) refuses the rest
	if limited < dht.RelayPerSource {
		t.Fatalf("%d of %d requests refused, want at least %d", limited, 3*dht.RelayPerSource, dht.RelayPerSource)
	}
}
