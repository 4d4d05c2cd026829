package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

// buildSwarmhost builds this command into a temporary directory.
func buildSwarmhost(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "swarmhost")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

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
