package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

func TestPluginServeBadInput(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plugin"}, 2, "usage: swarmhost plugin serve"},
		{[]string{"plugin", "serve"}, 2, "usage: swarmhost plugin serve"},
		{[]string{"plugin", "serve", "nope"}, 2, `unknown plugin: "nope"`},
		{[]string{"plugin", "serve", "dht"}, 2, "shared UDP socket"},
		{[]string{"plugin", "serve", "--peer", "127.0.0.1:9", "tcp"}, 2, "--peer is for the static discovery"},
	} {
		code, _, errOut := runCmd(ctx, nil, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// swarmhost itself serves the built-ins to a host, out of process.
func TestPluginServeBuiltinsOutOfProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "swarmhost"+exeSuffix)
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// run by hand, it says what it is
	out, err := exec.Command(bin, "plugin", "serve", "tcp").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "This binary is a plugin") {
		t.Fatalf("run by hand: %v %q", err, out)
	}
	quiet := slog.New(slog.DiscardHandler)
	tr, err := remote.NewTransport(remote.Config{Path: bin, Args: []string{"plugin", "serve", "tcp"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := tr.Listen(ctx, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := tr.Dial(ctx, framework.Peer{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}

	d, err := remote.NewDiscovery(remote.Config{Path: bin, Args: []string{"plugin", "serve", "--peer", "127.0.0.1:7", "static"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make(chan framework.Peer, 16)
	topic := framework.TopicFromString("plugin serve")
	if err := d.Join(ctx, framework.JoinRequest{Topic: topic, Lookup: true}, sinkFunc(func(p framework.Peer) {
		select {
		case got <- p:
		default:
		}
	})); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.Addr() != "127.0.0.1:7" || p.Topic != topic {
			t.Fatalf("peer %v", p)
		}
	case <-ctx.Done():
		t.Fatal("no peer from the static plugin")
	}
}

type sinkFunc func(framework.Peer)

func (f sinkFunc) Peer(p framework.Peer) { f(p) }
func (sinkFunc) Flushed()                {}
func (sinkFunc) Updated()                {}

// plugin serve takes several bootstrap nodes, as a comma list or by
// repeating --bootstrap (the way inside a plugin: item, whose list splits
// at commas), and hands them all to the DHT.
func TestPluginServeTakesSeveralBootstrapNodes(t *testing.T) {
	name, nf, code := parseServe([]string{"serve", "--bootstrap", "127.0.0.1:1,127.0.0.1:2", "dht", "--bootstrap", "127.0.0.1:3"}, stdio{err: io.Discard})
	if code >= 0 || name != "dht" {
		t.Fatalf("name %q, code %d", name, code)
	}
	if want := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}; !slices.Equal(nf.plugin.Bootstrap, want) {
		t.Fatalf("bootstrap %q, want %q", nf.plugin.Bootstrap, want)
	}
	// pipe's plugin list: repeated --bootstrap inside one plugin: item
	f := nodeFlags{transport: "tcp", discovery: "plugin:/bin/swarmhost plugin serve --bootstrap 127.0.0.1:1 --bootstrap 127.0.0.1:2 dht"}
	specs, err := f.specs()
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].Remote.Args; !slices.Equal(got, []string{"plugin", "serve", "--bootstrap", "127.0.0.1:1", "--bootstrap", "127.0.0.1:2", "dht"}) {
		t.Fatalf("plugin args %q", got)
	}
}
