//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

// natLab is a "public" network with two full DHT nodes and two NAT routers,
// each with a private LAN holding one peer. Everything lives in network
// namespaces the test creates; nothing reaches this machine's interfaces.
type natLab struct {
	bin       string
	a, b      *netlab.Host
	bootstrap string
	discovery string // the peers' --discovery: dht, or the DHT out of process
}

func newNATLab(t *testing.T, symmetricA bool) *natLab {
	t.Helper()
	bin := buildSwarmhost(t)
	lab := netlab.New(t)
	pub := lab.AddNetwork("pub", netlab.NetworkConfig{})
	d1, d2 := lab.AddHost("dht1"), lab.AddHost("dht2")
	lab.Connect(d1, pub)
	lab.Connect(d2, pub)
	n1 := lab.AddNAT("nat1", pub, netlab.NATConfig{Symmetric: symmetricA})
	n2 := lab.AddNAT("nat2", pub, netlab.NATConfig{})
	l := &natLab{bin: bin, a: lab.ConnectBehind("a", n1), b: lab.ConnectBehind("b", n2)}
	b1 := netip.AddrPortFrom(d1.IPv4(), 6881).String()
	b2 := netip.AddrPortFrom(d2.IPv4(), 6881).String()
	l.daemon(t, d1, "bootstrap", "--listen", b1)
	l.daemon(t, d2, "bootstrap", "--listen", b2, "--peer", b1)
	l.bootstrap = b1 + "," + b2
	l.discovery = "dht"
	return l
}

// daemon starts a long-running command in h and waits for its first line.
func (l *natLab) daemon(t *testing.T, h *netlab.Host, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, l.bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Scan()
		line <- s.Text()
		io.Copy(io.Discard, out)
	}()
	select {
	case <-line:
	case <-time.After(10 * time.Second):
		t.Fatalf("%v in %s printed nothing: %s", args, h.Name, errb.String())
	}
}

// peerRun is one swarmhost pipe in a lab host.
type peerRun struct {
	cmd     *exec.Cmd
	out     bytes.Buffer
	errMu   sync.Mutex
	errb    bytes.Buffer
	flushed chan struct{}
	done    chan struct{} // closed when the process has exited
	exitErr error
}

func (p *peerRun) stderr() string { p.errMu.Lock(); defer p.errMu.Unlock(); return p.errb.String() }

// pipe starts `swarmhost pipe` over the DHT with TCP and uTP in h.
func (l *natLab) pipe(ctx context.Context, t *testing.T, h *netlab.Host, stdin string, args ...string) *peerRun {
	t.Helper()
	base := []string{"pipe", "--discovery", l.discovery, "--transport", "tcp,utp", "--bootstrap", l.bootstrap, "--log-level", "debug"}
	p := &peerRun{flushed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = h.Command(ctx, l.bin, append(base, args...)...)
	p.cmd.Stdin = strings.NewReader(stdin)
	p.cmd.Stdout = &p.out
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	go func() {
		s := bufio.NewScanner(pr)
		once := sync.Once{}
		for s.Scan() {
			p.errMu.Lock()
			p.errb.WriteString(s.Text() + "\n")
			p.errMu.Unlock()
			if strings.Contains(s.Text(), "msg=flushed") {
				once.Do(func() { close(p.flushed) })
			}
		}
		io.Copy(io.Discard, pr)
	}()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitErr = p.cmd.Wait(); pw.Close(); close(p.done) }()
	return p
}

func (p *peerRun) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.exitErr
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("still running after %v", d)
	}
}

// Peer A behind NAT 1 announces, peer B behind NAT 2 looks up: direct TCP
// to A's public address fails, the hole punch relayed by A's referrer plus
// uTP connects, and data flows both ways intact. 20 trials, goal ≥ 19.
func TestNATHolePunchUTPConnects(t *testing.T) {
	natHolePunch(t, newNATLab(t, false), natTrials, byTopic)
}

// JoinPeer through the NATs: A announces no topic, only its key (pipe
// --announce without TOPIC); B knows only A's key (--peer-key) and finds
// A under its peer topic on the DHT, through the same hole punch.
func TestNATJoinPeerConnectsByKey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "a.key")
	kp, _, err := secure.LoadOrCreateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	byKey := func(int) (a, b []string) {
		return []string{"--key", keyFile}, []string{"--peer-key", kp.Public.String()}
	}
	natHolePunch(t, newNATLab(t, false), max(3, natTrials/4), byKey)
}

// byTopic: A announces a topic per trial, B looks it up.
func byTopic(i int) (a, b []string) {
	topic := fmt.Sprintf("nat trial %d", i)
	return []string{topic}, []string{topic}
}

// The same with the DHT out of process (`swarmhost plugin serve dht`) in
// both peers: the plugin's DHT runs on the swarm's shared UDP socket,
// relayed, the host forwards its hole punch (B connects over uTP) and its
// connectivity report (A reports itself bootstrapped, with its public
// address).
func TestNATHolePunchOutOfProcessDHT(t *testing.T) {
	l := newNATLab(t, false)
	// plugin lists split at commas: the plugin's bootstrap nodes are
	// given by repeating the flag
	l.discovery = "plugin:" + l.bin + " plugin serve --bootstrap " + strings.ReplaceAll(l.bootstrap, ",", " --bootstrap ") + " dht"
	natHolePunch(t, l, max(3, natTrials/4), byTopic)
}

// natHolePunch runs the hole punch trials of TestNATHolePunchUTPConnects;
// target gives the last arguments of A (announcing) and B of each trial.
func natHolePunch(t *testing.T, l *natLab, trials int, target func(i int) (a, b []string)) {
	t.Helper()
	connected := 0
	var fails []string
	for i := range trials {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		argsA, argsB := target(i)
		msgA, msgB := strings.Repeat(fmt.Sprintf("A%d|", i), 20000), fmt.Sprintf("from B %d", i)
		pa := l.pipe(ctx, t, l.a, msgA, append([]string{"--announce", "--port", fmt.Sprint(40000 + i), "--timeout", "20s"}, argsA...)...)
		select {
		case <-pa.flushed:
		case <-time.After(10 * time.Second):
			t.Fatalf("trial %d: announcer not flushed: %s", i, pa.stderr())
		}
		pb := l.pipe(ctx, t, l.b, msgB, append([]string{"--port", fmt.Sprint(41000 + i), "--timeout", "12s"}, argsB...)...)
		tb := time.Now()
		errB := pb.wait(t, 15*time.Second)
		errA := pa.wait(t, 5*time.Second)
		cancel()
		t.Logf("trial %d: %v (A %v, B %v)", i, time.Since(tb).Round(time.Millisecond), errA, errB)

		switch {
		case errA != nil || errB != nil:
			fails = append(fails, fmt.Sprintf("trial %d: A %v, B %v\nB: %s", i, errA, errB, lastLines(pb.stderr(), 6)))
		case pa.out.String() != msgB || pb.out.String() != msgA:
			t.Fatalf("trial %d: data corrupted: A got %d bytes, B got %d of %d", i, pa.out.Len(), pb.out.Len(), len(msgA))
		case !strings.Contains(pb.stderr(), "msg=connected") || !strings.Contains(pb.stderr(), "type=utp"):
			t.Fatalf("trial %d: connected, but not over uTP: %s", i, pb.stderr())
		case !connectivityRE.MatchString(pa.stderr()):
			t.Fatalf("trial %d: the announcer did not report its connectivity (bootstrapped, a public address): %s", i, lastLines(pa.stderr(), 10))
		default:
			connected++
		}
	}
	t.Logf("%d of %d trials connected through the NATs", connected, trials)
	if connected < trials-1 {
		t.Fatalf("%d of %d connected, want ≥ %d:\n%s", connected, trials, trials-1, strings.Join(fails, "\n"))
	}
}

// Behind a NAT that picks a new port for every destination, hole punching
// cannot work: the attempt fails within the connect timeout, the failure
// says why, and the announcer reports itself not holepunchable.
func TestSymmetricNATFailsCleanly(t *testing.T) {
	l := newNATLab(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pa := l.pipe(ctx, t, l.a, "x", "--announce", "--port", "40100", "--timeout", "8s", "symmetric")
	select {
	case <-pa.flushed:
	case <-time.After(10 * time.Second):
		t.Fatalf("announcer not flushed: %s", pa.stderr())
	}
	start := time.Now()
	pb := l.pipe(ctx, t, l.b, "y", "--port", "40101", "--connect-timeout", "2s", "--timeout", "4s", "symmetric")
	if err := pb.wait(t, 10*time.Second); err == nil {
		t.Fatalf("connected through a symmetric NAT?\n%s", pb.stderr())
	}
	took := time.Since(start)
	errs := pb.stderr()
	if !strings.Contains(errs, "no peer connected within 4s") || !strings.Contains(errs, "dial failed") {
		t.Fatalf("no clear reason after %v:\n%s", took, errs)
	}
	pa.wait(t, 10*time.Second)
	if !strings.Contains(pa.stderr(), "holepunchable=false") {
		t.Fatalf("announcer behind a symmetric NAT did not report holepunchable=false:\n%s", lastLines(pa.stderr(), 10))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// connectivityRE matches the flushed line of a swarm whose DHT reported
// itself bootstrapped and the public address the DHT nodes saw.
var connectivityRE = regexp.MustCompile(`msg=flushed .*bootstrapped=true public=\[[0-9.]+:[0-9]+`)

// natTrials is the number of NAT trials (20 in CI).
var natTrials = 20
