package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/internal/jsonschema"
)

// startStoppableDaemon is startTestDaemon with a stop function, for a test
// that ends a daemon before its cleanup (stop is idempotent; the cleanup
// calls it too).
func startStoppableDaemon(t *testing.T, cfg, metrics string) (*daemon, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "swarmhost.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	d, err := startDaemon(context.Background(), path, metrics, stdio{in: strings.NewReader(""), out: io.Discard, err: &errOut})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, errOut.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.serve(ctx, nil) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			if err := d.shutdown(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", errOut.String())
		}
	})
	return d, stop
}

// pagePair is what the status page tests look at: daemon a (observed,
// metrics on loopback) joins topic "ui-demo" and serves a web server as
// service "web"; daemon b (started by startB) joins the topic too and
// forwards 127.0.0.1:bWeb to the service. A daemon's queue never dials on
// its own (services make the connections, one swarm connection per
// forwarded TCP connection), so a swarm connection between them lives as
// long as a TCP connection through b's end of the service ([pagePair.hold]).
type pagePair struct {
	a, b   *daemon
	stopB  func()
	bWeb   string // b's local end of service "web"
	status string // a's /status URL
}

func newPagePair(t *testing.T) *pagePair {
	t.Helper()
	blob := strings.Repeat("swarm ", 10000) // 60 kB a request, for the traffic chart
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, blob)
	}))
	t.Cleanup(web.Close)
	a, _ := startStoppableDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
topics:
  - {topic: ui-demo, announce: true}
services:
  - {name: web, topic: web-topic, serve: %q}
`, freePort(t), strings.TrimPrefix(web.URL, "http://")), "127.0.0.1:0")
	return &pagePair{a: a, status: "http://" + a.obs.Addr() + observe.StatusPath}
}

// startB starts daemon b, connecting to a by a static peer list.
func (p *pagePair) startB(t *testing.T) {
	t.Helper()
	pb, pc := freePort(t), freePort(t)
	p.b, p.stopB = startStoppableDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
discoveries:
  - name: static
    options: {peers: [127.0.0.1:%d]}
topics:
  - {topic: ui-demo}
services:
  - {name: web, topic: web-topic, connect: 127.0.0.1:%d}
`, pb, p.a.sw.Port(), pc), "127.0.0.1:0")
	p.bWeb = fmt.Sprintf("127.0.0.1:%d", pc)
}

// held is an HTTP/1.1 keep-alive connection through b's end of the
// service: while it is open, a and b hold one swarm connection for it.
type held struct {
	c  net.Conn
	br *bufio.Reader
}

// hold opens a held connection and makes one request on it (the forwarded
// stream, and so the swarm connection, is up when it returns). The cleanup
// closes it.
func (p *pagePair) hold(t *testing.T) *held {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.bWeb, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &held{c: c, br: bufio.NewReader(c)}
	if err := h.request(); err != nil {
		t.Fatalf("request through the service: %v", err)
	}
	return h
}

// request makes one GET on the held connection and reads the answer.
func (h *held) request() error {
	h.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(h.c, "GET / HTTP/1.1\r\nHost: web\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n == 0 || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s, %d bytes, %v", resp.Status, n, err)
	}
	return nil
}

// A live daemon's /status, with a connection open and bytes forwarded,
// matches the committed schema (observe's status.schema.json), on both the
// serving and the connecting side.
func TestDaemonStatusMatchesSchema(t *testing.T) {
	p := newPagePair(t)
	p.startB(t)
	p.hold(t)
	for _, d := range []*daemon{p.a, p.b} {
		body := get(t, http.DefaultClient, "http://"+d.obs.Addr()+observe.StatusPath)
		if err := jsonschema.Validate(observe.StatusSchema, []byte(body)); err != nil {
			t.Errorf("%v\n%s", err, body)
		}
		if !strings.Contains(body, `"type": "tcp"`) || !strings.Contains(body, `"name": "web"`) {
			t.Errorf("document checked lacks the connection or the service:\n%s", body)
		}
	}
}
