package utp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// blackHole is a PacketConn that, once cut, drops every datagram it would
// send (counting them) or receive: a path that died.
type blackHole struct {
	net.PacketConn
	cut     atomic.Bool
	dropped atomic.Int64
}

func (p *blackHole) WriteTo(b []byte, to net.Addr) (int, error) {
	if p.cut.Load() {
		p.dropped.Add(1)
		return len(b), nil
	}
	return p.PacketConn.WriteTo(b, to)
}

func (p *blackHole) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := p.PacketConn.ReadFrom(b)
		if err != nil || !p.cut.Load() {
			return n, from, err
		}
	}
}

// Into a dead path the tail-loss probe and the retransmission timeout back
// off: a packet written after the path died is sent again a handful of
// times (2 probes, then RTOs doubling from ≥ 200 ms) until IdleTimeout
// ends the connection. Before the back-off, a probe went out every
// max(2·SRTT, 5 ms): hundreds of datagrams in 2 s on loopback.
func TestDeadPathBacksOff(t *testing.T) {
	const idle = 2 * time.Second
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	bh := &blackHole{PacketConn: pc}
	tr, err := utp.New(utp.Config{IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.UsePacketConn(bh); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, utp.Config{})
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := b.ln.Accept()
		if err == nil {
			accepted <- s
		}
		close(accepted)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, b.peer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer s.Close()
	// some traffic, so that the RTT is measured (sub-millisecond here)
	if _, err := c.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	bh.cut.Store(true)
	if _, err := c.Write(make([]byte, 1000)); err != nil { // one packet
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * idle))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, utp.ErrPeerSilent) {
		t.Fatalf("read: %v, want ErrPeerSilent", err)
	}
	// 1 packet + 2 probes + RTOs at 0.2, 0.6, 1.4 s (at least; the RTO is
	// SRTT+4·RTTVAR ≥ 200 ms) + the RESET at the idle timeout = 7
	if n := bh.dropped.Load(); n > 10 {
		t.Fatalf("%d datagrams into the dead path in %v, want ≤ 10", n, idle)
	} else {
		t.Logf("%d datagrams into the dead path in %v", n, idle)
	}
}
