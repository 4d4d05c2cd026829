package main

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// statusPair starts an announcing swarm and a looking-up one on loopback,
// waits until they connect, and serves the looking-up one's status.
func statusPair(t *testing.T) (addr string, topic framework.Topic) {
	t.Helper()
	ctx := context.Background()
	topic = framework.TopicFromString("status cmd topic")
	server, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if err := server.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	client, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(server.Port())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	plugins := observe.NewPluginTracker()
	plugins.Add(remote.KindTransport, "tcp", "")
	plugins.Add(remote.KindDiscovery, "static", "")
	obs, err := observe.New(client, observe.Config{Version: "test", Plugins: plugins, NoRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		obs.Shutdown(sctx)
	})
	obs.NameTopic(topic, "status cmd topic")
	if err := client.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := obs.Status(ctx)
		if len(st.Connections) == 1 && st.Connections[0].OpenedAt != nil && len(st.Topics) == 1 && st.Topics[0].Flushed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection within 10s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return obs.Addr(), topic
}

func TestStatusPrintsTables(t *testing.T) {
	addr, topic := statusPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, out, errOut := runCmd(ctx, strings.NewReader(""), "status", "--addr", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"version test",
		"TOPICS (1)", "TOPIC", "ANNOUNCE", "FLUSHED", topic.Short(), "status cmd topic",
		"CONNECTIONS (1)", "REMOTE", "127.0.0.1:", "outbound",
		"QUEUE", "KNOWN", "UNRESPONSIVE",
		"CONNECTIVITY", "BOUND",
		"PLUGINS (2)", "transport", "static", "in-process",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// the topic row reads as a table row: lookup on, flushed, 1 connection
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, topic.Short()) && strings.Contains(l, "status cmd topic") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) != 8 || f[4] != "no" || f[5] != "yes" || f[6] != "yes" || f[7] != "1" {
		t.Errorf("topic row %q", row)
	}

	code, out, errOut = runCmd(ctx, strings.NewReader(""), "status", "--addr", "http://"+addr, "--json")
	if code != 0 {
		t.Fatalf("--json exit %d: %s", code, errOut)
	}
	var st observe.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, out)
	}
	if len(st.Topics) != 1 || st.Topics[0].Topic != topic.String() || len(st.Connections) != 1 || st.Connections[0].Type != "tcp" {
		t.Errorf("--json: %+v", st)
	}
}

func TestStatusNothingListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, out, errOut := runCmd(ctx, strings.NewReader(""), "status", "--addr", addr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (stdout %q)", code, out)
	}
	if want := "swarmhost status: nothing listens on " + addr; !strings.Contains(errOut, want) || !strings.Contains(errOut, "--metrics") {
		t.Errorf("stderr %q lacks %q and a hint", errOut, want)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
}

func TestStatusUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"status", "extra"},
		{"status", "--addr", "no-port"},
		{"status", "--timeout", "0s"},
		{"status", "--bogus"},
	} {
		if code, _, errOut := runCmd(ctx, strings.NewReader(""), args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 with a message", args, code, errOut)
		}
	}
	if code, _, errOut := runCmd(ctx, strings.NewReader(""), "status", "-h"); code != 0 || !strings.Contains(errOut, "swarmhost status --addr") {
		t.Errorf("-h: exit %d, %q", code, errOut)
	}
}
