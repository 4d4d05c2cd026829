//go:build linux

package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

// Two hosts of a LAN (network namespaces made by the test: mDNS never
// touches this machine's interfaces) pipe to each other through mDNS alone.
func TestPipeOverMDNSBetweenTwoLANHosts(t *testing.T) {
	bin := buildSwarmhost(t)
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(h *netlab.Host, stdin string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
		cmd := h.Command(ctx, bin, append([]string{"pipe", "--discovery", "mdns", "--timeout", "15s"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out, &errb
	}
	a, aout, aerr := run(hs[0], "from A", "--announce", "lan topic")
	b, bout, berr := run(hs[1], "from B", "lan topic")
	if err := b.Wait(); err != nil {
		a.Process.Kill()
		a.Wait()
		t.Fatalf("looker: %v\n%s", err, berr)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("announcer: %v\n%s", err, aerr)
	}
	if aout.String() != "from B" || bout.String() != "from A" {
		t.Fatalf("announcer got %q, looker got %q", aout, bout)
	}
}

// labPluginEnv starts each discovery instance as `swarmhost plugin serve
// mdns`, out of process, inside the next host of a lab LAN (ip netns exec):
// the conformance suite then checks the mdns plugin through the remote
// adapter, over real multicast, never on this machine's interfaces.
type labPluginEnv struct {
	bin   string
	hosts []*netlab.Host
	mu    sync.Mutex
	next  int
}

func (e *labPluginEnv) New(t *conformance.T) (framework.Discovery, error) {
	e.mu.Lock()
	h := e.hosts[e.next%len(e.hosts)]
	e.next++
	e.mu.Unlock()
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return nil, err
	}
	d, err := remote.NewDiscovery(remote.Config{Path: ipPath, Args: []string{"netns", "exec", h.NS, e.bin, "plugin", "serve", "--mdns-interval", "300ms", "mdns"}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { d.Close() })
	return d, nil
}

// The mdns discovery passes the discovery suite out of process too.
func TestMDNSPluginOutOfProcessConformance(t *testing.T) {
	bin := buildSwarmhost(t)
	lab := netlab.New(t)
	_, hs := lab.LAN(3)
	conformance.RunDiscoverySuite(t, func(*conformance.T) (conformance.DiscoveryEnv, error) {
		return &labPluginEnv{bin: bin, hosts: hs}, nil
	})
}
