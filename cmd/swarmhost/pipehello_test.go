package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (dialled, accepted net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	d, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-acc
	if a == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

func agreeWithin(t *testing.T, a *pipeAgreement) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := a.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameLink checks that x (one pipe's pick) and y (the other's) are the two
// ends of one connection, by sending bytes both ways.
func sameLink(t *testing.T, x, y net.Conn) {
	t.Helper()
	if x.LocalAddr().String() != y.RemoteAddr().String() || x.RemoteAddr().String() != y.LocalAddr().String() {
		t.Fatalf("the pipes chose different connections: %v-%v and %v-%v", x.LocalAddr(), x.RemoteAddr(), y.LocalAddr(), y.RemoteAddr())
	}
	go x.Write([]byte("ping"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(y, b); err != nil || string(b) != "ping" {
		t.Fatalf("read %q, %v", b, err)
	}
}

var quiet = slog.New(slog.DiscardHandler)

// The dialler's race loser reaches the acceptor too, closed without a byte
// written; the acceptor speaks first (the dialler has nothing to send). Both
// pipes keep the winner, whichever connection arrives first.
func TestPipeHandshakeIgnoresTheDiallersLoser(t *testing.T) {
	for i := range 50 {
		winD, winA := tcpPair(t)
		loseD, loseA := tcpPair(t)
		loseD.Close() // the dialler's engine closes its loser at once
		dialler, acceptor := newPipeAgreement(quiet), newPipeAgreement(quiet)
		if i%2 == 0 {
			acceptor.add(loseA)
			acceptor.add(winA)
		} else {
			acceptor.add(winA)
			acceptor.add(loseA)
		}
		dialler.add(winD)
		d, a := agreeWithin(t, dialler), agreeWithin(t, acceptor)
		if a != winA || d != winD {
			t.Fatalf("run %d: the acceptor kept the loser", i)
		}
		sameLink(t, a, d)
		dialler.stop()
		acceptor.stop()
	}
}

// Two pipes that both announce dial each other: both connections are live,
// and the pipes still keep the same one.
func TestPipeHandshakeAgreesWhenBothDial(t *testing.T) {
	for i := range 50 {
		ab, ba := tcpPair(t)  // A dialled B
		bb, ab2 := tcpPair(t) // B dialled A
		a, b := newPipeAgreement(quiet), newPipeAgreement(quiet)
		if i%2 == 0 {
			a.add(ab)
			a.add(ab2)
			b.add(bb)
			b.add(ba)
		} else {
			b.add(ba)
			b.add(bb)
			a.add(ab2)
			a.add(ab)
		}
		x, y := agreeWithin(t, a), agreeWithin(t, b)
		sameLink(t, x, y)
		a.stop()
		b.stop()
	}
}

// A connection arriving after the choice is closed; a peer that is not a
// pipe is never chosen.
func TestPipeHandshakeClosesLateAndForeignConnections(t *testing.T) {
	x, y := tcpPair(t)
	a, b := newPipeAgreement(quiet), newPipeAgreement(quiet)
	a.add(x)
	b.add(y)
	agreeWithin(t, a)
	agreeWithin(t, b)
	lateD, lateA := tcpPair(t)
	a.add(lateA)
	if _, err := lateD.Read(make([]byte, 1)); err == nil {
		t.Fatal("a late connection was not closed")
	}
	a.stop()
	b.stop()

	fd, fa := tcpPair(t)
	c := newPipeAgreement(quiet)
	c.add(fa)
	fd.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if got, err := c.wait(ctx); err == nil {
		t.Fatalf("chose a foreign connection %v", got.RemoteAddr())
	}
	c.stop()
}
