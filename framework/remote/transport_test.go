package remote_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

func TestTransportListenDialRoundTripWithHalfClose(t *testing.T) {
	for _, mode := range []string{"tcp", "relay"} {
		t.Run(mode, func(t *testing.T) {
			tr := startTransport(t, config(t, mode))
			l, err := tr.Listen(bg, "127.0.0.1", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, native := l.(*net.TCPListener); native != (mode == "tcp" && passesFDs()) {
				t.Fatalf("listener is a %T", l)
			}
			type res struct {
				remote net.Addr
				err    error
			}
			done := make(chan res, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					done <- res{err: err}
					return
				}
				defer c.Close()
				b, err := io.ReadAll(c)
				if err == nil {
					_, err = c.Write(append([]byte("echo:"), b...))
				}
				done <- res{c.RemoteAddr(), err}
			}()
			c, err := tr.Dial(bg, peerOf(l.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.RemoteAddr().String() != l.Addr().String() {
				t.Fatalf("dialled conn remote addr %s, want %s", c.RemoteAddr(), l.Addr())
			}
			if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok {
				t.Fatalf("remote addr is a %T", c.RemoteAddr())
			}
			c.Write([]byte("hi"))
			c.(interface{ CloseWrite() error }).CloseWrite()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "echo:hi" {
				t.Fatalf("got %q %v", got, err)
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.remote.String() != c.LocalAddr().String() {
				t.Fatalf("accepted conn remote addr %s, want the dialler's %s", r.remote, c.LocalAddr())
			}
		})
	}
}

func TestTransport64MiBIntactBothWays(t *testing.T) {
	const size = 64 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	for _, mode := range []string{"tcp", "relay"} {
		t.Run(mode, func(t *testing.T) {
			tr := startTransport(t, config(t, mode))
			l, err := tr.Listen(bg, "127.0.0.1", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			srv := make(chan error, 1)
			go func() { // echo everything back, then half-close
				c, err := l.Accept()
				if err != nil {
					srv <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				_, err = io.Copy(c, c)
				if err == nil {
					err = c.(interface{ CloseWrite() error }).CloseWrite()
				}
				srv <- err
			}()
			c, err := tr.Dial(bg, peerOf(l.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			wr := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				if err == nil {
					err = c.(interface{ CloseWrite() error }).CloseWrite()
				}
				wr <- err
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-wr; err != nil {
				t.Fatal(err)
			}
			if err := <-srv; err != nil {
				t.Fatal(err)
			}
			if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("got %d bytes, sha256 mismatch=%v", n, !bytes.Equal(h.Sum(nil), want[:]))
			}
		})
	}
}

func TestTransportListenTakenPortIsErrPortInUse(t *testing.T) {
	l := loopbackListener(t)
	defer l.Close()
	tr := startTransport(t, config(t, "tcp"))
	_, err := tr.Listen(bg, "127.0.0.1", l.Addr().(*net.TCPAddr).Port)
	wantErr(t, err, framework.ErrPortInUse)
}

func TestTransportDialClosedPortFailsFastAndCancels(t *testing.T) {
	tr := startTransport(t, config(t, "tcp"))
	l := loopbackListener(t)
	p := peerOf(l.Addr())
	l.Close()
	start := time.Now()
	_, err := tr.Dial(bg, p)
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("dial to a closed port: %v after %v", err, time.Since(start))
	}
	if !errors.Is(err, syscallECONNREFUSED) {
		t.Fatalf("err = %v, want ECONNREFUSED carried across", err)
	}
	ctx, cancel := contextWithCancel()
	cancel()
	l2 := loopbackListener(t)
	defer l2.Close()
	if _, err := tr.Dial(ctx, peerOf(l2.Addr())); !errors.Is(err, errCanceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A relayed connection cut by the plugin's death must not read as a clean
// EOF: the reader gets an error wrapping ErrCrashed.
func TestKill9MidTransferOfRelayedConnectionIsAnError(t *testing.T) {
	l := loopbackListener(t)
	stop := make(chan struct{})
	served := make(chan struct{})
	go func() { // stream data until stopped
		defer close(served)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); l.Close(); <-served }()

	ev := newEvents()
	cfg := config(t, "relay")
	cfg.OnEvent = ev.add
	tr := startTransport(t, cfg)
	c, err := tr.Dial(bg, peerOf(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	kill9(t, tr.PID())
	_, err = io.Copy(io.Discard, c)
	if err == nil {
		t.Fatal("reading a relay whose plugin was killed ended with a clean EOF")
	}
	wantErr(t, err, remote.ErrCrashed)
	ev.wait(t, remote.EventCrashed, 5*time.Second)
}

// A remote (user-space) listener comes back on the same port after a crash.
func TestRemoteListenerListensAgainAfterRestart(t *testing.T) {
	ev := newEvents()
	cfg := config(t, "relay")
	cfg.OnEvent = ev.add
	tr := startTransport(t, cfg)
	l, err := tr.Listen(bg, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	kill9(t, tr.PID())
	ev.wait(t, remote.EventRestarted, 5*time.Second)
	acc := make(chan error, 1)
	go func() {
		for i := 0; i < 5; i++ { // like the swarm's accept loop: retry transient errors
			c, err := l.Accept()
			if err == nil {
				io.Copy(c, c)
				c.Close()
				acc <- nil
				return
			}
			if errors.Is(err, net.ErrClosed) {
				acc <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		acc <- errors.New("accept kept failing")
	}()
	var c net.Conn
	for i := 0; ; i++ {
		c, err = net.DialTimeout("tcp", l.Addr().String(), time.Second)
		if err == nil {
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	roundTrip(t, c, "hello again")
	c.Close()
	select {
	case err := <-acc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("accept did not finish")
	}
}

func TestCloseUnblocksAcceptOfRemoteListener(t *testing.T) {
	tr := startTransport(t, config(t, "relay"))
	l, err := tr.Listen(bg, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(50 * time.Millisecond)
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

func TestRestartsAreBoundedThenGivesUp(t *testing.T) {
	ev := newEvents()
	cfg := config(t, "tcp")
	cfg.OnEvent = ev.add
	cfg.Restart.MaxRestarts = 1
	tr := startTransport(t, cfg)
	kill9(t, tr.PID())
	ev.wait(t, remote.EventRestarted, 5*time.Second)
	kill9(t, tr.PID())
	gu := ev.wait(t, remote.EventGaveUp, 5*time.Second)
	t.Logf("gave up: %v", gu.Err)
	l := loopbackListener(t)
	defer l.Close()
	_, err := tr.Dial(bg, peerOf(l.Addr()))
	wantErr(t, err, remote.ErrUnavailable, "not restarting")
}

func TestHungPluginTimesOutThenIsRestarted(t *testing.T) {
	ev := newEvents()
	cfg := config(t, "hang")
	cfg.CallTimeout = 200 * time.Millisecond
	cfg.Restart.HungAfter = 2
	cfg.OnEvent = ev.add
	tr := startTransport(t, cfg)
	l := loopbackListener(t)
	defer l.Close()
	for i := 0; i < 2; i++ {
		start := time.Now()
		_, err := tr.Dial(bg, peerOf(l.Addr()))
		wantErr(t, err, remote.ErrTimeout, "did not answer Dial")
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("timeout took %v", d)
		}
	}
	ev.wait(t, remote.EventHung, 5*time.Second)
	ev.wait(t, remote.EventRestarted, 5*time.Second)
	// a caller's shorter deadline wins and reads as the caller's error
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	_, err := tr.Dial(ctx, peerOf(l.Addr()))
	if !errors.Is(err, errDeadline) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}
