package sdk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/dwebswarm/dwebswarm-go"

// goList returns the packages pkg depends on, itself included.
func goList(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	return deps
}

// The SDK is the plugin side only: a plugin's main that imports it links
// neither the host side (package remote: the supervisor, the adapters)
// nor fx.
func TestSDKImportsNoHostSide(t *testing.T) {
	deps := goList(t, module+"/framework/remote/sdk")
	if !deps[module+"/framework"] {
		t.Fatal("go list shows no package framework among the sdk's deps: is the test reading the right package?")
	}
	// What package framework itself imports is not the SDK's doing: while
	// framework still has its fx wiring (issue 12 moves it out), fx and dig
	// come through it. Once framework is rid of them this test requires the
	// SDK to be rid of them too, with no change here.
	fw := goList(t, module+"/framework")
	for p := range deps {
		switch {
		case p == module+"/framework/remote",
			strings.HasPrefix(p, module+"/framework/remote/") &&
				p != module+"/framework/remote/sdk" && !strings.HasPrefix(p, module+"/framework/remote/internal/wire"):
			t.Errorf("the sdk depends on %s, part of the host side", p)
		case strings.HasPrefix(p, module+"/plugins/"), strings.HasPrefix(p, module+"/cmd/"), strings.HasPrefix(p, module+"/conformance"):
			t.Errorf("the sdk depends on %s", p)
		case (strings.HasPrefix(p, "go.uber.org/fx") || strings.HasPrefix(p, "go.uber.org/dig")) && !fw[p]:
			t.Errorf("the sdk depends on %s (fx)", p)
		}
	}
}

// A plugin binary links none of the host side: no symbol of package remote
// and none of go-plugin's client, which starts and talks to plugins (the
// go-plugin package holds both sides; the linker keeps what main reaches).
func TestPluginBinaryLinksNoHostSide(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "minplugin")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, "./testdata/minplugin")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build ./testdata/minplugin: %v", err)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	forbidden := []string{
		module + "/framework/remote.",                  // the host side (not remote/sdk., remote/internal/wire.)
		"github.com/hashicorp/go-plugin.NewClient",     // go-plugin's host side
		"github.com/hashicorp/go-plugin.(*Client).",    // (starts, handshakes with, kills plugins)
		"github.com/hashicorp/go-plugin.(*RPCClient).", // and dispenses from them
		"github.com/hashicorp/go-plugin.(*GRPCClient).",
	}
	var mains int
	seen := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		sym := f[len(f)-1]
		if sym == "main.main" {
			mains++
		}
		for _, p := range forbidden {
			if strings.HasPrefix(sym, p) {
				if seen[p]++; seen[p] <= 3 {
					t.Errorf("the plugin binary links %s", sym)
				}
			}
		}
	}
	if mains != 1 {
		t.Fatalf("%d main.main symbols in the plugin binary: is nm reading the right binary?", mains)
	}
	for p, n := range seen {
		t.Logf("%d symbols with prefix %s", n, p)
	}
}
