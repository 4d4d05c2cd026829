package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/forward"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// keyFileFor writes a new key file in dir and returns its path and key.
func keyFileFor(t *testing.T, dir, name string) (string, secure.PublicKey) {
	t.Helper()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := secure.WriteKeyFile(path, kp); err != nil {
		t.Fatal(err)
	}
	return path, kp.Public
}

// countingEcho is a loopback echo server counting the connections it
// accepted; closed at cleanup.
func countingEcho(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), &n
}

// echoThrough sends msg through the forwarded port and reports whether
// it came back; false when the connection was closed without data.
func echoThrough(t *testing.T, port int, msg string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("port %d: neither answered nor closed", port)
	}
	return err == nil && string(got) == msg
}

// TestDaemonKeyAccess: a server daemon's serve service allows one laptop
// key (in an allow file): a third key is refused before the local service
// sees a connection, the refusal is counted by service and reason in
// /status; the allowed key gets through; a reload that re-reads the allow
// file swaps who may; a connect service pinned to the wrong server key is
// refused before anything reaches the server.
func TestDaemonKeyAccess(t *testing.T) {
	dir := t.TempDir()
	srvKeyFile, srvKey := keyFileFor(t, dir, "server.key")
	lapKeyFile, lapKey := keyFileFor(t, dir, "laptop.key")
	thirdKeyFile, thirdKey := keyFileFor(t, dir, "third.key")
	allowPath := filepath.Join(dir, "allowed.keys")
	writeAllow := func(k secure.PublicKey) {
		t.Helper()
		if err := os.WriteFile(allowPath, []byte("# who may use web\n"+k.String()+"  # "+k.Short()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeAllow(lapKey)
	target, accepted := countingEcho(t)
	ps := freePort(t)
	srv, _ := startTestDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, key: %q}
services:
  - {name: web, topic: web-topic, serve: %q, allowFile: %q}
`, ps, srvKeyFile, target, allowPath), "127.0.0.1:0")

	client := func(keyFile string, pin secure.PublicKey) (*daemon, string, int) {
		t.Helper()
		port := freePort(t)
		pinLine := ""
		if !pin.IsZero() {
			pinLine = ", serverKey: " + pin.String()
		}
		d, path := startTestDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, key: %q}
discoveries:
  - name: static
    options: {peers: [127.0.0.1:%d]}
services:
  - {name: web, topic: web-topic, connect: 127.0.0.1:%d%s}
`, freePort(t), keyFile, ps, port, pinLine), "")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.fwd.WaitPeer(ctx, d.cfg.Services()[0].Topic); err != nil {
			t.Fatal(err)
		}
		return d, path, port
	}
	_, _, thirdPort := client(thirdKeyFile, secure.PublicKey{})
	lap, lapPath, lapPort := client(lapKeyFile, srvKey)

	if echoThrough(t, thirdPort, "third") {
		t.Fatal("a key not in the allow file got through")
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the local service saw %d connections from a refused key", n)
	}
	st := srv.obs.Status(context.Background())
	if len(st.Refusals) != 1 || st.Refusals[0].Service != "web" || st.Refusals[0].Reason != forward.ReasonKeyNotAllowed || st.Refusals[0].Count != 1 {
		t.Errorf("status refusals %+v, want web key_not_allowed 1", st.Refusals)
	}
	if !echoThrough(t, lapPort, "laptop") || accepted.Load() != 1 {
		t.Fatalf("the allowed, pinned laptop did not get through (%d accepted)", accepted.Load())
	}
	// while a forwarded connection is open, the server lists its key
	open, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", lapPort), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	open.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(open, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(open, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, c := range srv.obs.Status(context.Background()).Connections {
		keys[c.RemoteKey] = true
	}
	open.Close()
	if !keys[lapKey.String()] {
		t.Errorf("server status lists keys %v, want the laptop's %s", keys, lapKey)
	}

	// reload with the allow file naming the third key only
	writeAllow(thirdKey)
	if err := srv.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !echoThrough(t, thirdPort, "third again") {
		t.Fatal("the key added to the allow file is still refused after reload")
	}
	if echoThrough(t, lapPort, "laptop again") {
		t.Fatal("the key removed from the allow file still gets through after reload")
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("local service saw %d connections, want 3", n)
	}

	// the laptop pins a key the server does not have
	writeAllow(lapKey)
	if err := srv.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(lapPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lapPath, []byte(strings.Replace(string(cfg), srvKey.String(), thirdKey.String(), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := lap.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lap.fwd.WaitPeer(ctx, lap.cfg.Services()[0].Topic); err != nil {
		t.Fatal(err)
	}
	before := srv.fwd.Metrics("web").Snapshot()
	if echoThrough(t, lapPort, "to the wrong server") {
		t.Fatal("a connect service pinned to another key got through")
	}
	if n := lap.fwd.Metrics("web").RefusedServerKey.Load(); n != 1 {
		t.Errorf("laptop refusals server_key_mismatch = %d, want 1", n)
	}
	if after := srv.fwd.Metrics("web").Snapshot(); after.Connections != before.Connections || accepted.Load() != 3 {
		t.Errorf("the server forwarded a pinned-away connection: %+v → %+v", before, after)
	}
}
