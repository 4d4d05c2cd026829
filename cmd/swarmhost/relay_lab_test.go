//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// relayLab is newNATLab with both peers behind symmetric NATs (no hole
// punch can work) and a relay on the public network.
type relayLab struct {
	*natLab
	relay     string      // KEY@HOST:PORT
	announced chan string // the infohash (hex) of every client allocation the relay announced
}

func newRelayLab(t *testing.T) *relayLab {
	t.Helper()
	bin := buildSwarmhost(t)
	lab := netlab.New(t)
	pub := lab.AddNetwork("pub", netlab.NetworkConfig{})
	d1, d2, rh := lab.AddHost("dht1"), lab.AddHost("dht2"), lab.AddHost("relay")
	lab.Connect(d1, pub)
	lab.Connect(d2, pub)
	lab.Connect(rh, pub)
	n1 := lab.AddNAT("nat1", pub, netlab.NATConfig{Symmetric: true})
	n2 := lab.AddNAT("nat2", pub, netlab.NATConfig{Symmetric: true})
	l := &relayLab{natLab: &natLab{bin: bin, a: lab.ConnectBehind("a", n1), b: lab.ConnectBehind("b", n2)},
		announced: make(chan string, 256)}
	b1 := netip.AddrPortFrom(d1.IPv4(), 6881).String()
	b2 := netip.AddrPortFrom(d2.IPv4(), 6881).String()
	l.daemon(t, d1, "bootstrap", "--listen", b1)
	l.daemon(t, d2, "bootstrap", "--listen", b2, "--peer", b1)
	l.bootstrap = b1 + "," + b2
	l.discovery = "dht"
	l.relay = l.startRelay(t, rh, netip.AddrPortFrom(rh.IPv4(), 7000).String())
	return l
}

// startRelay runs `swarmhost relay` in h and returns its KEY@ADDR; every
// client allocation it announces puts a token on l.announced.
func (l *relayLab) startRelay(t *testing.T, h *netlab.Host, listen string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, l.bin, "relay", "--listen", listen, "--bootstrap", l.bootstrap, "--log-level", "debug")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	go func() {
		s := bufio.NewScanner(errp)
		for s.Scan() {
			if line := s.Text(); strings.Contains(line, `msg="relay announced"`) && !strings.Contains(line, "port=0") {
				_, ih, _ := strings.Cut(line, "infohash=")
				ih, _, _ = strings.Cut(ih, " ")
				select {
				case l.announced <- ih:
				default: // nobody waits for so many
				}
			}
		}
		io.Copy(io.Discard, errp)
	}()
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Scan()
		line <- s.Text()
		io.Copy(io.Discard, out)
	}()
	select {
	case v := <-line:
		if !strings.Contains(v, "@") {
			t.Fatalf("relay printed %q", v)
		}
		return strings.TrimSpace(v)
	case <-time.After(10 * time.Second):
		t.Fatal("relay printed nothing")
	}
	return ""
}

// waitAnnounced waits until the relay announced an allocation for topic
// (as swarmhost pipe names it), skipping the others' announcements.
func (l *relayLab) waitAnnounced(t *testing.T, topic string, d time.Duration) bool {
	t.Helper()
	tp, err := framework.ParseTopicArg(topic)
	if err != nil {
		t.Fatal(err)
	}
	ih := dht.Infohash(tp)
	want := hex.EncodeToString(ih[:])
	deadline := time.After(d)
	for {
		select {
		case got := <-l.announced:
			if got == want {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// TestNATSymmetricBothSidesConnectThroughRelay: A and B are each behind a
// symmetric NAT, so neither TCP to A's public address nor a hole punch can
// work; A reserves at a relay on the public network, the relay announces
// A's topic with A's allocation, B finds it on the DHT, dials it, and the
// session runs end to end through the relay: data intact both ways, and A
// reports the connection relayed.
func TestNATSymmetricBothSidesConnectThroughRelay(t *testing.T) {
	l := newRelayLab(t)
	trials := max(3, natTrials/4)
	for i := range trials {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		topic := fmt.Sprintf("relay trial %d", i)
		msgA, msgB := strings.Repeat(fmt.Sprintf("A%d|", i), 20000), fmt.Sprintf("from B %d", i)
		pa := l.pipe(ctx, t, l.a, msgA, "--announce", "--relay", l.relay, "--port", fmt.Sprint(40000+i), "--timeout", "30s", topic)
		if !l.waitAnnounced(t, topic, 20*time.Second) {
			cancel()
			t.Fatalf("trial %d: the relay never announced A's allocation: %s", i, lastLines(pa.stderr(), 10))
		}
		pb := l.pipe(ctx, t, l.b, msgB, "--port", fmt.Sprint(41000+i), "--timeout", "20s", topic)
		errB := pb.wait(t, 25*time.Second)
		errA := pa.wait(t, 10*time.Second)
		cancel()
		switch {
		case errA != nil || errB != nil:
			t.Fatalf("trial %d: A %v, B %v\nA: %s\nB: %s", i, errA, errB, lastLines(pa.stderr(), 8), lastLines(pb.stderr(), 8))
		case pa.out.String() != msgB || pb.out.String() != msgA:
			t.Fatalf("trial %d: data corrupted: A got %d bytes, B got %d of %d", i, pa.out.Len(), pb.out.Len(), len(msgA))
		case !strings.Contains(pa.stderr(), "type=relay") || !strings.Contains(pa.stderr(), "path=relayed"):
			t.Fatalf("trial %d: A's connection is not relayed: %s", i, lastLines(pa.stderr(), 8))
		case !strings.Contains(pb.stderr(), "type=tcp") || !strings.Contains(pb.stderr(), "path=relayed"):
			t.Fatalf("trial %d: B (the dialler) did not learn that the session is relayed: %s", i, lastLines(pb.stderr(), 8))
		}
		t.Logf("trial %d: connected through the relay", i)
	}
}

// natClass is a place a matrix peer lives: the public network, or behind
// a NAT with the given RFC 4787 mapping (filtering is APDF).
type natClass struct {
	name    string
	public  bool
	mapping netlab.Mapping
}

var matrixClasses = []natClass{
	{name: "public", public: true},
	{name: "EIM/APDF", mapping: netlab.EndpointIndependentMapping},
	{name: "APDM/APDF", mapping: netlab.AddressAndPortDependentMapping},
}

// TestNATMatrix: every pair of NAT classes (announcer A × dialler B)
// connects with the relay client's default (--relay-when unpunchable),
// over the path the classes allow: direct to a public announcer, punched
// between endpoint-independent mappings, relayed when the announcer's NAT
// maps per destination (it is then not hole-punchable and reserves), and
// relayed when the dialler's NAT maps per destination and the announcer's
// filters: the dialler, not hole-punchable, asks the announcer through the
// DHT to reserve (dht.RelayRequestMethod) and finds the allocation in its
// next lookups. An announcer whose dialler can punch or dial it never
// reserves, so a relay never races a punch. Trials per pair: natTrials/10,
// at least 1.
func TestNATMatrix(t *testing.T) {
	bin := buildSwarmhost(t)
	lab := netlab.New(t)
	pub := lab.AddNetwork("pub", netlab.NetworkConfig{})
	d1, d2, rh := lab.AddHost("dht1"), lab.AddHost("dht2"), lab.AddHost("relay")
	for _, h := range []*netlab.Host{d1, d2, rh} {
		lab.Connect(h, pub)
	}
	hosts := map[string][2]*netlab.Host{}
	for ci, c := range matrixClasses {
		var pair [2]*netlab.Host
		for i := range pair {
			name := fmt.Sprintf("m%d%d", ci, i)
			if c.public {
				pair[i] = lab.AddHost(name)
				lab.Connect(pair[i], pub)
			} else {
				n := lab.AddNAT("n"+name, pub, netlab.NATConfig{Mapping: c.mapping})
				pair[i] = lab.ConnectBehind(name, n)
			}
		}
		hosts[c.name] = pair
	}
	l := &relayLab{natLab: &natLab{bin: bin}, announced: make(chan string, 256)}
	b1 := netip.AddrPortFrom(d1.IPv4(), 6881).String()
	b2 := netip.AddrPortFrom(d2.IPv4(), 6881).String()
	l.daemon(t, d1, "bootstrap", "--listen", b1)
	l.daemon(t, d2, "bootstrap", "--listen", b2, "--peer", b1)
	l.bootstrap = b1 + "," + b2
	l.discovery = "dht"
	l.relay = l.startRelay(t, rh, netip.AddrPortFrom(rh.IPv4(), 7000).String())

	symmetric := func(c natClass) bool { return !c.public && c.mapping == netlab.AddressAndPortDependentMapping }
	expect := func(a, b natClass) string {
		switch {
		case a.public:
			return "direct"
		case symmetric(a) || symmetric(b):
			return "relayed"
		}
		return "punched"
	}
	trials := max(1, natTrials/10)
	port := 42000
	for _, ca := range matrixClasses {
		for _, cb := range matrixClasses {
			want := expect(ca, cb)
			for i := range trials {
				port += 2
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				topic := fmt.Sprintf("matrix %s %s %d", ca.name, cb.name, i)
				msgA, msgB := strings.Repeat("a", 30000), "from B"
				pa := l.pipe(ctx, t, hosts[ca.name][0], msgA, "--announce", "--relay", l.relay,
					"--port", fmt.Sprint(port), "--timeout", "40s", topic)
				if symmetric(ca) {
					// not hole-punchable: A reserves before any dialler comes
					if !l.waitAnnounced(t, topic, 30*time.Second) {
						cancel()
						t.Fatalf("%s × %s: A never reserved: %s", ca.name, cb.name, lastLines(pa.stderr(), 10))
					}
				} else {
					select {
					case <-pa.flushed:
					case <-time.After(15 * time.Second):
						cancel()
						t.Fatalf("%s × %s: A not flushed: %s", ca.name, cb.name, lastLines(pa.stderr(), 10))
					}
				}
				start := time.Now()
				pb := l.pipe(ctx, t, hosts[cb.name][1], msgB, "--port", fmt.Sprint(port+1), "--timeout", "25s", topic)
				errB := pb.wait(t, 30*time.Second)
				took := time.Since(start)
				errA := pa.wait(t, 10*time.Second)
				cancel()
				if errA != nil || errB != nil || pa.out.String() != msgB || pb.out.String() != msgA {
					t.Fatalf("%s × %s trial %d: A %v, B %v (A got %d bytes, B %d)\nA: %s\nB: %s", ca.name, cb.name, i, errA, errB,
						pa.out.Len(), pb.out.Len(), lastLines(pa.stderr(), 8), lastLines(pb.stderr(), 8))
				}
				if !strings.Contains(pb.stderr(), "path="+want) {
					t.Fatalf("%s × %s trial %d: want path=%s: %s", ca.name, cb.name, i, want, lastLines(pb.stderr(), 6))
				}
				// a dialler that can punch or dial A never makes it reserve
				if !symmetric(ca) && !symmetric(cb) && strings.Contains(pa.stderr(), `msg="relay reserved"`) {
					t.Fatalf("%s × %s trial %d: A reserved at the relay although no dialler needed it: %s", ca.name, cb.name, i, lastLines(pa.stderr(), 8))
				}
				t.Logf("%-9s × %-9s trial %d: %s, dialler done in %v", ca.name, cb.name, i, want, took.Round(10*time.Millisecond))
			}
		}
	}
}
