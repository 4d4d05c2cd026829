//go:build linux

package mdns

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
	"github.com/dwebswarm/dwebswarm-go/internal/testenv"
)

// The interop tests run npm's multicast-dns (a third-party mDNS stack) in a
// lab host. It is installed by .ci/run with
//
//	npm ci --prefix plugins/mdns/testdata/interop --no-audit --no-fund
//
// DWS_MDNS_INTEROP_DIR may point at another directory holding
// node_modules/multicast-dns. The tests install it when it is absent; without
// Node.js they skip with one line saying so, or fail under CI=true
// (internal/testenv).

type nodeLine struct {
	Event    string   `json:"event"`
	Error    string   `json:"error"`
	Instance string   `json:"instance"`
	Port     int      `json:"port"`
	Target   string   `json:"target"`
	TXT      []string `json:"txt"`
	Addrs    []string `json:"addrs"`
	From     string   `json:"from"`
}

// startNode runs testdata/interop/mdns-peer.js in host h and streams its
// JSON lines. The process is killed at cleanup.
func startNode(t *testing.T, h *netlab.Host, args ...string) <-chan nodeLine {
	t.Helper()
	dir := os.Getenv("DWS_MDNS_INTEROP_DIR")
	if dir == "" {
		dir = filepath.Join("testdata", "interop")
	}
	dir, _ = filepath.Abs(dir)
	node, err := testenv.NodeModules(dir, "multicast-dns")
	testenv.Require(t, err)
	script, _ := filepath.Abs(filepath.Join("testdata", "interop", "mdns-peer.js"))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	cmd.Stderr = &testWriter{t: t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	lines := make(chan nodeLine, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l nodeLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				continue
			}
			select {
			case lines <- l:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
	})
	return lines
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("node: %s", p)
	return len(p), nil
}

func waitNode(t *testing.T, lines <-chan nodeLine, within time.Duration, ok func(nodeLine) bool) nodeLine {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, open := <-lines:
			if !open {
				t.Fatal("interop: node exited early")
			}
			if l.Event == "error" {
				t.Fatalf("interop: node: %s", l.Error)
			}
			if ok(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("interop: no matching line from node within %v", within)
		}
	}
}

// TestInteropThirdPartySeesUs: multicast-dns browses our service type and
// sees our instance with the right port, TXT and address.
func TestInteropThirdPartySeesUs(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	a := newIn(t, hs[0], Config{})
	topic := framework.TopicFromString("interop: they see us")
	join(t, a, topic, true, false, 4321)
	lines := startNode(t, hs[1], "browse", ServiceType(topic), hs[1].IPv4().String(), "8000")
	l := waitNode(t, lines, 6*time.Second, func(l nodeLine) bool { return l.Event == "instance" })
	wantInst := instanceName(topic, a.id) + "." + ServiceType(topic) + ".local"
	if l.Instance != wantInst || l.Port != 4321 {
		t.Errorf("instance %q port %d; want %q port 4321", l.Instance, l.Port, wantInst)
	}
	for _, kv := range []string{"v=1", "topic=" + topic.String(), "id=" + a.ID()} {
		if !slices.Contains(l.TXT, kv) {
			t.Errorf("TXT %q lacks %q", l.TXT, kv)
		}
	}
	if !slices.Contains(l.Addrs, hs[0].IPv4().String()) {
		t.Errorf("addresses %v lack %s", l.Addrs, hs[0].IPv4())
	}
}

// TestInteropWeFindThirdParty: multicast-dns publishes an instance in our
// record format; our lookup finds it.
func TestInteropWeFindThirdParty(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(2)
	a := newIn(t, hs[0], Config{})
	topic := framework.TopicFromString("interop: we see them")
	id := peerID{1, 2, 3, 4, 5, 6, 7, 8}
	inst := instanceName(topic, id)
	lines := startNode(t, hs[1], "publish", ServiceType(topic), hs[1].IPv4().String(), "8000",
		inst, inst+".local", hs[1].IPv4().String(), strconv.Itoa(5432),
		"v=1", "topic="+topic.String(), "id="+id.String())
	waitNode(t, lines, 6*time.Second, func(l nodeLine) bool { return l.Event == "ready" })
	sa := join(t, a, topic, false, true, 0)
	p := sa.waitPeer(t, 3*time.Second)
	checkPeer(t, p, hs[1], 5432, topic)
}
