package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// startedPlugins records the pid of every out-of-process plugin the flags
// start while it is installed.
type startedPlugins struct {
	mu   sync.Mutex
	pids []int
	// started receives one value per plugin process started
	started chan struct{}
}

func recordPlugins(t *testing.T) *startedPlugins {
	t.Helper()
	r := &startedPlugins{started: make(chan struct{}, 16)}
	onPluginEvent = func(e remote.Event) {
		if e.PID > 0 && (e.Kind == remote.EventStarted || e.Kind == remote.EventRestarted) {
			r.mu.Lock()
			r.pids = append(r.pids, e.PID)
			r.mu.Unlock()
			select {
			case r.started <- struct{}{}:
			default:
			}
		}
	}
	t.Cleanup(func() { onPluginEvent = nil })
	return r
}

// takenPort returns a loopback TCP port held by a listener until the test
// ends.
func takenPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// awaitStarted waits until n plugin processes have started.
func (r *startedPlugins) awaitStarted(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(time.Minute)
	for range n {
		select {
		case <-r.started:
		case <-timeout:
			t.Fatalf("fewer than %d plugin processes started", n)
		}
	}
}

func (r *startedPlugins) assertNoneAlive(t *testing.T, want int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pids) != want {
		t.Errorf("started plugin pids %v, want %d", r.pids, want)
	}
	for _, pid := range r.pids {
		if processAlive(pid) {
			t.Errorf("plugin process %d outlived the command", pid)
		}
	}
}

// pipe stops every plugin process it started: on timeout, with plugins of
// every kind, and when a later plugin of the list fails to build.
func TestPipeLeavesNoPluginProcess(t *testing.T) {
	bin := buildSwarmhost(t)
	t.Run("timeout", func(t *testing.T) {
		rec := recordPlugins(t)
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "pipe", "--host", "127.0.0.1",
			"--transport", "plugin:"+bin+" plugin serve tcp",
			"--discovery", "plugin:"+bin+" plugin serve --peer 127.0.0.1:1 static",
			"--validator", "plugin:"+bin+" plugin serve --deny 192.0.2.0/24 cidr",
			"--timeout", "1s", "orphans")
		if code != 1 || !strings.Contains(errOut, "no peer connected") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		rec.assertNoneAlive(t, 3)
	})
	t.Run("signal", func(t *testing.T) {
		// SIGINT/SIGTERM arrive as a cancelled context
		rec := recordPlugins(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan int, 1)
		go func() {
			code, _, _ := runCmd(ctx, strings.NewReader(""), "pipe", "--host", "127.0.0.1",
				"--transport", "plugin:"+bin+" plugin serve tcp",
				"--discovery", "plugin:"+bin+" plugin serve --peer 127.0.0.1:1 static",
				"--validator", "plugin:"+bin+" plugin serve --deny 192.0.2.0/24 cidr", "orphans")
			done <- code
		}()
		rec.awaitStarted(t, 3)
		cancel()
		if code := <-done; code == 0 {
			t.Fatalf("exit %d", code)
		}
		rec.assertNoneAlive(t, 3)
	})
	t.Run("port in use", func(t *testing.T) {
		port := takenPort(t)
		rec := recordPlugins(t)
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "pipe", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--discovery", "plugin:"+bin+" plugin serve --peer 127.0.0.1:1 static",
			"--validator", "plugin:"+bin+" plugin serve --deny 192.0.2.0/24 cidr", "orphans")
		if code != 2 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		rec.assertNoneAlive(t, 2)
	})
	t.Run("later plugin fails", func(t *testing.T) {
		rec := recordPlugins(t)
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "pipe", "--host", "127.0.0.1",
			"--validator", "plugin:"+bin+" plugin serve --deny 192.0.2.0/24 cidr,cidr", "--deny", "not-a-prefix", "orphans")
		if code == 0 || !strings.Contains(errOut, "not-a-prefix") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		rec.assertNoneAlive(t, 1)
	})
}

// run stops every plugin process it started, of every kind: on a signal
// (a cancelled context), and when the swarm cannot start (port in use).
func TestRunLeavesNoPluginProcess(t *testing.T) {
	bin := buildSwarmhost(t)
	config := func(t *testing.T, port int) string {
		path := filepath.Join(t.TempDir(), "orphans.yaml")
		cfg := fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
discoveries:
  - plugin: {path: %q, args: [plugin, serve, --peer, 127.0.0.1:1, static]}
transports:
  - plugin: {path: %q, args: [plugin, serve, tcp]}
validators:
  - plugin: {path: %q, args: [plugin, serve, --deny, 192.0.2.0/24, cidr]}
topics:
  - {topic: orphans, announce: true}
`, port, bin, bin, bin)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("signal", func(t *testing.T) {
		rec := recordPlugins(t)
		path := config(t, freePort(t))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan int, 1)
		go func() {
			code, _, _ := runCmd(ctx, strings.NewReader(""), "run", "--config", path)
			done <- code
		}()
		rec.awaitStarted(t, 3)
		cancel()
		<-done // 0 once running, 1 if the signal came during the start
		rec.assertNoneAlive(t, 3)
	})
	t.Run("port in use", func(t *testing.T) {
		port := takenPort(t)
		rec := recordPlugins(t)
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "run", "--config", config(t, port))
		if code != 1 || !strings.Contains(errOut, "swarmhost run:") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		rec.assertNoneAlive(t, 3)
	})
}

// --allow and --deny need the cidr validator itself: a plugin binary whose
// path mentions cidr does not count.
func TestAllowNeedsTheCIDRValidatorNotAPathWithCIDR(t *testing.T) {
	f := nodeFlags{transport: "tcp", validator: "plugin:/nonexistent/cidrvalidator", plugin: hostconfig.Flags{Allow: []string{"10.0.0.0/8"}}}
	_, _, err := f.options()
	if err == nil || !strings.Contains(err.Error(), "need the cidr validator") {
		t.Fatalf("err = %v", err)
	}
}
