package forward

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// A dialler's transport race can still deliver its losers to the serving
// side, closed or not yet closed, without a byte written. The serving side
// routes only the connection that carries a header, and its Close ends the
// header-less ones at once (a uTP SetReadDeadline after Close used to block
// serveConn forever, and Close with it).
func TestServeKeepsOnlyConnectionsWithAHeader(t *testing.T) {
	newUTP := func() *utp.Transport {
		tr, err := utp.New(utp.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	// plaintext: with sessions the raw losers below never complete a
	// handshake and never reach the manager
	a := newSwarm(t, framework.WithTransport(tcp.New(), newUTP()), framework.WithPlaintext())
	ma := newManager(t, a, Options{})
	b := newSwarm(t, framework.WithTransport(tcp.New(), newUTP()), dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(a.Port())), framework.WithPlaintext())
	mb := newManager(t, b, Options{})
	topic := framework.TopicFromString(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ma.Add(ctx, Service{Name: "s", Topic: topic, Serve: echoServer(t)}); err != nil {
		t.Fatal(err)
	}

	// the losers: uTP (one closed, one open) and TCP (closed)
	mux, err := udpmux.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	tr, err := utp.New(utp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.UsePacketConn(mux.Other()); err != nil {
		t.Fatal(err)
	}
	peerA := framework.Peer{Host: "127.0.0.1", Port: a.Port()}
	closed, err := tr.Dial(ctx, peerA)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	open, err := tr.Dial(ctx, peerA)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	tcpLoser, err := net.Dial("tcp", peerA.Addr())
	if err != nil {
		t.Fatal(err)
	}
	tcpLoser.Close()

	// the winner carries the header and is served
	if err := mb.Add(ctx, Service{Name: "s", Topic: topic, Connect: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := mb.WaitPeer(ctx, topic); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, mb.Addr("s").String()), "served once")
	if s := ma.Metrics("s").Snapshot(); s.Connections != 1 {
		t.Fatalf("served %d connections, want 1", s.Connections)
	}

	closing := make(chan error, 1)
	go func() { closing <- ma.Close() }()
	select {
	case err := <-closing:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatalf("Close blocked with a header-less uTP connection pending")
	}
	// the open loser was closed by the serving side
	open.SetReadDeadline(time.Now().Add(wait))
	if n, err := io.Copy(io.Discard, open); err != nil || n != 0 {
		t.Fatalf("the open loser read %d bytes, %v", n, err)
	}
}
