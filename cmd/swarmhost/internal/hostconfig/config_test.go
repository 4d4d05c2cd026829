package hostconfig

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

func TestExampleLoads(t *testing.T) {
	c, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Host != "127.0.0.1" || c.Node.MaxPeers != 24 || !reflect.DeepEqual(c.Node.Bootstrap, []string{"127.0.0.1:6881"}) {
		t.Errorf("node = %+v", c.Node)
	}
	if c.Node.Queue.ForgetBanned != framework.Forever || c.Node.Queue.ForgetUnresponsive != 7500*time.Millisecond {
		t.Errorf("queue = %+v", c.Node.Queue)
	}
	if len(c.Discoveries) != 2 || c.Discoveries[0].Name != "dht" || c.Discoveries[1].Name != "static" {
		t.Fatalf("discoveries = %+v", c.Discoveries)
	}
	dc := c.Discoveries[0].Options.(dht.Config)
	if !reflect.DeepEqual(dc.Bootstrap, []string{"127.0.0.1:6881"}) || dc.Ephemeral != nil || dc.AdaptiveAfter != 30*time.Minute || dc.PeerStore.MaxTotal != 100000 {
		t.Errorf("dht config = %+v", dc)
	}
	sc := c.Discoveries[1].Options.(static.Config)
	if len(sc.Peers) != 2 || len(sc.Peers[1].Topics) != 1 || sc.Peers[1].Topics[0] != framework.TopicFromString("my-dwebswarm-topic") {
		t.Errorf("static config = %+v", sc)
	}
	if len(c.Validators) != 3 || c.Validators[2].Name != "ratelimit" {
		t.Errorf("validators = %+v", c.Validators)
	}
	tp := c.Topics()
	if len(tp) != 2 || tp[0].Topic != framework.TopicFromString("my-dwebswarm-topic") || !tp[0].Announce || !tp[0].Lookup || tp[1].Announce {
		t.Errorf("topics = %+v", tp)
	}
	if tp[1].Topic.String() != tp[1].Text {
		t.Errorf("hex topic decoded as %s", tp[1].Topic)
	}
	sv := c.Services()
	if len(sv) != 2 || sv[0].Serve != "127.0.0.1:8080" || sv[1].Connect != "127.0.0.1:9090" || sv[1].Topic != framework.TopicFromString("someone-elses-web") {
		t.Errorf("services = %+v", sv)
	}
	if c.Metrics.Listen != "127.0.0.1:9464" || c.Log.Level != slog.LevelInfo || c.Log.Format != "text" {
		t.Errorf("log/metrics = %+v %+v", c.Log, c.Metrics)
	}
	// the repository's example is the same file
	a, _ := os.ReadFile("testdata/example.yaml")
	if b, err := os.ReadFile("../../../../examples/swarmhost.yaml"); err != nil || !bytes.Equal(a, b) {
		t.Errorf("examples/swarmhost.yaml differs from testdata/example.yaml (err %v)", err)
	}
	// building the example's plugins needs no network (the DHT starts
	// with the swarm): check it constructs, then close.
	ps, err := c.BuildPlugins(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Discoveries) != 2 || len(ps.Transports) != 1 || len(ps.Validators) != 3 {
		t.Errorf("built %+v", ps)
	}
	if err := ps.Close(); err != nil {
		t.Error(err)
	}
}

// TestDefaultsEqualFramework: an empty file gives the library's defaults.
func TestDefaultsEqualFramework(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "node: {}\n", "node:\n  queue:\n    forget:\n"} {
		c, err := Parse("empty.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		n := c.Node
		if n.MaxPeers != framework.DefaultMaxPeers || n.PreferredPort != framework.DefaultPreferredPort ||
			n.ConnectTimeout != framework.DefaultConnectTimeout || n.Port != 0 || n.Host != "" ||
			n.MaxClientSockets != 0 || n.MaxServerSockets != 0 || n.Bootstrap != nil || n.Ephemeral != nil ||
			n.AdaptiveAfter != dht.DefaultAdaptiveAfter {
			t.Errorf("%q: node = %+v", src, n)
		}
		q := n.Queue
		if !reflect.DeepEqual(q.Requeue, framework.DefaultRequeue()) || q.ForgetUnresponsive != framework.DefaultForgetUnresponsive || q.ForgetBanned != framework.Forever || q.Multiplex {
			t.Errorf("%q: queue = %+v", src, q)
		}
		if len(c.Transports) != 1 || c.Transports[0].Name != "tcp" || len(c.Discoveries) != 0 || len(c.Validators) != 0 {
			t.Errorf("%q: plugins %+v %+v %+v", src, c.Discoveries, c.Transports, c.Validators)
		}
		if c.Log.Level != slog.LevelInfo || c.Log.Format != "text" || c.Metrics.Listen != "" || len(c.Topics())+len(c.Services()) != 0 {
			t.Errorf("%q: rest = %+v %+v", src, c.Log, c.Metrics)
		}
		if !reflect.DeepEqual(c, Default()) && src == "" {
			c2 := Default()
			c2.File = c.File
			if !reflect.DeepEqual(c, c2) {
				t.Errorf("empty config %+v != Default() %+v", c, c2)
			}
		}
	}
	// NodeOptions of the defaults are accepted by the engine.
	sw, err := Default().NewSwarm(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sw.Close()
}

func TestNodeValues(t *testing.T) {
	c, err := Parse("n.yaml", []byte(`
node:
  port: 4000
  maxClientSockets: -1
  maxServerSockets: 3
  bootstrap: []
  ephemeral: false
  queue: {requeue: [], forget: {unresponsive: never, banned: 1h}, multiplex: true}
discoveries: [{name: dht, options: {sendRate: -1, fastRelookups: []}}]
log: {level: DEBUG, format: json}
`))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node
	if n.Port != 4000 || n.MaxClientSockets != -1 || n.MaxServerSockets != 3 || n.Bootstrap == nil || len(n.Bootstrap) != 0 || n.Ephemeral == nil || *n.Ephemeral {
		t.Errorf("node = %+v", n)
	}
	if n.Queue.Requeue == nil || len(n.Queue.Requeue) != 0 || n.Queue.ForgetUnresponsive != framework.Forever || n.Queue.ForgetBanned != time.Hour || !n.Queue.Multiplex {
		t.Errorf("queue = %+v", n.Queue)
	}
	dc := c.Discoveries[0].Options.(dht.Config)
	if dc.Bootstrap == nil || len(dc.Bootstrap) != 0 || dc.Ephemeral == nil || *dc.Ephemeral || dc.SendRate != -1 || dc.FastRelookups == nil {
		t.Errorf("dht = %+v", dc)
	}
	if c.Log.Level != slog.LevelDebug || c.Log.Format != "json" {
		t.Errorf("log = %+v", c.Log)
	}
	var buf bytes.Buffer
	c.Logger(&buf).Debug("hi")
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("json logger wrote %q", buf.String())
	}
}

// TestSwarmOptionsTCPStatic: two swarms built from configs (tcp + static)
// on 127.0.0.1 connect on a topic.
func TestSwarmOptionsTCPStatic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := Parse("a.yaml", []byte(`
node: {host: 127.0.0.1, preferredPort: 0}
transports: [{name: tcp}]
topics: [{topic: hostconfig-test, announce: true, lookup: false}]
`))
	if err != nil {
		t.Fatal(err)
	}
	swA, err := a.NewSwarm(BuildOptions{}, framework.WithConnectionHandler(func(c *framework.Conn) {
		c.Write([]byte("hi"))
		c.Close()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer swA.Close()
	if err := swA.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tp := range a.Topics() {
		if err := swA.Join(ctx, tp.Topic, tp.JoinOptions()...); err != nil {
			t.Fatal(err)
		}
	}

	b, err := Parse("b.yaml", []byte(fmt.Sprintf(`
node: {host: 127.0.0.1, preferredPort: 0, maxPeers: 4, connectTimeout: 2s}
discoveries:
  - name: static
    options: {peers: [127.0.0.1:%d]}
transports: [{name: tcp, options: {keepAlive: off}}]
validators: [{name: cidr, options: {allow: [127.0.0.0/8]}}]
topics: [{topic: hostconfig-test}]
`, swA.Port())))
	if err != nil {
		t.Fatal(err)
	}
	opts, ps, err := b.SwarmOptions(BuildOptions{Logger: b.Logger(&bytes.Buffer{})})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Discoveries) != 1 || len(ps.Transports) != 1 || len(ps.Validators) != 1 {
		t.Fatalf("plugins %+v", ps)
	}
	swB, err := framework.New(opts...)
	if err != nil {
		ps.Close()
		t.Fatal(err)
	}
	defer swB.Close()
	sub := swB.Subscribe()
	defer sub.Close()
	if err := swB.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tp := b.Topics()[0]
	if err := swB.Join(ctx, tp.Topic, tp.JoinOptions()...); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-sub.C():
			if ce, ok := ev.(*framework.ConnectionEvent); ok {
				buf := make([]byte, 2)
				ce.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := ce.Conn.Read(buf); err != nil || string(buf) != "hi" {
					t.Fatalf("read %q, %v", buf, err)
				}
				ce.Conn.Close()
				return
			}
		case <-ctx.Done():
			t.Fatal("no connection")
		}
	}
}

func TestBuildErrorClosesAndNamesPosition(t *testing.T) {
	c, err := Parse("p.yaml", []byte("validators:\n  - name: ratelimit\n  - name: banlist\n    options: {path: bans}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// a ban file corrupted after validation fails the build, which names
	// the entry's position
	dir := t.TempDir()
	bad := dir + "/bans"
	if err := os.WriteFile(bad, []byte("not a ban line at all \x00\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Validators[1].Options = validators.BanListConfig{Path: bad}
	_, err = c.BuildPlugins(BuildOptions{})
	if err == nil {
		t.Fatal("a corrupt ban list was accepted")
	}
	if !strings.HasPrefix(err.Error(), "p.yaml:3:5: validator banlist: ") {
		t.Errorf("error = %v", err)
	}
}

func TestDiff(t *testing.T) {
	old, err := Parse("old.yaml", []byte(`
topics:
  - {topic: keep}
  - {topic: drop}
  - {topic: flip, announce: true}
services:
  - {name: same, topic: s1, serve: 127.0.0.1:80}
  - {name: moved, topic: s2, serve: 127.0.0.1:81}
  - {name: gone, topic: s3, connect: 127.0.0.1:82}
`))
	if err != nil {
		t.Fatal(err)
	}
	new, err := Parse("new.yaml", []byte(`
topics:
  - {topic: keep}
  - {topic: flip, announce: false}
  - {topic: `+framework.TopicFromString("fresh").String()+`}
services:
  - {name: same, topic: s1, serve: 127.0.0.1:80}
  - {name: moved, topic: s2, serve: 127.0.0.1:91}
  - {name: new, topic: s4, connect: 127.0.0.1:83}
log: {level: debug}
`))
	if err != nil {
		t.Fatal(err)
	}
	ch := Diff(old, new)
	names := func(ts []Topic) (out []string) {
		for _, t := range ts {
			out = append(out, t.Text)
		}
		return out
	}
	snames := func(ss []Service) (out []string) {
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(ch.TopicsAdded); len(got) != 1 || ch.TopicsAdded[0].Topic != framework.TopicFromString("fresh") {
		t.Errorf("added %v", got)
	}
	if got := names(ch.TopicsRemoved); !reflect.DeepEqual(got, []string{"drop"}) {
		t.Errorf("removed %v", got)
	}
	if got := names(ch.TopicsChanged); !reflect.DeepEqual(got, []string{"flip"}) || ch.TopicsChanged[0].Announce {
		t.Errorf("changed %v", got)
	}
	if got := snames(ch.ServicesAdded); !reflect.DeepEqual(got, []string{"moved", "new"}) {
		t.Errorf("services added %v", got)
	}
	if got := snames(ch.ServicesRemoved); !reflect.DeepEqual(got, []string{"moved", "gone"}) {
		t.Errorf("services removed %v", got)
	}
	if !reflect.DeepEqual(ch.Restart, []string{"log"}) {
		t.Errorf("restart %v", ch.Restart)
	}
	if !Diff(new, new).Empty() {
		t.Error("a config differs from itself")
	}
	// the same file parsed twice (positions aside) is no change
	a, _ := Load("testdata/example.yaml")
	b, _ := Load("testdata/example.yaml")
	if ch := Diff(a, b); !ch.Empty() {
		t.Errorf("example vs itself: %+v", ch)
	}
	if ch := Diff(nil, a); len(ch.TopicsAdded) != 2 || len(ch.ServicesAdded) != 2 || len(ch.Restart) != 0 {
		t.Errorf("from nothing: %+v", ch)
	}
}

func TestRelativePathsAndPluginBinary(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/plug", []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSHA256(dir + "/plug")
	src := "transports:\n  - plugin: {path: ./plug, args: [serve, tcp], sha256: " + strings.ToUpper(sum) + ", name: mytcp}\nvalidators:\n  - name: banlist\n    options: {path: bans.txt}\n"
	if err := os.WriteFile(dir+"/c.yaml", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir + "/c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rc := c.Transports[0].Remote
	if rc == nil || rc.Path != dir+"/plug" || rc.SHA256 != sum || rc.Name != "mytcp" || !reflect.DeepEqual(rc.Args, []string{"serve", "tcp"}) {
		t.Errorf("remote = %+v", rc)
	}
	if p := c.Validators[0].Options.(validators.BanListConfig).Path; p != dir+"/bans.txt" {
		t.Errorf("ban list path %q", p)
	}
}

// The mDNS limits (what a LAN host can make us keep) are set in YAML.
func TestMDNSLimits(t *testing.T) {
	c, err := Parse("m.yaml", []byte(`
discoveries:
  - name: mdns
    options:
      limits: {maxInstancesPerSource: 4, maxInstancesPerInterface: 100, maxInstances: 200, maxPeersPerSource: 2, maxPeersPerTopic: 50}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Discoveries[0].Options.(mdns.Config).Limits
	want := mdns.Limits{MaxInstancesPerSource: 4, MaxInstancesPerInterface: 100, MaxInstances: 200, MaxPeersPerSource: 2, MaxPeersPerTopic: 50}
	if got != want {
		t.Fatalf("limits = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"{maxInstances: 0}", "{maxPeersPerTopic: -3}", "{maxInstance: 3}", "[1]"} {
		_, err := Parse("m.yaml", []byte("discoveries: [{name: mdns, options: {limits: "+bad+"}}]\n"))
		if err == nil {
			t.Errorf("limits %s: no error", bad)
		}
	}
}
