package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// logWatch is a log sink that tests can wait on for a line.
type logWatch struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// await waits until the log contains s.
func (l *logWatch) await(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		ok, ch := strings.Contains(l.b.String(), s), l.changed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("log never showed %q:\n%s", s, l.String())
		}
	}
}

// testDaemon is `swarmhost run` in this process.
type testDaemon struct {
	log    *logWatch
	cancel context.CancelFunc // SIGTERM
	done   chan int
	code   int
	once   sync.Once
}

// runDaemon runs `swarmhost run` on cfg until it is running; the cleanup
// stops it.
func runDaemon(t *testing.T, cfg string) *testDaemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "swarmhost.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &testDaemon{log: newLogWatch(), cancel: cancel, done: make(chan int, 1), code: -1}
	go func() {
		d.done <- run(ctx, []string{"run", "--config", path}, stdio{in: strings.NewReader(""), out: io.Discard, err: d.log})
	}()
	t.Cleanup(func() { d.cancel(); d.wait(t) })
	d.log.await(t, "msg=running")
	return d
}

// wait returns the exit code once the daemon stopped, bounded by the
// shutdown timeout and a margin.
func (d *testDaemon) wait(t *testing.T) int {
	t.Helper()
	d.once.Do(func() {
		select {
		case d.code = <-d.done:
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Errorf("daemon not stopped within %v:\n%s", shutdownTimeout+5*time.Second, d.log.String())
		}
	})
	return d.code
}

// Issue 11, item 2: a daemon with tcp + utp that has served a forwarded
// connection, and holds uTP connections that never sent a forwarding header
// (a dialler's race losers: one closed, one still open), stops cleanly
// within its bound, exit 0. It used to hang in a uTP SetReadDeadline after
// Close ("shutdown: not stopped within 10s", exit 1).
func TestDaemonWithTCPAndUTPStopsCleanlyAfterForwarding(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var echoes sync.WaitGroup
	defer func() { echo.Close(); echoes.Wait() }()
	echoes.Add(1)
	go func() {
		defer echoes.Done()
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			echoes.Add(1)
			go func() { defer echoes.Done(); io.Copy(c, c); c.Close() }()
		}
	}()

	pa, pb, pc := freePort(t), freePort(t), freePort(t)
	a := runDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
transports: [{name: tcp}, {name: utp}]
services:
  - {name: echo, topic: echo-topic, serve: %q}
`, pa, echo.Addr().String()))
	b := runDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
transports: [{name: tcp}, {name: utp}]
discoveries:
  - name: static
    options: {peers: [127.0.0.1:%d]}
services:
  - {name: echo, topic: echo-topic, connect: 127.0.0.1:%d}
`, pb, pa, pc))

	// two uTP connections to A that never send a header, as a dialler's
	// race losers: one closed at once, one still open at the shutdown
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peerA := framework.Peer{Host: "127.0.0.1", Port: pa}
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

	// a forwarded connection through B to A's echo target
	fc, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", pc), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(fc, "through the swarm"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("through the swarm"))
	if _, err := io.ReadFull(fc, got); err != nil || string(got) != "through the swarm" {
		t.Fatalf("echo %q, %v\nA:\n%s\nB:\n%s", got, err, a.log.String(), b.log.String())
	}
	fc.Close()

	// SIGTERM: A closes the header-less connection (its FIN is the signal),
	// then the loser's dialler closes its end too
	a.cancel()
	open.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, open); err != nil || n != 0 {
		t.Fatalf("the open loser read %d bytes, %v (want A's close)", n, err)
	}
	open.Close()
	if code := a.wait(t); code != 0 {
		t.Fatalf("serving daemon exit %d:\n%s", code, a.log.String())
	}
	if !strings.Contains(a.log.String(), "msg=stopped") || strings.Contains(a.log.String(), "did not drain") {
		t.Fatalf("serving daemon did not stop cleanly:\n%s", a.log.String())
	}
	b.cancel()
	if code := b.wait(t); code != 0 {
		t.Fatalf("connecting daemon exit %d:\n%s", code, b.log.String())
	}
}
