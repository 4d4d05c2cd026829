package remote_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// frameworkInterfaces returns the exported interface types declared in
// package framework's non-test files.
func frameworkInterfaces(t *testing.T) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				if _, ok := ts.Type.(*ast.InterfaceType); ok && ts.Name.IsExported() {
					out = append(out, ts.Name.Name)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("found no interfaces in package framework")
	}
	slices.Sort(out)
	return out
}

// Every interface of package framework is either forwarded across the
// process boundary or listed as not forwarded with the reason: a new
// optional interface fails this test until remote.Forwarded names it.
func TestEveryFrameworkInterfaceIsForwardedOrExplained(t *testing.T) {
	listed := map[string]remote.Forwarding{}
	for _, f := range remote.Forwarded {
		if f.Reason == "" {
			t.Errorf("%s: no reason or method given", f.Interface)
		}
		listed[f.Interface] = f
	}
	for _, name := range frameworkInterfaces(t) {
		if _, ok := listed[name]; !ok {
			t.Errorf("framework.%s is neither forwarded by framework/remote's adapters nor listed in remote.Forwarded with the reason", name)
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("remote.Forwarded lists %s, which package framework does not declare", name)
	}
	// the table's claims hold for the adapters' types
	kinds := map[string]reflect.Type{
		remote.KindTransport: reflect.TypeFor[*remote.Transport](),
		remote.KindDiscovery: reflect.TypeFor[*remote.Discovery](),
		remote.KindValidator: reflect.TypeFor[*remote.Validator](),
	}
	ifaces := map[string]reflect.Type{
		"Transport": reflect.TypeFor[framework.Transport](), "Discovery": reflect.TypeFor[framework.Discovery](),
		"PeerValidator": reflect.TypeFor[framework.PeerValidator](), "Ordered": reflect.TypeFor[framework.Ordered](),
		"PacketConnUser": reflect.TypeFor[framework.PacketConnUser](), "HolePuncher": reflect.TypeFor[framework.HolePuncher](),
		"ConnectivityReporter": reflect.TypeFor[framework.ConnectivityReporter](), "Refresher": reflect.TypeFor[framework.Refresher](),
		"DialFilter": reflect.TypeFor[framework.DialFilter](), "Drainer": reflect.TypeFor[framework.Drainer](),
		"Starter": reflect.TypeFor[framework.Starter](),
	}
	for _, f := range remote.Forwarded {
		it, ok := ifaces[f.Interface]
		if !ok {
			continue
		}
		for _, k := range f.Kinds {
			if !kinds[k].Implements(it) {
				t.Errorf("remote.Forwarded says the %s adapter forwards %s, but it does not implement it", k, f.Interface)
			}
		}
		for k, at := range kinds {
			if !slices.Contains(f.Kinds, k) && at.Implements(it) {
				t.Errorf("remote.Forwarded says the %s adapter does not forward %s, but it implements it", k, f.Interface)
			}
		}
	}
}

// Starter is not forwarded: the plugin's Serve starts its implementation
// in the plugin's process before serving, and a failed Start is reported,
// with the plugin's stderr, as the adapter's start error.
func TestServeStartsAStarter(t *testing.T) {
	v, err := remote.NewValidator(config(t, "starter"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Validate(bg, framework.Peer{Host: "127.0.0.1", Port: 3, Topic: topic}); err != nil {
		t.Fatalf("Serve did not start the plugin's Starter: %v", err)
	}
	_, err = remote.NewValidator(config(t, "starter", "fail"))
	if err == nil || !strings.Contains(err.Error(), "starter: start: no socket today") {
		t.Fatalf("a failing Start: %v, want the plugin's start error", err)
	}
}

// An out-of-process DHT forwards hole punching, its connectivity report and
// Refresh; an out-of-process uTP its dial filter and Drain; a TCP plugin
// forwards none of them, and the engine does not use them.
func TestOptionalInterfacesCrossTheProcessBoundary(t *testing.T) {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	tn, err := dhttest.Start(ctx, 10, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	d, err := remote.NewDiscovery(config(t, "dht", joinList(tn.Bootstrap())))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range []reflect.Type{reflect.TypeFor[framework.HolePuncher](), reflect.TypeFor[framework.ConnectivityReporter](), reflect.TypeFor[framework.Refresher](), reflect.TypeFor[framework.PacketConnUser]()} {
		if !d.Forwards(it) {
			t.Errorf("the dht plugin does not forward %v", it)
		}
	}
	s, _ := newSwarm(t, framework.WithTransport(tcp.New()), framework.WithDiscovery(d))
	if err := s.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flushed(ctx, topic); err != nil {
		t.Fatal(err)
	}
	c := s.Connectivity()
	if !c.Bound || !c.Bootstrapped || c.Reporters == 0 || len(c.PublicAddrs) == 0 {
		t.Fatalf("connectivity through the plugin: %+v, want bound, bootstrapped, reported", c)
	}
	if err := s.Refresh(ctx, topic); err != nil {
		t.Fatalf("refresh through the plugin: %v", err)
	}
	// a hole punch reaches the plugin's DHT: a peer without a referrer is
	// refused there, with the DHT's error
	err = d.HolePunch(ctx, framework.Peer{Host: "127.0.0.1", Port: 9, Topic: topic})
	if err == nil || !strings.Contains(err.Error(), "has no referrer") {
		t.Fatalf("hole punch without a referrer: %v", err)
	}
	t.Logf("hole punch without a referrer: %v", err)

	u := startTransport(t, config(t, "utp"))
	if !u.Forwards(reflect.TypeFor[framework.DialFilter]()) || !u.Forwards(reflect.TypeFor[framework.Drainer]()) {
		t.Fatal("the utp plugin does not forward DialFilter and Drainer")
	}
	withRef := framework.Peer{Host: "127.0.0.1", Port: 9, Topic: topic, Referrer: &framework.Referrer{Host: "127.0.0.1", Port: 10}}
	if u.WantsPeer(framework.Peer{Host: "127.0.0.1", Port: 9, Topic: topic}) || !u.WantsPeer(withRef) {
		t.Fatal("the utp plugin's dial filter did not cross: it wants peers with a referrer only")
	}
	if err := u.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}

	tt := startTransport(t, config(t, "tcp"))
	for _, it := range []reflect.Type{reflect.TypeFor[framework.DialFilter](), reflect.TypeFor[framework.Drainer](), reflect.TypeFor[framework.PacketConnUser]()} {
		if tt.Forwards(it) {
			t.Errorf("the tcp plugin forwards %v", it)
		}
		if _, ok := framework.As[framework.DialFilter](tt); ok {
			t.Error("framework.As finds a dial filter on the tcp plugin")
		}
	}
}
