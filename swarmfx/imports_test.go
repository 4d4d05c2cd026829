package swarmfx_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	modulePath = "github.com/dwebswarm/dwebswarm-go"
	swarmfxPkg = modulePath + "/swarmfx"
	sdkPkg     = modulePath + "/framework/remote/sdk"
)

// listedPackage is the part of `go list -json` these tests read.
type listedPackage struct {
	ImportPath string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// goList runs `go list -json args...` in the module and decodes its output.
func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,Deps"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v listed nothing", args)
	}
	return pkgs
}

// isFx reports whether pkg is fx or its dependency injection library.
func isFx(pkg string) bool {
	for _, root := range []string{"go.uber.org/fx", "go.uber.org/dig"} {
		if pkg == root || strings.HasPrefix(pkg, root+"/") {
			return true
		}
	}
	return false
}

// fx is for the composition root only: no package of the module but
// swarmfx imports it or links it (through swarmfx or otherwise). Test
// files may use it.
func TestOnlySwarmfxImportsFx(t *testing.T) {
	pkgs := goList(t, modulePath+"/...")
	if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.ImportPath == swarmfxPkg && slices.ContainsFunc(p.Imports, isFx) }) {
		t.Fatal("swarmfx does not import fx: is this test still looking at the right packages?")
	}
	for _, p := range pkgs {
		if p.ImportPath == swarmfxPkg || strings.HasPrefix(p.ImportPath, swarmfxPkg+"/") {
			continue
		}
		if i := slices.IndexFunc(p.Imports, isFx); i >= 0 {
			t.Errorf("%s imports %s: fx wiring belongs in swarmfx", p.ImportPath, p.Imports[i])
		} else if i := slices.IndexFunc(p.Deps, isFx); i >= 0 {
			t.Errorf("%s links %s: fx wiring belongs in swarmfx", p.ImportPath, p.Deps[i])
		}
	}
}

// A plugin binary's main imports the SDK alone: it must not link fx.
func TestPluginSDKDoesNotLinkFx(t *testing.T) {
	pkgs := goList(t, sdkPkg, "./internal/fxplugin")
	for _, p := range pkgs {
		if len(p.Deps) == 0 {
			t.Fatalf("%s: go list reported no dependencies", p.ImportPath)
		}
		for _, d := range p.Deps {
			if isFx(d) {
				t.Errorf("%s links %s", p.ImportPath, d)
			}
		}
	}
}
