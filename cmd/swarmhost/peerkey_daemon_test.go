package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// startDaemonFile starts a daemon on the config file path; stop (also
// run at cleanup) shuts it down once.
func startDaemonFile(t *testing.T, path string) (d *daemon, stop func()) {
	t.Helper()
	var errOut syncBuffer
	d, err := startDaemon(context.Background(), path, "", stdio{in: strings.NewReader(""), out: io.Discard, err: &errOut})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, errOut.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.serve(ctx, nil) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			if err := d.shutdown(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

// A laptop reaches a server by its key over a loopback DHT testnet, and
// again after the server restarted on a new port with the same key: the
// laptop's connect service names the server's key, not its address.
func TestDaemonReachesAServerByKeyAfterItMoved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, err := dhttest.Start(ctx, 20, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	bootstrap := "[" + strings.Join(tn.Bootstrap(), ", ") + "]"
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer web.Close()
	dir := t.TempDir()
	serverCfg := filepath.Join(dir, "server.yaml")
	writeServer := func(port int) {
		cfg := fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, key: server.key, bootstrap: %s}
discoveries: [{name: dht}]
services:
  - {name: web, topic: web-topic, serve: %q}
`, port, bootstrap, strings.TrimPrefix(web.URL, "http://"))
		if err := os.WriteFile(serverCfg, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startServer := func() (*daemon, func()) {
		writeServer(freePort(t))
		d, stop := startDaemonFile(t, serverCfg)
		// findable: it announces its peer topic with its service's topic
		if err := d.sw.Flushed(ctx, framework.PeerTopic(d.publicKey)); err != nil {
			t.Fatalf("server's peer topic: %v", err)
		}
		return d, stop
	}
	server, stopServer := startServer()
	key := server.publicKey

	pc := freePort(t)
	laptopCfg := filepath.Join(dir, "laptop.yaml")
	if err := os.WriteFile(laptopCfg, []byte(fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, key: laptop.key, bootstrap: %s}
discoveries: [{name: dht}]
services:
  - {name: web, topic: web-topic, connect: 127.0.0.1:%d, peerKey: %s}
`, freePort(t), bootstrap, pc, key)), 0o644); err != nil {
		t.Fatal(err)
	}
	laptop, _ := startDaemonFile(t, laptopCfg)
	if _, ok := laptop.sw.Status(framework.PeerTopic(key)); !ok {
		t.Fatal("the laptop does not look the server's key up")
	}
	if _, ok := laptop.sw.Status(framework.TopicFromString("web-topic")); ok {
		t.Fatal("the laptop looks up the service's topic: it should find the server by key only")
	}

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", pc)
	// each GET is one forwarded connection: it tries the known addresses
	// and, when they fail, looks the key up again and waits (PeerWait)
	getOK := func(path string) {
		t.Helper()
		var last string
		for i := range 3 {
			if i > 0 {
				t.Logf("GET %s attempt %d failed: %s", path, i, last)
			}
			resp, err := client.Get(base + path)
			if err != nil {
				last = err.Error()
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && string(b) == "hello "+path {
				return
			}
			last = fmt.Sprintf("%q %v", b, err)
		}
		t.Fatalf("GET %s through the key: %s", path, last)
	}
	getOK("/first")
	oldPort := server.sw.Port()
	stopServer()
	server2, _ := startServer()
	if server2.publicKey != key || server2.sw.Port() == oldPort {
		t.Fatalf("restarted server: key %s port %d (was %d)", server2.publicKey.Short(), server2.sw.Port(), oldPort)
	}
	getOK("/after-the-move")
}
