package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// startedPlugins records the pid of every out-of-process plugin the flags
// start while it is installed.
type startedPlugins struct {
	mu   sync.Mutex
	pids []int
}

func recordPlugins(t *testing.T) *startedPlugins {
	t.Helper()
	r := &startedPlugins{}
	onPluginEvent = func(e remote.Event) {
		if e.PID > 0 && (e.Kind == remote.EventStarted || e.Kind == remote.EventRestarted) {
			r.mu.Lock()
			r.pids = append(r.pids, e.PID)
			r.mu.Unlock()
		}
	}
	t.Cleanup(func() { onPluginEvent = nil })
	return r
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
			t.Errorf("plugin process %d outlived pipe", pid)
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

// --allow and --deny need the cidr validator itself: a plugin binary whose
// path mentions cidr does not count.
func TestAllowNeedsTheCIDRValidatorNotAPathWithCIDR(t *testing.T) {
	f := nodeFlags{transport: "tcp", validator: "plugin:/nonexistent/cidrvalidator", plugin: hostconfig.Flags{Allow: []string{"10.0.0.0/8"}}}
	_, _, err := f.options()
	if err == nil || !strings.Contains(err.Error(), "need the cidr validator") {
		t.Fatalf("err = %v", err)
	}
}
