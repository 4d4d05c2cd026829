//go:build linux

package mdns

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// nsTCP is TCP whose sockets (listeners and dials) are opened inside a lab
// host, so that a whole swarm can live in a namespace: the engine dials
// from goroutines that run in the machine's namespace.
type nsTCP struct {
	*tcp.Transport
	h *netlab.Host
}

func (t nsTCP) Listen(ctx context.Context, host string, port int) (l framework.Listener, err error) {
	err = t.h.Do(func() error {
		l, err = t.Transport.Listen(ctx, host, port)
		return err
	})
	return l, err
}

func (t nsTCP) Dial(ctx context.Context, p framework.Peer) (c net.Conn, err error) {
	err = t.h.Do(func() error {
		c, err = t.Transport.Dial(ctx, p)
		return err
	})
	return c, err
}

// labSwarm starts a swarm on host h with mDNS (cfg) and TCP only.
func labSwarm(t *testing.T, h *netlab.Host, cfg Config) (*framework.Swarm, *Discovery) {
	t.Helper()
	d := newIn(t, h, cfg)
	sw, err := framework.New(framework.WithDiscovery(d), framework.WithTransport(nsTCP{tcp.New(), h}), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw, d
}

// TestHostileLANFloodAndSpoof: a hostile host on the LAN spoofs responses
// that point the swarm at its own loopback (127.0.0.1:7777, where a trap
// listens), another subnet and a public address, and floods 4 200
// instances of the topic, before and while a legitimate peer announces.
// The legitimate peer is found and connected; the spoofs produce no peer
// and no connection; the flooder gets at most MaxPeersPerSource peers
// reported, and the cache holds at most MaxInstancesPerSource of its
// instances.
func TestHostileLANFloodAndSpoof(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(3)
	legitH, victimH, evilH := hs[0], hs[1], hs[2]
	topic := framework.TopicFromString("hostile lan")

	// The trap: the victim's own loopback service the spoof points at.
	var trap net.Listener
	victimH.MustDo(func() (err error) { trap, err = net.Listen("tcp4", "127.0.0.1:7777"); return err })
	var trapped atomic.Int32
	trapDone := make(chan struct{})
	go func() {
		defer close(trapDone)
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			trapped.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { trap.Close(); <-trapDone })

	// The victim looks up, querying every second after its burst so that a
	// legitimate answer lost in the flood (kernel buffers) is asked again.
	victimCfg := Config{QueryIntervalMin: time.Second, QueryIntervalMax: time.Second}
	victim, vd := labSwarm(t, victimH, victimCfg)
	sub := victim.Subscribe()
	defer sub.Close()
	if err := victim.Join(context.Background(), topic); err != nil {
		t.Fatal(err)
	}

	// The hostile host: a responder socket on port 5353.
	var evil *net.UDPConn
	evilH.MustDo(func() (err error) {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if evil, err = net.ListenUDP("udp4", &net.UDPAddr{IP: group4, Port: 5353}); err != nil {
			return err
		}
		return ipv4.NewPacketConn(evil).SetMulticastInterface(ifc)
	})
	defer evil.Close()
	send := func(pkt []byte) { _, _ = evil.WriteTo(pkt, dst4) } // a full buffer may drop some: fine
	spoofs := []string{"127.0.0.1", "::1", "10.99.0.7", "203.0.113.7", "0.0.0.0"}
	for i, a := range spoofs {
		send(instancePacket(t, topic, floodIDs(0xdead00+i, 1), 7777, []netip.Addr{netip.MustParseAddr(a)}))
	}
	evilAddr := evilH.IPv4()
	flood := func(base int) {
		ids := floodIDs(base, 4200)
		for len(ids) > 0 {
			k := min(20, len(ids))
			send(instancePacket(t, topic, ids[:k], 9, []netip.Addr{evilAddr}))
			ids = ids[k:]
		}
	}
	flood(1) // before the legitimate peer

	// The legitimate peer announces while the flood goes on.
	legit, _ := labSwarm(t, legitH, Config{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); flood(2) }()
	start := time.Now()
	if err := legit.Join(context.Background(), topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	legitHost := legitH.IPv4().String()
	var found, connected time.Duration
	var evilPeers int
	var bad []framework.Peer
	deadline := time.After(30 * time.Second)
	for connected == 0 {
		select {
		case ev := <-sub.C():
			switch e := ev.(type) {
			case *framework.PeerEvent:
				switch e.Peer.Host {
				case legitHost:
					if found == 0 {
						found = time.Since(start)
					}
				case evilAddr.String():
					evilPeers++
				default:
					bad = append(bad, e.Peer)
				}
			case *framework.ConnectionEvent:
				if p := e.Conn.Peer(); p != nil && p.Host == legitHost {
					connected = time.Since(start)
				}
			}
		case <-deadline:
			t.Fatalf("legitimate peer not connected within 30 s (found after %v); stats %+v", found, vd.Stats())
		}
	}
	wg.Wait()
	t.Logf("legitimate peer found %v and connected %v after its join, during a 2×4200-instance flood", found, connected)

	// Every spoof was heard and dropped: await the counters (bounded).
	var st Stats
	for i := 0; ; i++ {
		st = vd.Stats()
		if st.AddrsLoopback >= 2 && st.AddrsOtherSubnet >= 1 && st.AddrsPublic >= 1 && st.AddrsInvalid >= 1 {
			break
		}
		if i == 1000 {
			t.Fatalf("spoofs not all counted: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("victim stats: %+v", st)
	for { // the rest of the events so far
		select {
		case ev := <-sub.C():
			if e, ok := ev.(*framework.PeerEvent); ok {
				switch e.Peer.Host {
				case legitHost:
				case evilAddr.String():
					evilPeers++
				default:
					bad = append(bad, e.Peer)
				}
			}
			continue
		default:
		}
		break
	}
	if len(bad) > 0 {
		t.Errorf("spoofed peers reported: %v", bad)
	}
	if n := trapped.Load(); n != 0 {
		t.Errorf("the swarm connected %d times to its own 127.0.0.1:7777", n)
	}
	if evilPeers > DefaultMaxPeersPerSource {
		t.Errorf("%d peers of the flooder reported, want at most %d", evilPeers, DefaultMaxPeersPerSource)
	}
	if st.InstancesSourceCap == 0 || st.CachedInstances > DefaultMaxInstancesPerSource+2 {
		t.Errorf("flood not capped per source: %+v", st)
	}
}
