package main_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/remotetest"
)

// bin is this example built as a separate binary, as a plugin author ships it.
var bin string

func TestMain(m *testing.M) { remotetest.Main(m, ".", &bin) }

// start runs the plugin with its sockets in dir; it stops when the check
// (or test) that started it ends.
func start(dir string, cleanup func(func())) (*remote.Transport, error) {
	tr, err := remote.NewTransport(remote.Config{
		Path:        bin,
		Args:        []string{"-dir", dir},
		CallTimeout: 10 * time.Second,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	cleanup(func() { tr.Close() })
	return tr, nil
}

// The whole transport suite passes against the plugin out of process. All
// instances share one socket directory: it is the "machine" they run on.
func TestConformance(t *testing.T) {
	dir := shortTempDir(t)
	conformance.RunTransportSuite(t, func(ct *conformance.T) (framework.Transport, error) {
		return start(dir, ct.Cleanup)
	}, conformance.PerCheckTimeout(30*time.Second))
}

// The directory also comes from the environment; a socket left behind by a
// crashed listener is reclaimed, and a live one is a taken port.
func TestEnvDirAndStaleSocket(t *testing.T) {
	dir := shortTempDir(t)
	tr, err := remote.NewTransport(remote.Config{Path: bin, Env: []string{"UNIXTRANSPORT_DIR=" + dir}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// a stale socket: bound, then its process "died" without unlinking it
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Net: "unix", Name: filepath.Join(dir, "50001.sock")})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err := tr.Listen(ctx, "127.0.0.1", 50001)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()
	if _, err := tr.Listen(ctx, "127.0.0.1", 50001); !errors.Is(err, framework.ErrPortInUse) {
		t.Fatalf("Listen on a live port: %v, want ErrPortInUse", err)
	}
	// (telling live from stale made no connection: the first Accept below
	// is the Dial's)

	acc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	c, err := tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: 50001})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-acc
	if !ok {
		t.Fatal("Accept failed")
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%d.dial.sock", c.LocalAddr().(*net.TCPAddr).Port))); err != nil {
		t.Errorf("the dialler's socket: %v", err)
	}
	c.Write([]byte("x"))
	c.Close()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(s); err != nil || string(b) != "x" {
		t.Errorf("read %q, %v", b, err)
	}
	s.Close()

	// a peer on another machine is never dialled to a local socket
	if _, err := tr.Dial(ctx, framework.Peer{Host: "192.0.2.1", Port: 50001}); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("Dial to another machine: %v, want EHOSTUNREACH", err)
	}
	// nothing listens: refused at once, like TCP
	if _, err := tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: 50002}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial to a closed port: %v, want ECONNREFUSED", err)
	}
}

// shortTempDir is a temporary directory with a short path: a unix socket
// path must fit in 108 bytes, and t.TempDir's names are long.
func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ut-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// After kill -9 the host restarts the plugin and listens again on the same
// port: the socket file the dead instance left behind is reclaimed.
func TestListenerSurvivesPluginCrash(t *testing.T) {
	dir := shortTempDir(t)
	restarted := make(chan struct{}, 1)
	tr, err := remote.NewTransport(remote.Config{
		Path:    bin,
		Args:    []string{"-dir", dir},
		Logger:  slog.New(slog.DiscardHandler),
		Restart: remote.RestartPolicy{MinBackoff: 10 * time.Millisecond},
		OnEvent: func(e remote.Event) {
			if e.Kind == remote.EventRestarted {
				select {
				case restarted <- struct{}{}:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := tr.Listen(ctx, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p, err := os.FindProcess(tr.PID()) // the plugin this test started
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-restarted:
	case <-ctx.Done():
		t.Fatal("the plugin was not restarted")
	}
	acc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil { // Accept fails until the host listened again
			c, err := l.Accept()
			if err == nil {
				c.Close()
				acc <- nil
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		acc <- ctx.Err()
	}()
	c, err := tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: port})
	for err != nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		c, err = tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: port})
	}
	if err != nil {
		t.Fatalf("Dial after the restart: %v", err)
	}
	c.Close()
	if err := <-acc; err != nil {
		t.Fatalf("Accept after the restart: %v", err)
	}
}

// Two swarms, each with its own plugin instance, find each other through a
// static list and talk over unix sockets (what README.md shows).
func TestSwarmOverPlugin(t *testing.T) {
	dir := shortTempDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic := framework.TopicFromString("unixtransport example")
	quiet := framework.WithLogger(slog.New(slog.DiscardHandler))

	str, err := start(dir, t.Cleanup)
	if err != nil {
		t.Fatal(err)
	}
	server, err := dwebswarm.New(ctx, framework.WithTransport(str), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), quiet,
		framework.WithConnectionHandler(func(c *framework.Conn) {
			defer c.Close()
			msg, _ := io.ReadAll(c)
			fmt.Fprintf(c, "hello, %s", msg)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := server.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}

	ctr, err := start(dir, t.Cleanup)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dwebswarm.New(ctx, framework.WithTransport(ctr), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), quiet,
		dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(server.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	events := client.Subscribe()
	defer events.Close()
	if err := client.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev, open := <-events.C():
			if !open {
				t.Fatal("events closed")
			}
			e, ok := ev.(*framework.ConnectionEvent)
			if !ok {
				continue
			}
			if e.Conn.Type() != "unix" {
				t.Errorf("connection type %q, want unix", e.Conn.Type())
			}
			e.Conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(e.Conn, "client")
			e.Conn.CloseWrite()
			if reply, err := io.ReadAll(e.Conn); err != nil || string(reply) != "hello, client" {
				t.Errorf("reply %q, %v", reply, err)
			}
			return
		case <-ctx.Done():
			t.Fatal("no connection over the plugin")
		}
	}
}
