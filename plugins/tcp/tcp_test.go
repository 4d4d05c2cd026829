package tcp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func peerOf(l net.Listener) framework.Peer {
	return framework.Peer{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port}
}

func TestListenDialRoundTripWithHalfClose(t *testing.T) {
	tr := tcp.New()
	l, err := tr.Listen(context.Background(), "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err == nil {
			_, err = c.Write(append([]byte("echo:"), b...))
		}
		done <- err
	}()
	c, err := tr.Dial(context.Background(), peerOf(l))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != l.Addr().String() {
		t.Fatalf("remote addr %s, want %s", c.RemoteAddr(), l.Addr())
	}
	c.Write([]byte("hi"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "echo:hi" {
		t.Fatalf("got %q %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListenOnTakenPortIsErrPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = tcp.New().Listen(context.Background(), "127.0.0.1", l.Addr().(*net.TCPAddr).Port)
	if !errors.Is(err, framework.ErrPortInUse) {
		t.Fatalf("err = %v, want ErrPortInUse", err)
	}
}

func TestDialClosedPortFailsFast(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	p := peerOf(l)
	l.Close()
	start := time.Now()
	if _, err := tcp.New().Dial(context.Background(), p); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestDialHonoursContextCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	_, err := tcp.New().Dial(ctx, peerOf(l))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCloseUnblocksAccept(t *testing.T) {
	l, err := tcp.New().Listen(context.Background(), "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("accept still blocked after close")
	}
}
