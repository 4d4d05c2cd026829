// Package interop_test checks that our DHT discovery interoperates with a
// third-party BEP 5 implementation, the npm package bittorrent-dht
// (v11.0.12, pinned by package-lock.json), on a loopback testnet seeded by
// our bootstrap node:
//
//	(a) the npm node finds, under our documented infohash (dht.Infohash),
//	    the peer our Node announced;
//	(b) our Node's lookup finds the peer the npm node announced.
//
// The npm node runs as a child process (node peer.mjs), driven by JSON
// lines. It needs Node.js and `npm ci --prefix plugins/dht/interop`, which
// the test runs itself when node_modules is absent; without Node.js it skips
// with one line saying so, or fails under CI=true (internal/testenv).
//
// Network safety: every node binds 127.0.0.1; the npm node is given our
// loopback bootstrap node only (never bittorrent-dht's default public
// routers) and its socket refuses non-loopback destinations; our testnet
// nodes and our Node use dhttest's loopback-only sockets.
package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/testenv"
	"github.com/dwebswarm/dwebswarm-go/internal/testutil"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// npmVersion is the bittorrent-dht version package.json and
// package-lock.json pin.
const npmVersion = "11.0.12"

const installHint = "run `npm ci --prefix plugins/dht/interop` (from the repository root) to install the pinned bittorrent-dht"

func TestMain(m *testing.M) { testutil.Main(m) }

// requireNodeModules returns the node binary once the pinned bittorrent-dht
// is installed (installing it when absent); see internal/testenv for what
// happens when Node.js is missing.
func requireNodeModules(t *testing.T) string {
	t.Helper()
	nodeBin, err := testenv.NodeModules(".", "bittorrent-dht")
	testenv.Require(t, err)
	b, err := os.ReadFile(filepath.Join("node_modules", "bittorrent-dht", "package.json"))
	if err != nil {
		t.Fatalf("bittorrent-dht is not installed (%v): %s", err, installHint)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil || pkg.Version != npmVersion {
		t.Fatalf("node_modules has bittorrent-dht %q, want %s (%v): %s", pkg.Version, npmVersion, err, installHint)
	}
	return nodeBin
}

// event is one JSON line written by peer.mjs.
type event struct {
	Event    string `json:"event"`
	Port     int    `json:"port"`
	ID       string `json:"id"`
	Nodes    int    `json:"nodes"`
	Infohash string `json:"infohash"`
	Host     string `json:"host"`
	From     *struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	} `json:"from"`
	Visited    int     `json:"visited"`
	Stored     int     `json:"stored"`
	Error      *string `json:"error"`
	Ports      []int   `json:"ports"`
	Violations int     `json:"violations"`
	Address    string  `json:"address"`
	Message    string  `json:"message"`
}

// npmNode is a running `node peer.mjs`.
type npmNode struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer // read only after Wait

	mu      sync.Mutex
	events  []event
	changed chan struct{} // closed and replaced on every new event
	eof     bool
	exited  chan struct{} // closed when Wait returned
	waitErr error

	port int // DHT port, from the ready event
}

// startNPM runs peer.mjs with bootstrap as its only bootstrap node and
// waits for it to be ready (bootstrapped). Cleanup asks it to quit and kills
// it by PID if it has not exited within 2 s.
func startNPM(t *testing.T, nodeBin, bootstrap string) *npmNode {
	t.Helper()
	n := &npmNode{t: t, changed: make(chan struct{}), exited: make(chan struct{})}
	// 60 s: peer.mjs exits on its own should this process die without
	// closing its stdin.
	n.cmd = exec.Command(nodeBin, "peer.mjs", bootstrap, "60000")
	n.cmd.Stderr = &n.stderr
	n.cmd.WaitDelay = 2 * time.Second
	var err error
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting node peer.mjs: %v", err)
	}
	t.Logf("npm node: pid %d, bootstrap %s", n.cmd.Process.Pid, bootstrap)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		n.read(stdout)
	}()
	go func() {
		<-readDone // Wait closes stdout: read it to the end first
		err := n.cmd.Wait()
		n.mu.Lock()
		n.waitErr = err
		n.mu.Unlock()
		close(n.exited)
	}()
	t.Cleanup(n.stop)

	ready := n.wait(t, 10*time.Second, "ready", func(e event) bool { return e.Event == "ready" })
	if ready.Port == 0 {
		t.Fatalf("npm node ready without a port: %+v", ready)
	}
	n.port = ready.Port
	t.Logf("npm node ready: 127.0.0.1:%d id %s, %d nodes in its table", ready.Port, ready.ID, ready.Nodes)
	return n
}

func (n *npmNode) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			e = event{Event: "unparsable", Message: sc.Text()}
		}
		n.mu.Lock()
		n.events = append(n.events, e)
		close(n.changed)
		n.changed = make(chan struct{})
		n.mu.Unlock()
	}
	n.mu.Lock()
	n.eof = true
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// send writes one command line.
func (n *npmNode) send(t *testing.T, cmd map[string]any) {
	t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("writing to the npm node: %v", err)
	}
}

// next returns the first event at index >= *from that matches, advancing
// *from past it; it fails the test on a fatal or violation event, when the
// process ended, or after d.
func (n *npmNode) next(t *testing.T, from *int, d time.Duration, what string, match func(event) bool) event {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		for ; *from < len(n.events); *from++ {
			e := n.events[*from]
			switch {
			case e.Event == "fatal" || e.Event == "violation" || e.Event == "unparsable":
				n.mu.Unlock()
				t.Fatalf("npm node: %+v", e)
			case match(e):
				*from++
				n.mu.Unlock()
				return e
			}
		}
		eof, changed := n.eof, n.changed
		n.mu.Unlock()
		if eof {
			t.Fatalf("npm node exited while waiting for %s", what)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timeout after %v waiting for %s from the npm node", d, what)
		}
	}
}

func (n *npmNode) wait(t *testing.T, d time.Duration, what string, match func(event) bool) event {
	t.Helper()
	from := 0
	return n.next(t, &from, d, what, match)
}

// mark is the index of the next event, to wait only for later ones.
func (n *npmNode) mark() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.events)
}

func (n *npmNode) stop() {
	n.stdin.Write([]byte(`{"cmd":"quit"}` + "\n"))
	n.stdin.Close()
	killed := false
	select {
	case <-n.exited:
	case <-time.After(2 * time.Second):
		n.t.Logf("npm node (pid %d) did not quit within 2 s: killing it", n.cmd.Process.Pid)
		n.cmd.Process.Kill() // by PID
		killed = true
		<-n.exited
	}
	n.mu.Lock()
	err := n.waitErr
	n.mu.Unlock()
	switch {
	case err != nil && !killed:
		n.t.Errorf("npm node exited with %v; stderr:\n%s", err, n.stderr.String())
	case err != nil || n.t.Failed():
		n.t.Logf("npm node exit: %v; stderr:\n%s", err, n.stderr.String())
	}
}

// sink records what our Node reports for one join.
type sink struct {
	peers   chan framework.Peer
	flushed chan struct{}
	once    sync.Once
}

func newSink() *sink {
	return &sink{peers: make(chan framework.Peer, 1024), flushed: make(chan struct{})}
}

func (s *sink) Peer(p framework.Peer) {
	select {
	case s.peers <- p:
	default:
	}
}
func (s *sink) Flushed() { s.once.Do(func() { close(s.flushed) }) }
func (s *sink) Updated() {}

// ihHex is the documented infohash of a topic, as the npm node gets it.
func ihHex(tp framework.Topic) string {
	ih := dht.Infohash(tp)
	return hex.EncodeToString(ih[:])
}

func udpPort(a net.Addr) int { return a.(*net.UDPAddr).Port }

func TestInteropBittorrentDHT(t *testing.T) {
	nodeBin := requireNodeModules(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// A small testnet of our full nodes.
	tn, err := dhttest.Start(ctx, 16, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })

	// Our bootstrap node (what `swarmhost bootstrap --listen` runs), on
	// loopback, peered with the testnet's first node (a bootstrap node with
	// no peer at all hit an anacrolix/dht v2.23.0 goroutine leak: its
	// Bootstrap never stops its traversal when it finds no starting node).
	// It pings every testnet node, so that it knows them all and they know
	// it.
	boot, err := dht.ListenBootstrap("127.0.0.1:0", []string{tn.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close() })
	bootAddr := boot.Addr().String()
	ours := map[int]*dht.Node{udpPort(boot.Addr()): boot} // our full nodes by port
	for _, n := range tn.Nodes {
		ours[udpPort(n.Addr())] = n
		if err := boot.Ping(ctx, n.Addr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatalf("bootstrap node pinging a testnet node: %v", err)
		}
	}
	t.Logf("bootstrap node %s knows %d nodes; testnet of %d (%v)", bootAddr, boot.Stats().Nodes, len(tn.Nodes), time.Since(start).Round(time.Millisecond))

	// Our Node as a real user runs it (default mode: adaptive, so
	// read-only now), entering the DHT through the bootstrap node only.
	d, err := tn.ListenNode(dht.Config{Bootstrap: []string{bootAddr}})
	if err != nil {
		t.Fatal(err)
	}

	npm := startNPM(t, nodeBin, bootAddr)

	// (a) our Node announces; the npm node finds the peer under
	// dht.Infohash(topic).
	t.Run("NPMFindsOurAnnounce", func(t *testing.T) {
		tp := framework.TopicFromString("dwebswarm interop (a) " + t.Name())
		const ourPort = 45001
		s := newSink()
		t0 := time.Now()
		if err := d.Join(ctx, framework.JoinRequest{Topic: tp, Announce: true, Port: ourPort}, s); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.flushed:
		case <-time.After(5 * time.Second):
			t.Fatal("timeout after 5s waiting for our announce (Flushed)")
		}
		t.Logf("our announce flushed in %v", time.Since(t0).Round(time.Millisecond))

		ih := ihHex(tp)
		t1 := time.Now()
		deadline := time.Now().Add(5 * time.Second)
		for attempt := 1; ; attempt++ {
			from := npm.mark()
			npm.send(t, map[string]any{"cmd": "lookup", "infohash": ih})
			var found *event
			for found == nil {
				e := npm.next(t, &from, time.Until(deadline), "the lookup of our announce", func(e event) bool {
					return e.Infohash == ih && (e.Event == "lookup_done" || e.Event == "peer")
				})
				if e.Event == "lookup_done" {
					t.Logf("npm lookup %d: visited %d nodes, error %v", attempt, e.Visited, deref(e.Error))
					break
				}
				// A peer from the npm node's own store (from == null) does
				// not count: our Node may have announced to it too.
				if e.Port == ourPort && e.From != nil {
					found = &e
				}
			}
			if found != nil {
				if found.Host != "127.0.0.1" {
					t.Fatalf("npm node found our peer at %s:%d, want 127.0.0.1:%d", found.Host, found.Port, ourPort)
				}
				// Only our full nodes store announces here (our Node
				// is read-only): the value came from one of their replies.
				if found.From.Host != "127.0.0.1" || ours[found.From.Port] == nil {
					t.Fatalf("npm node got our peer from %s:%d, not one of our nodes", found.From.Host, found.From.Port)
				}
				t.Logf("(a) npm node found 127.0.0.1:%d in a get_peers reply of our node %s:%d in %v (lookup %d)",
					found.Port, found.From.Host, found.From.Port, time.Since(t1).Round(time.Millisecond), attempt)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the npm node's lookups never returned our announced peer")
			}
		}
		if err := d.Leave(ctx, tp); err != nil {
			t.Fatal(err)
		}
	})

	// (b) the npm node announces; our Node's lookup finds the peer.
	t.Run("OursFindsNPMAnnounce", func(t *testing.T) {
		tp := framework.TopicFromString("dwebswarm interop (b) " + t.Name())
		const npmPeerPort = 45002
		ih := ihHex(tp)
		t0 := time.Now()
		from := npm.mark()
		npm.send(t, map[string]any{"cmd": "announce", "infohash": ih, "port": npmPeerPort})
		ann := npm.next(t, &from, 10*time.Second, "announced", func(e event) bool { return e.Event == "announced" && e.Infohash == ih })
		if ann.Error != nil || ann.Stored == 0 {
			t.Fatalf("npm announce failed: stored on %d nodes, error %v", ann.Stored, deref(ann.Error))
		}
		t.Logf("npm node announced 127.0.0.1:%d on %d nodes in %v", npmPeerPort, ann.Stored, time.Since(t0).Round(time.Millisecond))

		// Our nodes accepted the npm node's announce_peer (its token).
		var storedOn []int
		for port, n := range ours {
			for _, p := range n.PeerStore().GetPeers(dht.Infohash(tp)) {
				if p.Port == npmPeerPort && p.IP.Equal(net.IPv4(127, 0, 0, 1)) {
					storedOn = append(storedOn, port)
				}
			}
		}
		if len(storedOn) == 0 {
			t.Fatal("none of our nodes stored the npm node's announce")
		}
		t.Logf("stored by %d of our %d full nodes", len(storedOn), len(ours))

		s := newSink()
		t1 := time.Now()
		if err := d.Join(ctx, framework.JoinRequest{Topic: tp, Lookup: true}, s); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(8 * time.Second)
		for {
			select {
			case p := <-s.peers:
				if p.Port != npmPeerPort {
					continue
				}
				if p.Host != "127.0.0.1" || p.Topic != tp || p.Referrer == nil || len(p.Referrer.ID) != 20 {
					t.Fatalf("bad peer %+v (referrer %+v)", p, p.Referrer)
				}
				who := "the npm node"
				if p.Referrer.Port != npm.port {
					who = "one of our nodes"
					if ours[p.Referrer.Port] == nil {
						who = "an unknown node"
					}
				}
				t.Logf("(b) our lookup found %s via %s:%d (%s) in %v", p.Addr(), p.Referrer.Host, p.Referrer.Port, who, time.Since(t1).Round(time.Millisecond))
				if err := d.Leave(ctx, tp); err != nil {
					t.Fatal(err)
				}
				return
			case <-timeout:
				t.Fatalf("timeout after 8s: our lookup never reported the npm node's peer 127.0.0.1:%d", npmPeerPort)
			}
		}
	})

	// The npm node's socket refused nothing.
	from := npm.mark()
	npm.send(t, map[string]any{"cmd": "stats"})
	st := npm.next(t, &from, 5*time.Second, "stats", func(e event) bool { return e.Event == "stats" })
	if st.Violations != 0 {
		t.Fatalf("the npm node attempted %d sends to non-loopback addresses", st.Violations)
	}
	// bittorrent-dht does not implement BEP 43: it would also add our
	// read-only Node to its table had it queried the npm node.
	roInTable := false
	for _, p := range st.Ports {
		roInTable = roInTable || p == udpPort(d.Addr())
	}
	t.Logf("npm node: %d nodes in its table (our read-only Node among them: %v); total %v",
		st.Nodes, roInTable, time.Since(start).Round(time.Millisecond))
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return strconv.Quote(*s)
}
