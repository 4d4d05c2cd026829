package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// startTestDaemon writes cfg to a file and starts a daemon on it; it is
// shut down at cleanup. It returns the daemon and its config path.
func startTestDaemon(t *testing.T, cfg, metrics string) (*daemon, string) {
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
	t.Cleanup(func() {
		cancel()
		<-done
		if err := d.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d, path
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Two daemons forward a real HTTP server: connect → swarm → serve.
func TestDaemonsForwardHTTPAndReload(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer web.Close()
	pa, pc, pd := freePort(t), freePort(t), freePort(t)
	a, _ := startTestDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, maxPeers: 300}
services:
  - {name: web, topic: web-topic, serve: %q}
`, pa, strings.TrimPrefix(web.URL, "http://")), "")
	_ = a
	bcfg := `
node: {host: 127.0.0.1, port: %d, maxPeers: 300}
discoveries:
  - name: static
    options: {peers: [127.0.0.1:%d]}
services:
  - {name: web, topic: web-topic, connect: 127.0.0.1:%d}
%s`
	pb := freePort(t)
	b, bpath := startTestDaemon(t, fmt.Sprintf(bcfg, pb, pa, pc, fmt.Sprintf("  - {name: other, topic: other-topic, connect: 127.0.0.1:%d}\n", pd)), "127.0.0.1:0")

	base := fmt.Sprintf("http://127.0.0.1:%d", pc)
	if got := get(t, http.DefaultClient, base+"/x"); got != "hello /x" {
		t.Fatalf("got %q", got)
	}

	// 100 concurrent requests, each on its own forwarded connection
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(fmt.Sprintf("%s/%d", base, i))
			if err != nil {
				errs <- err
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != fmt.Sprintf("hello /%d", i) {
				errs <- fmt.Errorf("request %d: %q %v", i, body, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// metrics: scrape the observer
	resp, err := http.Get("http://" + b.obs.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "dwebswarm_connections_opened_total") || !strings.Contains(string(m), `dwebswarm_bytes_in_total{name="web"}`) {
		t.Fatalf("metrics lack connection or byte counters:\n%.2000s", m)
	}

	// reload: remove service "other", add topic "extra"; an open
	// keep-alive connection through "web" keeps working
	keep := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	if got := get(t, keep, base+"/before"); got != "hello /before" {
		t.Fatalf("got %q", got)
	}
	extra := framework.TopicFromString("extra")
	if err := os.WriteFile(bpath, []byte(fmt.Sprintf(bcfg, pb, pa, pc, "topics:\n  - {topic: extra, announce: true}\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, ok := b.sw.Status(extra); !ok || !st.Announce {
		t.Fatalf("topic added by reload: %+v %v", st, ok)
	}
	if b.fwd.Addr("other") != nil {
		t.Fatal("service removed by reload still listens")
	}
	if _, ok := b.sw.Status(framework.TopicFromString("other-topic")); ok {
		t.Fatal("removed service's topic still joined")
	}
	if got := get(t, keep, base+"/after"); got != "hello /after" {
		t.Fatalf("kept connection after reload: %q", got)
	}
	keep.CloseIdleConnections()
}

func TestRunBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("node:\n  maxPeer: 3\n"), 0o644)
	code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "run", "--config", bad)
	if code != 1 || !strings.Contains(errOut, "bad.yaml:2:3") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, _ := runCmd(context.Background(), strings.NewReader(""), "run"); code != 2 {
		t.Fatalf("no --config: exit %d", code)
	}
}

// SIGINT/SIGTERM arrive as a cancelled context: the daemon stops cleanly.
func TestRunStopsGracefully(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("node: {host: 127.0.0.1, port: %d}\ntopics:\n  - {topic: t, announce: true}\n", freePort(t))), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut syncBuffer
	go func() {
		done <- run(ctx, []string{"run", "--config", path}, stdio{in: strings.NewReader(""), out: io.Discard, err: &errOut})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "msg=running") {
		if time.Now().After(deadline) {
			t.Fatalf("not running: %s", errOut.String())
		}
		time.Sleep(5 * time.Millisecond) // polls the log, bounded
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(errOut.String(), "msg=stopped") {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(shutdownTimeout + 2*time.Second):
		t.Fatal("not stopped in time")
	}
}

// pluginPIDs returns the process ids of the daemon's external plugins.
func pluginPIDs(d *daemon) []int {
	var pids []int
	var all []any
	for _, p := range d.plugins.Transports {
		all = append(all, p)
	}
	for _, p := range d.plugins.Validators {
		all = append(all, p)
	}
	for _, p := range all {
		if x, ok := p.(interface{ PID() int }); ok && x.PID() > 0 {
			pids = append(pids, x.PID())
		}
	}
	return pids
}

func externalPluginsConfig(bin string, port int) string {
	return fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
transports:
  - plugin: {path: %q, args: [plugin, serve, tcp]}
validators:
  - plugin: {path: %q, args: [plugin, serve, --deny, 192.0.2.0/24, cidr]}
topics:
  - {topic: ext, announce: true}
`, port, bin, bin)
}

// A daemon with two external plugins starts, and its graceful shutdown
// leaves no plugin process behind.
func TestDaemonWithExternalPluginsLeavesNoProcesses(t *testing.T) {
	bin := buildSwarmhost(t)
	path := filepath.Join(t.TempDir(), "ext.yaml")
	os.WriteFile(path, []byte(externalPluginsConfig(bin, freePort(t))), 0o644)
	d, err := startDaemon(context.Background(), path, "", stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	pids := pluginPIDs(d)
	if len(pids) != 2 {
		d.shutdown()
		t.Fatalf("plugin pids %v, want 2", pids)
	}
	if err := d.shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("plugin process %d still running after shutdown", pid)
		}
	}
}

// BenchmarkDaemonStartWithTwoExternalPlugins measures config load → the
// daemon running with an external transport and an external validator.
func BenchmarkDaemonStartWithTwoExternalPlugins(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "swarmhost"+exeSuffix)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(b.TempDir(), "ext.yaml")
	for b.Loop() {
		b.StopTimer()
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		os.WriteFile(path, []byte(externalPluginsConfig(bin, port)), 0o644)
		b.StartTimer()
		d, err := startDaemon(context.Background(), path, "", stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		d.shutdown()
		b.StartTimer()
	}
}
